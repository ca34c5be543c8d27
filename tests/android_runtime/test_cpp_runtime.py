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

from stretchc.bundle.binary import decode_manifest, encode_manifest
from stretchc.bundle.manifest import sha256_bytes

CRASH_SIGNALS = {-4, -6, -7, -8, -11}  # SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV


def run_bench(bin_: Path, bundle: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_), "--bundle", str(bundle), *args], capture_output=True, text=True, errors="replace", timeout=timeout)


@pytest.mark.parametrize("name", ["example", "three"])
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
    assert report["bytes_copied_at_sync_points"] == 0
    assert "bytes copied at sync points: 0" in proc.stdout
    for p in manifest["partitions"]:
        if p["processor"] != "cpu":  # no GPU/DSP on this machine: the tool says the fallback runs
            assert f"partition {p['name']}" in proc.stderr and "fallback" in proc.stderr
    expected = HostRuntime(bundle).run(inputs)
    for io in manifest["outputs"]:
        got = np.load(tmp_path / "out" / f"{io['name']}.npy")
        want = expected[io["name"]]
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes(), f"{name}/{io['name']}: max abs diff {np.max(np.abs(got - want))}"


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


def _write_manifest(bundle: Path, manifest: dict | None = None, data: bytes | None = None, resum: bool = True) -> None:
    """Writes manifest.bin (from a dict or raw bytes) and, with resum, a SHA256SUMS that vouches for it."""
    blob = data if data is not None else encode_manifest(manifest)
    (bundle / "manifest.bin").write_bytes(blob)
    if resum:
        lines = []
        for f in sorted(p for p in bundle.rglob("*") if p.is_file() and p.name != "SHA256SUMS"):
            lines.append(f"{sha256_bytes(f.read_bytes())}  {f.relative_to(bundle).as_posix()}\n")
        (bundle / "SHA256SUMS").write_text("".join(lines))


def _check(bin_: Path, bundle: Path) -> subprocess.CompletedProcess[str]:
    proc = run_bench(bin_, bundle, "--check", timeout=30)
    assert proc.returncode not in CRASH_SIGNALS and proc.returncode >= 0, f"crashed: {proc.returncode} {proc.stderr[-500:]}"
    return proc


def _refused(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode == 3 and proc.stderr.startswith("error[bad-bundle]") and len(proc.stderr.strip()) > 30


def test_unmodified_bundle_accepted(benchmark_bin: Path, bundles: dict[str, Path]) -> None:
    for b in bundles.values():
        p = _check(benchmark_bin, b)
        assert p.returncode == 0 and "bundle OK" in p.stdout, p.stderr


HOSTILE_EDITS = {
    "version": lambda m: m.update(format_version=2),
    "format": lambda m: m.update(format="other"),
    "path-parent": lambda m: m["partitions"][0].update(file="../" + m["partitions"][0]["file"]),
    "path-absolute": lambda m: m["partitions"][0].update(file="/etc/passwd"),
    "path-backslash": lambda m: m["partitions"][0].update(file="partitions\\x.tflite"),
    "path-empty": lambda m: m["partitions"][0].update(file=""),
    "path-dotdot-middle": lambda m: m["partitions"][0].update(file="partitions/../../x.tflite"),
    "path-missing": lambda m: m["partitions"][0].update(file="partitions/none.tflite"),
    "sha": lambda m: m["partitions"][0].update(sha256="0" * 64),
    "offset-misaligned": lambda m: m["buffers"]["slots"][0].update(offset=m["buffers"]["slots"][0]["offset"] + 4),
    "offset-outside": lambda m: m["buffers"]["slots"][-1].update(offset=m["buffers"]["arena_size"]),
    "offset-negative": lambda m: m["buffers"]["slots"][0].update(offset=-64),
    "size-too-small": lambda m: m["buffers"]["slots"][1].update(size=4),
    "arena-huge": lambda m: m["buffers"].update(arena_size=1 << 40),
    "alignment": lambda m: m["buffers"].update(alignment=16),
    "overlap-live": lambda m: [s.update(offset=0) for s in m["buffers"]["slots"]],
    "unknown-slot": lambda m: m["sync_points"][0].update(slot="nope"),
    "unknown-sync": lambda m: m["partitions"][0]["outputs"][0].update(sync="nope"),
    "unknown-producer": lambda m: m["sync_points"][1].update(producer="ghost"),
    "schedule-missing": lambda m: m["schedule"]["lanes"][0]["partitions"].pop(),
    "schedule-twice": lambda m: m["schedule"]["lanes"][0]["partitions"].append(m["schedule"]["lanes"][0]["partitions"][0]),
    "schedule-reversed": lambda m: m["schedule"]["lanes"][0]["partitions"].reverse(),
    "steps-reversed": lambda m: m["schedule"]["steps"].reverse(),
    "threads": lambda m: m["partitions"][0].update(threads=0),
    "processor": lambda m: m["partitions"][0].update(processor="tpu"),
    "perm": lambda m: m["inputs"][0].update(perm=[0, 0, 1, 2]),
    "shape-huge": lambda m: m["buffers"]["slots"][0].update(shape=[1 << 31, 1 << 31, 1 << 31]),
    "name-hostile": lambda m: m["partitions"][0].update(name="../../evil"),
}


@pytest.mark.parametrize("edit", sorted(HOSTILE_EDITS))
def test_hostile_manifest_refused(benchmark_bin: Path, bundles: dict[str, Path], tmp_path: Path, edit: str) -> None:
    b = _copy(bundles["example"], tmp_path / "b")
    m = decode_manifest((b / "manifest.bin").read_bytes())
    HOSTILE_EDITS[edit](m)
    _write_manifest(b, m)
    p = _check(benchmark_bin, b)
    assert _refused(p), f"{edit}: rc={p.returncode} {p.stdout} {p.stderr}"


def test_symlink_out_of_bundle_refused(benchmark_bin: Path, bundles: dict[str, Path], tmp_path: Path) -> None:
    b = _copy(bundles["example"], tmp_path / "b")
    m = json.loads((b / "manifest.json").read_text())
    target = b / m["partitions"][0]["file"]
    outside = tmp_path / "outside.tflite"
    outside.write_bytes(target.read_bytes())
    target.unlink()
    os.symlink(outside, target)
    p = _check(benchmark_bin, b)
    assert _refused(p) and "outside the bundle" in p.stderr


def test_edit_without_resum_refused_by_sha256sums(benchmark_bin: Path, bundles: dict[str, Path], tmp_path: Path) -> None:
    b = _copy(bundles["example"], tmp_path / "b")
    m = decode_manifest((b / "manifest.bin").read_bytes())
    m["compiler"]["version"] = "9.9.9"  # a valid manifest, but not the one SHA256SUMS vouches for
    _write_manifest(b, m, resum=False)
    p = _check(benchmark_bin, b)
    assert _refused(p) and "SHA256SUMS" in p.stderr


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
        _write_manifest(b, data=bytes(data), resum=resum)
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
