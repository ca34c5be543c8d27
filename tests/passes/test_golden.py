"""Per-pass golden tests: `tests/passes/<pass_name>/input.ir` through that single pass must print as
`expected.ir`. Regenerate the expected files with `STRETCHC_UPDATE_GOLDEN=1 pytest tests/passes`.

The inputs are `--dump-dir` dumps of `branched_model(branches=(2,), size=32, width=8)` (and the nested and
add-join variants where noted in each folder's README line), taken just before the pass.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from stretchc.console import Console
from stretchc.irtext import parse_module, print_module
from stretchc.passmanager import PassContext, PassManager, parse_pipeline
from stretchc.targets import load_target

HERE = Path(__file__).parent
FOLDERS = sorted(p for p in HERE.iterdir() if p.is_dir() and (p / "input.ir").is_file())


def test_every_default_pass_has_a_golden_folder() -> None:
    names = {p.name for p in FOLDERS}
    for p in ["find_branches", "assign_delegates", "outline_partitions", "insert_sync_points", "emit_bundle"]:
        assert p in names


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_golden(folder: Path, tmp_path: Path) -> None:
    module = parse_module((folder / "input.ir").read_text(), file=str(folder / "input.ir"))
    pipeline = parse_pipeline(folder.name.replace("_", "-"))
    ctx = PassContext(target=load_target("pixel6"), output_dir=tmp_path / "bundle", console=Console(quiet=True, stream=sys.stderr))
    PassManager(pipeline).run(module, ctx)
    got = print_module(module)
    expected_path = folder / "expected.ir"
    if os.environ.get("STRETCHC_UPDATE_GOLDEN") == "1":
        expected_path.write_text(got)
    assert got == expected_path.read_text(), f"{folder.name}: output differs from expected.ir (STRETCHC_UPDATE_GOLDEN=1 to regenerate)"
    if folder.name == "emit_bundle":
        files = sorted(str(p.relative_to(tmp_path / "bundle")) for p in (tmp_path / "bundle").rglob("*") if p.is_file())
        assert {"manifest.json", "manifest.bin", "SHA256SUMS"} <= set(files)
        assert [f for f in files if f.startswith("partitions/")] == sorted(f"partitions/{p.name}.tflite" for p in module.partitions)
