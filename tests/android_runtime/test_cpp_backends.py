"""The C++ runtime's backends (android_runtime/src/backends/): the report names the backend and accelerator that ran
each partition and why a fallback ran; the DSP backend loads the classic TFLite C API and the Hexagon delegate with
dlopen, applies powersave_level and library_path, and falls back (saying why) when a library or symbol is missing,
the delegate cannot be created or does not take the whole partition. On this machine those libraries are the test
doubles of tests/android_runtime/doubles/ (README.md there); bytes copied count the staging copies they need."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.bundle.hostile import write_manifest

from tests.android_runtime.conftest import compile_bundle

# slow (not in `scripts/test.sh --fast`): builds the C++ runtime with CMake (once per session) and compiles bundles for it
pytestmark = pytest.mark.slow


def run(bin_: Path, bundle: Path, tmp: Path, *args: str, libs: list[Path] | None = None, mode: str | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Runs stretch_benchmark with fixed inputs, the dynamic linker seeing only `libs`; returns its report."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LD_LIBRARY_PATH", "STRETCH_HEXAGON_DOUBLE"))}
    if libs:
        env["LD_LIBRARY_PATH"] = ":".join(str(p) for p in libs)
    if mode:
        env["STRETCH_HEXAGON_DOUBLE"] = mode
    env["STRETCH_HEXAGON_DOUBLE_RECORD"] = str(tmp / "hexagon-calls.txt")
    manifest = json.loads((bundle / "manifest.json").read_text())
    inputs = []
    for io in manifest["inputs"]:
        np.save(tmp / f"{io['name']}.npy", np.random.default_rng(5).standard_normal(io["shape"]).astype(io["dtype"]))
        inputs += ["--input", f"{io['name']}={tmp / (io['name'] + '.npy')}"]
    proc = subprocess.run([str(bin_), "--bundle", str(bundle), *inputs, "--runs", "2", "--warmup", "1", "--output-dir", str(tmp / "out"),
                           "--report", str(tmp / "report.json"), *args], capture_output=True, text=True, errors="replace", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads((tmp / "report.json").read_text())


def outputs(tmp: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted((tmp / "out").iterdir())}


def calls(tmp: Path) -> list[str]:
    f = tmp / "hexagon-calls.txt"
    return f.read_text().splitlines() if f.exists() else []


def staged_bytes(bundle: Path, partition: str) -> int:
    """Bytes of the slots partition `partition` reads and writes: what a classic interpreter copies per run."""
    m = json.loads((bundle / "manifest.json").read_text())
    slots = {s["name"]: s for s in m["buffers"]["slots"]}
    sync = {s["name"]: slots[s["slot"]] for s in m["sync_points"]}
    p = next(p for p in m["partitions"] if p["name"] == partition)
    return sum(np.dtype(sync[b["sync"]]["dtype"]).itemsize * int(np.prod(sync[b["sync"]]["shape"])) for b in [*p["inputs"], *p["outputs"]])


@pytest.fixture(scope="module")
def doubles(benchmark_bin: Path) -> Path:
    d = benchmark_bin.parent / "doubles"
    assert (d / "libtensorflowlite_c.so").is_file() and (d / "libtensorflowlite_hexagon_jni.so").is_file()
    return d


@pytest.fixture(scope="module")
def dsp_partition(bundles: dict[str, Path]) -> str:
    m = json.loads((bundles["three"] / "manifest.json").read_text())
    (name,) = [p["name"] for p in m["partitions"] if p["processor"] == "dsp"]
    return name


def test_report_names_what_ran_each_partition(benchmark_bin: Path, bundles: dict[str, Path], tmp_path: Path) -> None:
    """Without the classic TFLite libraries (and without a GPU) the accelerated partitions run their CPU fallback,
    and the report and the text say so, with the reason; nothing is copied at sync points."""
    proc, report = run(benchmark_bin, bundles["three"], tmp_path)
    manifest = json.loads((bundles["three"] / "manifest.json").read_text())
    for p in manifest["partitions"]:
        r = report["partitions"][p["name"]]
        assert (r["processor"], r["delegate"]) == (p["processor"], p["delegate"])
        assert r["ran_on"]["backend"] == "cpu" and r["ran_on"]["delegate"] == "xnnpack"
        assert r["ran_on"]["accelerator"].startswith("LiteRT CPU accelerator (XNNPACK") and r["ran_on"]["options"] == f"xnnpack: num_threads = {p['threads']}"
        assert r["bytes_copied_per_run"] == 0
        if p["processor"] == "cpu":
            assert r["fallback_reason"] is None and r["requested_options"] is None
    gpu = next(r for r in report["partitions"].values() if r["processor"] == "gpu")
    assert gpu["fallback_reason"].startswith("gpu: LiteRT GPU accelerator (opencl, fp32) cannot compile it")
    assert gpu["requested_options"] == "gpu_options: precision = 2; backend = 1"
    dsp = next(r for r in report["partitions"].values() if r["processor"] == "dsp")
    assert dsp["fallback_reason"].startswith("hexagon: no classic TFLite C API (libtensorflowlite_c.so: cannot open shared object file")
    assert dsp["requested_options"] == "powersave_level = 255; library_path = /data/local/tmp/stretch; skel = libhexagon_nn_skel_v66.so"
    assert report["bytes_copied_per_run"]["sync_points"] == 0
    assert "fallback because hexagon: no classic TFLite C API" in proc.stdout and "0 at sync points" in proc.stdout


def test_hexagon_double_runs_the_dsp_partition(benchmark_bin: Path, bundles: dict[str, Path], doubles: Path, dsp_partition: str, tmp_path: Path) -> None:
    """With the doubles on the library path the DSP partition runs through the classic C API and the Hexagon
    delegate: the manifest's library_path and powersave_level reach the delegate, the staging copies are counted
    (the bytes-copied figure goes from 0 to the partition's slot bytes), and the outputs are the same bytes."""
    bundle = bundles["three"]
    (tmp_path / "cpu").mkdir()
    _, plain = run(benchmark_bin, bundle, tmp_path / "cpu")
    (tmp_path / "dsp").mkdir()
    proc, report = run(benchmark_bin, bundle, tmp_path / "dsp", libs=[doubles])
    r = report["partitions"][dsp_partition]
    assert r["ran_on"]["backend"] == "dsp" and r["ran_on"]["delegate"] == "hexagon" and r["fallback_reason"] is None
    assert str(doubles / "libtensorflowlite_hexagon_jni.so") in r["ran_on"]["accelerator"] and "TEST DOUBLE" in r["ran_on"]["accelerator"]
    assert "powersave_level 255" in r["ran_on"]["accelerator"]
    assert calls(tmp_path / "dsp") == [
        "init_with_path /data/local/tmp/stretch",
        "create powersave_level=255 debug_level=0 max_delegated_partitions=0 min_nodes_per_partition=0 mode=whole",
        "prepare nodes=2 delegated=2",
        "delete",
        "teardown",
    ]
    staged = staged_bytes(bundle, dsp_partition)
    assert staged > 0 and r["bytes_copied_per_run"] == staged
    assert plain["bytes_copied_per_run"]["sync_points"] == 0 and report["bytes_copied_per_run"]["sync_points"] == staged
    assert f"{staged} at sync points" in proc.stdout
    assert report["bytes_copied_per_run"]["model_inputs"] == plain["bytes_copied_per_run"]["model_inputs"] > 0
    assert outputs(tmp_path / "dsp") == outputs(tmp_path / "cpu")
    (tmp_path / "seq").mkdir()
    run(benchmark_bin, bundle, tmp_path / "seq", "--sequential", libs=[doubles])
    assert outputs(tmp_path / "seq") == outputs(tmp_path / "cpu")


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no-hexagon-library", "hexagon: no Hexagon delegate library (libtensorflowlite_hexagon_jni.so: cannot open shared object file"),
        ("missing-symbol", "hexagon: no Hexagon delegate library (libtensorflowlite_hexagon_jni.so lacks TfLiteHexagonDelegateCreate)"),
        ("unsupported", "hexagon: TfLiteHexagonDelegateCreate returned null"),
        ("partial", "hexagon: the Hexagon delegate does not take the whole partition (1 of 2 ops left to the CPU)"),
    ],
)
def test_hexagon_fallbacks_say_why(benchmark_bin: Path, bundles: dict[str, Path], doubles: Path, dsp_partition: str, tmp_path: Path, case: str, reason: str) -> None:
    libs = {"missing-symbol": [doubles / "without-create", doubles], "no-hexagon-library": [tmp_path / "only-c"]}.get(case, [doubles])
    if case == "no-hexagon-library":
        (tmp_path / "only-c").mkdir()
        shutil.copy(doubles / "libtensorflowlite_c.so", tmp_path / "only-c")
    (tmp_path / "run").mkdir()
    proc, report = run(benchmark_bin, bundles["three"], tmp_path / "run", libs=libs, mode=case if case in ("unsupported", "partial") else None)
    r = report["partitions"][dsp_partition]
    assert r["ran_on"]["backend"] == "cpu" and r["fallback_reason"].startswith(reason), r["fallback_reason"]
    assert f"partition {dsp_partition}: hexagon unavailable" in proc.stderr
    assert report["bytes_copied_per_run"]["sync_points"] == 0
    made = [c for c in calls(tmp_path / "run") if c.startswith("create")]
    assert made == ([] if case in ("no-hexagon-library", "missing-symbol") else [made[0]]) and all("powersave_level=255" in c for c in made)


