"""docs/architecture.md stays current: its layer diagram is pyproject.toml's `layers` import contract, top to
bottom, every layer has its paragraph, and every top-level folder of the repository has its row."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch

from tests.conftest import REPO

DOC = REPO / "docs" / "architecture.md"


def _layers() -> list[str]:
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers: list[str] = next(c for c in contracts if c["id"] == "layers")["layers"]
    return layers


def test_the_layer_diagram_is_the_layers_contract() -> None:
    diagram = re.search(r"^## The layers\n.*?^```\n(.*?)^```", DOC.read_text(), re.S | re.M)
    assert diagram is not None, "docs/architecture.md has no diagram (a ``` block) under '## The layers'"
    assert diagram.group(1).splitlines() == _layers()


def test_every_layer_has_its_paragraph() -> None:
    text = DOC.read_text()
    assert [layer for layer in _layers() if f"**`{layer}`" not in text] == []


def test_every_top_level_folder_has_its_row() -> None:
    ignored = [line.strip().strip("/") for line in (REPO / ".gitignore").read_text().splitlines() if line.strip()]
    folders = {p.name for p in REPO.iterdir() if p.is_dir() and p.name != ".git" and not any(fnmatch(p.name, i) for i in ignored)}
    first_cells = re.findall(r"^\|([^|]*)\|", DOC.read_text(), re.M)
    rows = {name for cell in first_cells for name in re.findall(r"`([^`/]+)/`", cell)}
    assert sorted(folders - rows) == []
