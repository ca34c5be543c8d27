"""docs/api.md's examples run, in order, in one namespace, from a folder holding the repository's examples/ (so
the bundles they write land in a temporary folder): the page cannot drift from the API it documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "api.md"


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_page_has_examples_for_every_part_of_the_api() -> None:
    code = "\n".join(_examples())
    for used in (
        "stretchc.list_targets()", "get_target(", "stretchc.compile(", "report.partitions", "report.regions", ".alternatives", "report.timeline",
        "bundle.run(", "bundle.verify(", "stretchc.StretchError", ".explain(", ".describe()", "bisect_passes(", "opt(",
    ):
        assert used in code, used


def test_the_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for i, block in enumerate(_examples()):
        exec(compile(block, f"{PAGE}:example {i + 1}", "exec"), namespace)  # noqa: S102 - the page's own code
    printed = capsys.readouterr().out
    assert "error[bad-calibration]" in printed and "x the whole model on the" in printed
    assert (tmp_path / "build" / "stretchy.stretch" / "manifest.json").is_file()
