"""cmake/Stretchc.cmake with real CMake + Ninja: builds once, then rebuilds exactly when an input changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

# slow (not in `scripts/test.sh --fast`): real CMake and Ninja builds, each compiling the model (about 10 s)
pytestmark = [pytest.mark.skipif(not (shutil.which("cmake") and shutil.which("ninja")), reason="needs cmake and ninja"), pytest.mark.slow]


def touch(path: Path) -> None:
    # Newer than every output so far, whatever the file system's resolution, but never in the future: an
    # input dated ahead of the clock would stay newer than the bundle rebuilt from it, and ninja would
    # rebuild again on the next run.
    time.sleep(1.1)
    os.utime(path)


def test_cmake_ninja_incremental(tmp_path: Path, small_model: Path) -> None:
    src = tmp_path / "src"
    (src / "calib").mkdir(parents=True)
    shutil.copy(small_model, src / "m.onnx")
    np.save(src / "calib" / "a.npy", np.zeros((1, 3, 32, 32), np.float32))
    (src / "unrelated.txt").write_text("x")
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(demo NONE)\n"
        f'include("{REPO}/cmake/Stretchc.cmake")\n'
        "stretchc_add_bundle(demo MODEL m.onnx TARGET pixel6 CALIB calib OPTIONS --place s1.b1=cpu)\n"
    )
    wrapper = tmp_path / "stretchc"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m stretchc.cli "$@"\n')
    wrapper.chmod(0o755)
    build = tmp_path / "build"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(["cmake", "-S", str(src), "-B", str(build), "-G", "Ninja", f"-DSTRETCHC_EXECUTABLE={wrapper}"], check=True, capture_output=True, env=env)

    def ninja() -> bool:
        """Build; True if the bundle was compiled."""
        proc = subprocess.run(["ninja", "-C", str(build)], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return "stretchc: compiling demo" in proc.stdout

    manifest = build / "demo.stretch" / "manifest.json"
    assert ninja()
    assert manifest.is_file()
    assert (build / "demo.stretch.d").is_file()
    assert not ninja()  # up to date
    touch(src / "unrelated.txt")
    assert not ninja()
    touch(src / "m.onnx")
    assert ninja()
    touch(src / "calib" / "a.npy")
    assert ninja()
    assert not ninja()