def test_gpu_fp16_reaches_the_gpu_options(benchmark_bin: Path, tmp_path: Path) -> None:
    """A float16 GPU partition (--precision fp16-gpu) asks LiteRT's GPU accelerator for precision 1 (fp16); this
    machine has no GPU, so the request is read from the report (backends_selftest reads it back from the LiteRT
    options object)."""
    from stretchc.examples import example_model

    from tests.conftest import settings_with

    bundle = compile_bundle(example_model(), tmp_path / "fp16", {"s1.b1": "gpu"}, settings=settings_with("fp16-gpu"))
    m = json.loads((bundle / "manifest.json").read_text())
    gpu = [p for p in m["partitions"] if p["processor"] == "gpu"]
    assert gpu and all(p["precision"] == "float16" and p["delegate_options"]["precision"] == "fp16" for p in gpu)
    (tmp_path / "run").mkdir()
    _, report = run(benchmark_bin, bundle, tmp_path / "run")
    for p in gpu:
        r = report["partitions"][p["name"]]
        assert r["requested_options"] == "gpu_options: precision = 1; backend = 1"
        assert r["fallback_reason"].startswith("gpu: LiteRT GPU accelerator (opencl, fp16) cannot compile it")


def test_backend_options_reach_litert(benchmark_bin: Path) -> None:
    proc = subprocess.run([str(benchmark_bin.parent / "backends_selftest")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok: gpu fp16 reaches gpu_options as precision = 1" in proc.stdout
    assert "ok: npu dispatch_library_dir reaches the environment as DispatchLibraryDir" in proc.stdout


def _as_npu(src: Path, dst: Path, options: dict[str, Any]) -> Path:
    """A copy of the "three" bundle whose DSP partition asks for the NPU (as the NPU compiler backend writes it)."""
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text())
    for p in m["partitions"]:
        if p["processor"] == "dsp":
            p.update(processor="npu", delegate="litert-npu", delegate_options=options)
    for lane in m["schedule"]["lanes"]:
        if lane["processor"] == "dsp":
            lane["processor"] = "npu"
    write_manifest(dst, m)
    return dst


NPU_OPTIONS = {"vendor": "qualcomm", "soc_model": "SM8550", "htp_performance_mode": "burst", "dispatch_library_dir": "/nonexistent/dispatch"}


def test_npu_partition_falls_back_without_the_dispatch_library(benchmark_bin: Path, bundles: dict[str, Path], dsp_partition: str, tmp_path: Path) -> None:
    bundle = _as_npu(bundles["three"], tmp_path / "npu", NPU_OPTIONS)
    (tmp_path / "npu-run").mkdir()
    _, report = run(benchmark_bin, bundle, tmp_path / "npu-run")
    r = report["partitions"][dsp_partition]
    assert (r["processor"], r["delegate"], r["ran_on"]["backend"]) == ("npu", "litert-npu", "cpu")
    assert r["requested_options"] == "qualcomm: htp_performance_mode = 2"
    assert r["fallback_reason"].startswith("litert-npu: LiteRT NPU accelerator (qualcomm SM8550, dispatch library dir /nonexistent/dispatch, "
                                           "htp_performance_mode burst) cannot compile it")
    (tmp_path / "cpu-run").mkdir()
    run(benchmark_bin, bundles["three"], tmp_path / "cpu-run")
    assert outputs(tmp_path / "npu-run") == outputs(tmp_path / "cpu-run")


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        ({"delegate": "nnapi"}, "[schema] manifest field partitions[3].delegate: 'nnapi' is not one of xnnpack, gpu, hexagon, litert-npu"),
        ({"htp_performance_mode": "turbo"}, "[schema] partition s1.b2: delegate option htp_performance_mode is turbo, not one of default, "),
        ({"dispatch_library_dir": 7}, "[schema] partition s1.b2: delegate option dispatch_library_dir must be a string"),
    ],
)
def test_unknown_delegates_and_bad_options_refused(benchmark_bin: Path, bundles: dict[str, Path], tmp_path: Path, edit: dict[str, Any], error: str) -> None:
    options = {**NPU_OPTIONS, **{k: v for k, v in edit.items() if k != "delegate"}}
    bundle = _as_npu(bundles["three"], tmp_path / "b", options)
    if "delegate" in edit:
        m = json.loads((bundle / "manifest.json").read_text())
        next(p for p in m["partitions"] if p["processor"] == "npu")["delegate"] = edit["delegate"]
        write_manifest(bundle, m)
    proc = subprocess.run([str(benchmark_bin), "--bundle", str(bundle), "--runs", "1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error[bad-bundle]: {bundle}: {error}"), proc.stderr[-2000:]


def test_generic_runtime_code_spells_no_processor() -> None:
    """Only src/backends/ maps processor and delegate names to code (the loader and the runtime ask its registry)."""
    import re

    from tests.android_runtime.conftest import RUNTIME

    word = re.compile(r'"(cpu|gpu|dsp|npu|xnnpack|hexagon|litert-npu)"')
    generic = [f for d in ("src", "tools") for f in sorted((RUNTIME / d).glob("*.*")) if f.suffix in (".h", ".cc")]
    assert any(f.name == "runtime.cc" for f in generic) and any(f.name == "bundle.cc" for f in generic)
    found = [f"{f.name}:{n}: {line.strip()}" for f in generic for n, line in enumerate(f.read_text().splitlines(), 1) if word.search(line)]
    assert found == []
