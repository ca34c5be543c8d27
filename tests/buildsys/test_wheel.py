"""The package as a wheel: every package folder is in it, and it installs and runs the README's example.

The wheel is built from a copy of the sources (no build output in the work tree) and installed, without its
dependencies, into a fresh virtual environment; the dependencies come from this checkout's `.venv` through a
path entry (not its site folder, so stretchc's own editable install there stays inactive), so the test needs
no network. The README's first command then runs with the wheel's `stretchc`, from a folder outside the repo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

SOURCES = ("pyproject.toml", "README.md", "stretchc", "passes", "schemas")


def test_every_package_folder_is_listed() -> None:
    """pyproject lists packages by hand (passes/ and schemas/ are mapped into stretchc): none may be missing."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {Path(folder): name for name, folder in setuptools["package-dir"].items()}
    found = set()
    for root, name in roots.items():
        for init in sorted((REPO / root).rglob("__init__.py")):
            rel = init.parent.relative_to(REPO / root)
            found.add(".".join([name, *rel.parts]))
    assert sorted(found) == sorted(setuptools["packages"])


@pytest.mark.slow  # builds a wheel, installs it into a new venv and compiles there (8-12 s)
def test_the_wheel_installs_and_runs_the_readme_example(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, src / name)
    for cache in src.rglob("__pycache__"):
        shutil.rmtree(cache)
    python = sys.executable
    _run([python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)], tmp_path)
    (wheel,) = (tmp_path / "dist").glob("stretchc-*.whl")

    venv = tmp_path / "venv"
    _run([python, "-m", "venv", str(venv)], tmp_path)
    fresh = venv / "bin" / "python"
    site = Path(_run([str(fresh), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).strip())
    (site / "locked_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(fresh), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], tmp_path)

    work = tmp_path / "work"
    work.mkdir()
    where = _run([str(fresh), "-c", "import stretchc.backends, stretchc.frontend.canonicalize, stretchc; print(stretchc.__file__)"], work)
    assert Path(where.strip()).is_relative_to(site), where
    stretchc = str(venv / "bin" / "stretchc")
    _run([stretchc, "example", "stretchy", "-o", "stretchy.onnx"], work)
    assert (work / "stretchy.onnx").read_bytes() == (REPO / "examples" / "stretchy.onnx").read_bytes()
    out = _run([stretchc, "compile", "stretchy.onnx", "-t", "pixel6", "-o", "build/stretchy.stretch", "--verify"], work)
    assert "PASS" in out, out
    out = _run([stretchc, "run", "build/stretchy.stretch", "--seed", "0", "--profile"], work)
    assert "gpu" in out and "cpu" in out, out


def _run(cmd: list[str], cwd: Path) -> str:
    """`cmd`'s stdout and stderr; the test fails with both when it exits non-zero."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr
