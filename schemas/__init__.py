"""Schemas shipped with stretchc (installed as `stretchc.schemas`)."""

from pathlib import Path


def schema_path(name: str) -> Path:
    """Absolute path of the schema file `name` (e.g. "manifest.schema.json")."""
    return Path(__file__).with_name(name)
