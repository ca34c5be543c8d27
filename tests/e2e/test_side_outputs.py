"""Dump folders, reports and depfiles that cannot be written are refused before any work, naming the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from stretchc.cli import main

from tests.conftest import REPO


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--dump-dir", "afile", "exists and is not a directory"),
        ("--report", "afile/x.html", "cannot write into"),
        ("--report", ".", "is a directory"),
        ("--depfile", "afile/b.d", "cannot write into"),
    ],
)
def test_unwritable_side_output(option: str, value: str, message: str, tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a directory")
    rc = main(["compile", str(REPO / "examples" / "branchy.onnx"), "-o", "out.stretch", option, value])
    err = capsys.readouterr().err
    assert rc == 6
    assert err.count("\n") == 1 and "error[write-failed]" in err and message in err and value.split("/")[0] in err
    assert not (tmp_path / "out.stretch").exists()
