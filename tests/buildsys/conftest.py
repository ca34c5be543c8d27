"""Helpers for the build-integration tests (issue 6): a small model, an isolated cache, a CLI subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from stretchc.examples import branched_model


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under `root` (bundle-relative POSIX path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def cli(args: list[str], *, cache: Path | None, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`stretchc ARGS` in a separate process with its own cache directory."""
    env = dict(os.environ)
    if cache is not None:
        env["STRETCHC_CACHE_DIR"] = str(cache)
    proc = subprocess.run([sys.executable, "-m", "stretchc.cli", *args], env=env, cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"stretchc {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


@pytest.fixture
def small_model(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    onnx.save(branched_model(size=32, width=8), str(path))
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache directory for this test, also set for in-process compiles."""
    path = tmp_path / "cache"
    monkeypatch.setenv("STRETCHC_CACHE_DIR", str(path))
    return path
