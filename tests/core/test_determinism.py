"""Two compiles of the same model give byte-identical bundles and identical --dump-dir folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stretchc.console import Console, set_console
from stretchc.driver import CompileOptions, compile_model

from tests.core.conftest import Compiled, run_stretchc, tree_bytes


def test_in_process_recompile_is_byte_identical(compiled: dict[str, Compiled], tmp_path: Path) -> None:
    c = compiled["two_stages"]
    set_console(Console(quiet=True, stream=sys.stderr))
    compile_model(c.model_path, tmp_path / "again.stretch", CompileOptions(target="pixel6", dump_dir=tmp_path / "dump", use_cache=False))
    first, second = tree_bytes(c.bundle), tree_bytes(tmp_path / "again.stretch")
    assert sorted(first) == sorted(second)
    assert {"manifest.json", "manifest.bin", "SHA256SUMS"} <= set(first)
    for rel in first:
        assert first[rel] == second[rel], rel
    assert tree_bytes(c.dump_dir) == tree_bytes(tmp_path / "dump")


@pytest.mark.slow  # compiles in separate processes, each importing TensorFlow and lowering (about 10 s)
def test_two_processes_give_identical_bundles_and_dumps(compiled: dict[str, Compiled], tmp_path: Path) -> None:
    c = compiled["nested"]
    trees = []
    for k in range(2):
        out, dump = tmp_path / f"b{k}.stretch", tmp_path / f"dump{k}"
        # a fresh cache directory each time, so both processes run the whole lowering
        proc = run_stretchc(
            ["compile", str(c.model_path), "-t", "pixel6", "-o", str(out), "--dump-dir", str(dump), "-q"],
            env_extra={"STRETCHC_CACHE_DIR": str(tmp_path / f"cache{k}")},
        )
        assert proc.returncode == 0, proc.stderr
        trees.append((tree_bytes(out), tree_bytes(dump)))
    assert trees[0] == trees[1]
    # and the same bytes as the in-process compile of the session fixture
    assert trees[0][0] == tree_bytes(c.bundle)
    assert trees[0][1] == tree_bytes(c.dump_dir)
