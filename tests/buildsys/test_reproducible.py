"""Bundles are byte-identical across processes, with a cold and with a warm lowering cache (issue 6.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.buildsys.conftest import cli, tree_bytes

# slow (not in `scripts/test.sh --fast`): compiles in separate processes, each importing TensorFlow and lowering with onnx2tf (about 26 s)
pytestmark = pytest.mark.slow


def test_identical_bytes_cold_and_warm_cache(tmp_path: Path, small_model: Path) -> None:
    args = ["compile", str(small_model), "-t", "pixel6", "-q"]
    cli([*args, "-o", str(tmp_path / "a")], cache=tmp_path / "c1")  # cold, cache c1
    cli([*args, "-o", str(tmp_path / "b")], cache=tmp_path / "c2")  # cold, another cache
    warm = cli([*args, "-o", str(tmp_path / "c"), "--diagnostics=json"], cache=tmp_path / "c1")  # warm
    assert '"cache-hit"' in warm.stderr
    a, b, c = (tree_bytes(tmp_path / n) for n in "abc")
    assert set(a) >= {"manifest.json", "manifest.bin", "SHA256SUMS"}
    assert a == b
    assert a == c


def test_bundle_has_no_absolute_paths_or_times(tmp_path: Path, small_model: Path) -> None:
    out = tmp_path / "deep" / "dir" / "b.stretch"
    cli(["compile", str(small_model), "-o", str(out), "-q"], cache=tmp_path / "c")
    for rel, data in tree_bytes(out).items():
        for needle in (str(tmp_path), str(Path.home()), "/tmp/"):
            assert needle.encode() not in data, f"{rel} contains {needle}"


def test_no_cache_gives_the_same_bundle(tmp_path: Path, small_model: Path) -> None:
    args = ["compile", str(small_model), "-q"]
    cli([*args, "-o", str(tmp_path / "a")], cache=tmp_path / "c")
    cli([*args, "-o", str(tmp_path / "b"), "--no-cache"], cache=tmp_path / "unused")
    assert not (tmp_path / "unused").exists()
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
