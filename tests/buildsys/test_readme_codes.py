"""The README's exit-code table lists exactly stretchc.errors.CODES, each under its exit status."""

from __future__ import annotations

import re

from stretchc.errors import CODES, ExitStatus
from tests.conftest import REPO


def readme_table() -> dict[int, set[str]]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    table: dict[int, set[str]] = {}
    for line in section.splitlines():
        m = re.match(r"^\|\s*(\d+)\s*\|[^|]*\|([^|]*)\|\s*$", line)
        if m:
            table[int(m.group(1))] = {c.strip() for c in m.group(2).split(",") if c.strip()}
    return table


def test_readme_exit_code_table_matches_codes() -> None:
    expected: dict[int, set[str]] = {int(s): set() for s in ExitStatus}
    for code, (status, _) in CODES.items():
        expected[int(status)].add(code)
    assert readme_table() == expected


def test_readme_documents_warning_and_note_codes() -> None:
    text = (REPO / "README.md").read_text()
    for code in ("cache-hit", "cache-corrupt", "cache-unwritable", "cache-unreadable", "batch-set-to-1", "unused-input", "simplify-skipped", "lowering-unchecked"):
        assert f"`{code}`" in text, code
