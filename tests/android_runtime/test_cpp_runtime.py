"""The C++ runtime (android_runtime/, host build): same outputs as the Python host runtime, bit for bit on
the CPU path; hostile manifests refused with a message, never a crash."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from stretchc.bundle.binary import decode_manifest

from tests.bundle import hostile

# slow (not in `scripts/test.sh --fast`): builds the C++ runtime with CMake (once per session) and compiles bundles for it
pytestmark = pytest.mark.slow

CRASH_SIGNALS = {-4, -6, -7, -8, -11}  # SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV


def run_bench(bin_: Path, bundle: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_), "--bundle", str(bundle), *args], capture_output=True, text=True, errors="replace", timeout=timeout)


@pytest.mark.parametrize("name", ["example", "whole", "three", "lanes"])
def test_outputs_match_host_runtime_bit_for_bit(benchmark_bin: Path, bundles: dict[str, Path], tmp_path: Path, name: str) -> None:
    from stretchc.runtime.host import HostRuntime

    bundle = bundles[name]
    manifest = json.loads((bundle / "manifest.json").read_text())
    rng = np.random.default_rng(3)
    inputs = {}
    args: list[str] = []
    for io in manifest["inputs"]:
        arr = rng.standard_normal(io["shape"]).astype(io["dtype"])
        inputs[io["name"]] = arr
        np.save(tmp_path / f"{io['name']}.npy", arr)
        args += ["--input", f"{io['name']}={tmp_path / (io['name'] + '.npy')}"]
    proc = run_bench(benchmark_bin, bundle, *args, "--warmup", "1", "--runs", "3", "--output-dir", str(tmp_path / "out"),
                     "--report", str(tmp_path / "report.json"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["bytes_copied_per_run"]["sync_points"] == 0  # every backend here works in the arena
    assert "bytes copied per run: 0 at sync points" in proc.stdout
    for p in manifest["partitions"]:
        if p["processor"] != "cpu":  # no GPU/DSP on this machine: the tool says the fallback runs
            assert f"partition {p['name']}" in proc.stderr and "fallback" in proc.stderr
            assert report["partitions"][p["name"]]["fallback_reason"].startswith(p["delegate"] + ": ")
    expected = HostRuntime(bundle).run(inputs)
    for io in manifest["outputs"]:
        got = np.load(tmp_path / "out" / f"{io['name']}.npy")
        want = expected[io["name"]]
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes(), f"{name}/{io['name']}: max abs diff {np.max(np.abs(got - want))}"


@pytest.mark.parametrize("name", ["example", "whole"])
def test_merged_bundles_match_onnx_runtime(benchmark_bin: Path, bundles: dict[str, Path], tmp_path: Path, name: str) -> None:
    """Partitions holding several regions (branches run one after another inside one invoke): the C++ runtime's
    outputs match ONNX Runtime on the float model."""
    import onnxruntime as ort

    from stretchc.examples import example_model

    bundle = bundles[name]
    x = np.random.default_rng(5).random((1, 3, 160, 160), dtype=np.float32)
    np.save(tmp_path / "input.npy", x)
    proc = run_bench(benchmark_bin, bundle, "--input", f"input={tmp_path / 'input.npy'}", "--warmup", "0", "--runs", "1", "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    session = ort.InferenceSession(example_model().SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, {"input": x})[0]
    got = np.load(tmp_path / "out" / f"{session.get_outputs()[0].name}.npy")
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 1e-4 * np.max(np.abs(want)) + 1e-5


def test_sequential_mode_same_outputs(benchmark_bin: Path, bundles: dict[str, Path], tmp_path: Path) -> None:
    bundle = bundles["three"]
    for mode in ("par", "seq"):
        extra = ["--sequential"] if mode == "seq" else []
        proc = run_bench(benchmark_bin, bundle, "--runs", "2", "--output-dir", str(tmp_path / mode), *extra)
        assert proc.returncode == 0, proc.stderr[-2000:]
    for f in (tmp_path / "par").iterdir():
        assert f.read_bytes() == (tmp_path / "seq" / f.name).read_bytes()


def test_bad_command_lines(benchmark_bin: Path, bundles: dict[str, Path], tmp_path: Path) -> None:
    assert subprocess.run([str(benchmark_bin)], capture_output=True).returncode == 2
    assert run_bench(benchmark_bin, bundles["example"], "--runs", "x").returncode == 2
    p = run_bench(benchmark_bin, bundles["example"], "--input", f"nope={tmp_path / 'x.npy'}")
    assert p.returncode == 3 and "no input named nope" in p.stderr
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    p = run_bench(benchmark_bin, bundles["example"], "--input", f"input={tmp_path / 'bad.npy'}")
    assert p.returncode == 3 and "error" in p.stderr
    np.save(tmp_path / "wrong.npy", np.zeros((1, 3, 8, 8), np.float32))
    p = run_bench(benchmark_bin, bundles["example"], "--input", f"input={tmp_path / 'wrong.npy'}")
    assert p.returncode != 0 and "expected" in p.stderr


# ---------------------------------------------------------------- hostile manifests


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _write_manifest(bundle: Path, data: bytes, resum: bool) -> None:
    """Writes manifest.bin and, with resum, a SHA256SUMS that vouches for it."""
    (bundle / "manifest.bin").write_bytes(data)
    if resum:
        hostile.resum(bundle)


def _check(bin_: Path, bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_bench(bin_, bundle, *(args or ("--check",)), timeout=60)
    assert proc.returncode not in CRASH_SIGNALS and proc.returncode >= 0, f"crashed: {proc.returncode} {proc.stderr[-500:]}"
    return proc


def _refused(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode == 3 and proc.stderr.startswith("error[bad-bundle]") and len(proc.stderr.strip()) > 30


def test_unmodified_bundle_accepted(benchmark_bin: Path, bundles: dict[str, Path]) -> None:
    for b in bundles.values():
        p = _check(benchmark_bin, b)
        assert p.returncode == 0 and "bundle OK" in p.stdout, p.stderr


@pytest.mark.parametrize("case", [c for c in hostile.cases() if "cpp" in c.readers], ids=lambda c: c.name)
def test_hostile_case_refused_by_its_rule(benchmark_bin: Path, bundles: dict[str, Path], tmp_path: Path, case: hostile.Case) -> None:
    """The shared corpus (tests/data/hostile_manifests.json): refused with the rule the Python validator names."""
    b = hostile.build_case(bundles["example"], case, tmp_path / "b")
    if case.load:
        assert _check(benchmark_bin, b).returncode == 0  # the manifest alone is consistent
        p = _check(benchmark_bin, b, "--runs", "1", "--warmup", "0")
        error = p.stderr.strip().splitlines()[-1]  # after LiteRT's own log lines
    else:
        p = _check(benchmark_bin, b)
        error = p.stderr
        assert _refused(p) and p.stderr.count("\n") == 1, f"rc={p.returncode} {p.stdout} {p.stderr}"
    assert p.returncode == 3 and error.startswith(f"error[bad-bundle]: {b}: [{case.rule}] "), f"rc={p.returncode} {p.stdout} {p.stderr}"


def test_mutated_manifests_never_crash(benchmark_bin: Path, bundles: dict[str, Path], tmp_path: Path) -> None:
    """Random byte flips and truncations of manifest.bin for a bounded time: every run exits cleanly; every
    mutation that SHA256SUMS does not vouch for is refused with a message."""
    src = bundles["three"]
    original = (src / "manifest.bin").read_bytes()
    b = _copy(src, tmp_path / "b")
    rng = random.Random(11)
    deadline = time.monotonic() + float(os.environ.get("STRETCH_FUZZ_SECONDS", "20"))
    n = accepted = 0
    while time.monotonic() < deadline:
        data = bytearray(original)
        kind = rng.random()
        if kind < 0.2:
            data = data[: rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        resum = rng.random() < 0.5  # half the time, make SHA256SUMS agree so the parser and checks are exercised
        _write_manifest(b, bytes(data), resum)
        p = _check(benchmark_bin, b)
        if bytes(data) == original:
            continue
        n += 1
        if not resum:
            assert _refused(p), f"mutation {n} accepted: {p.stdout} {p.stderr}"
        elif p.returncode == 0:
            accepted += 1  # a flip in a free-text field can leave a valid manifest; it must still decode
            decode_manifest(bytes(data))
        else:
            assert _refused(p), f"mutation {n}: rc={p.returncode} {p.stderr}"
    assert n > 50
