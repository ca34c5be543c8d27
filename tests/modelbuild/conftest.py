"""Fixtures of the model-builder tests (helpers live in mbhelpers.py)."""

from mbhelpers import write_cfg  # noqa: F401  (re-exported as a fixture)
