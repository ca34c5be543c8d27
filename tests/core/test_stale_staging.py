"""A compile killed outright (SIGKILL, a crash) leaves its staging folder; the next compile to that output removes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stretchc.cli import main

from tests.conftest import REPO


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_staging_folders_of_dead_compiles_are_removed_and_others_kept(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    dead = tmp_path / f".b.stretch.tmp-{_dead_pid()}-x1y2"
    live = tmp_path / f".b.stretch.tmp-{os.getppid()}-a3b4"  # a running process: maybe a concurrent compile
    mine = tmp_path / ".b.stretch.tmp-notes"  # not a staging folder's name: the user's
    other = tmp_path / f".c.stretch.tmp-{_dead_pid()}-z9"  # another output's
    for d in (dead, live, mine, other):
        d.mkdir()
        (d / "f").write_text("x")
    rc = main(["compile", "-q", str(REPO / "examples" / "branchy.onnx"), "-t", "pixel6", "-o", str(tmp_path / "b.stretch")])
    assert rc == 0, capsys.readouterr().err
    assert not dead.exists()
    assert all((d / "f").read_text() == "x" for d in (live, mine, other))
    assert sorted(p.name for p in tmp_path.glob(".b.stretch.tmp-*")) == sorted([live.name, mine.name])
