"""Fixtures of the C++ runtime tests: the host build and compiled bundles (shared by the whole session)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import onnx
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "android_runtime"
BENCH = RUNTIME / "build-host" / "stretch_benchmark"


@pytest.fixture(scope="session")
def benchmark_bin() -> Path:
    """Builds android_runtime for the host (incremental: reuses build-host/) and returns stretch_benchmark."""
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        pytest.skip("cmake and a C++ compiler are needed (apt-get install -y cmake g++ libflatbuffers-dev)")
    proc = subprocess.run([str(RUNTIME / "build_host.sh")], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    selftest = subprocess.run([str(RUNTIME / "build-host" / "stretch_runtime_selftest")], capture_output=True, text=True, cwd=RUNTIME / "build-host")
    assert selftest.returncode == 0, selftest.stderr
    return BENCH


def compile_bundle(model: onnx.ModelProto, out: Path, place: dict[str, str] | None = None, target: str = "pixel6", settings: object = None) -> Path:
    from stretchc.driver import CompileOptions, compile_model

    src = out.with_suffix(".onnx")
    onnx.save(model, src)
    compile_model(src, out, CompileOptions(target=target, place=dict(place or {}), **({"settings": settings} if settings is not None else {})))  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory, example_bundle: Path) -> dict[str, Path]:
    """The example model (2 and 3 branches, one branch on the GPU; its CPU branches merged into partitions), the
    same model with the default placement (the whole model one partition: its branches run one after another in
    it), a 3-branch model compiled all int8 for the Snapdragon 855 with one branch on each of the CPU, the GPU
    and the DSP (calibrated), and the example compiled for this machine with two CPU lanes (branches on both)."""
    import json

    from stretchc.examples import branched_model

    from tests.conftest import host_target_file, settings_with

    d = tmp_path_factory.mktemp("cpp_bundles")
    from stretchc.examples import example_model

    out = {"example": example_bundle}
    out["whole"] = compile_bundle(example_model(), d / "whole")
    whole = json.loads((out["whole"] / "manifest.json").read_text())["partitions"]
    assert len(whole) == 1 and len(whole[0]["regions"]) == 9, [p["regions"] for p in whole]
    merged = [p["regions"] for p in json.loads((example_bundle / "manifest.json").read_text())["partitions"] if len(p["regions"]) > 1]
    assert ["s2.b0", "s2.b1"] in merged, merged  # CPU siblings of one stage share a partition
    three = branched_model(branches=(3,), size=32, width=24, name="three")
    out["three"] = compile_bundle(three, d / "three", {"s1.b1": "gpu", "s1.b2": "dsp"}, target="mi9", settings=settings_with("int8", calib="random"))
    manifest = json.loads((out["three"] / "manifest.json").read_text())
    placed = {r: (p["processor"], p["precision"]) for p in manifest["partitions"] for r in p["regions"]}
    # the bundle must be what this fixture claims, or every test using it fails (never a quiet fallback)
    assert placed["s1.b0"] == ("cpu", "int8") and placed["s1.b1"] == ("gpu", "int8") and placed["s1.b2"] == ("dsp", "int8"), placed
    assert {prec for _, prec in placed.values()} == {"int8"}
    out["lanes"] = compile_bundle(example_model(), d / "lanes", target=str(host_target_file(d, lanes=2)))
    lanes = [(la["processor"], la["index"]) for la in json.loads((out["lanes"] / "manifest.json").read_text())["schedule"]["lanes"]]
    assert lanes == [("cpu", 0), ("cpu", 1)], lanes
    return out
