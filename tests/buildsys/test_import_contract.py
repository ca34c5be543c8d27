"""The import contracts of pyproject.toml (`[tool.importlinter]`) hold: the layers, the independent backends and
passes, the package root imported by the CLI only, and no import cycle anywhere (see the contracts' comments).

import-linter reads a package from its folder, and stretchc's modules live in three: stretchc/, passes/ and
schemas/, installed as stretchc.passes and stretchc.schemas (pyproject's `package-dir`). So `lint-imports` runs
on the package as the wheel lays it out, made of links to these sources; a contract that breaks fails the test
with import-linter's report (the imports that break it, and where).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO


def installed_layout(root: Path) -> Path:
    """`root`, now holding the package stretchc as pyproject.toml installs it: a folder of links to every entry of
    its source folder, and to the folder of each subpackage mapped elsewhere (`package-dir`)."""
    package_dir: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    package = root / "stretchc"
    package.mkdir()
    for entry in sorted((REPO / package_dir["stretchc"]).iterdir()):
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name, folder in package_dir.items():
        if name != "stretchc":
            parent, _, child = name.rpartition(".")
            assert parent == "stretchc", f"package-dir maps {name}, which is not a subpackage of stretchc itself"
            (package / child).symlink_to(REPO / folder)
    return root


def test_import_contracts_hold(tmp_path: Path) -> None:
    layout = installed_layout(tmp_path)
    # lint-imports finds stretchc in the folder it runs in; the contract type `no_cycles` it imports from this repo
    # (tests/buildsys/import_cycles.py)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), str(REPO / "pyproject.toml"), "--no-cache"], cwd=layout, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"lint-imports: an import contract does not hold\n{proc.stdout}{proc.stderr}"
