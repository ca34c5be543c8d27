"""C++ runtime (issue 7): a 2-branch model, one branch per lane (cpu + gpu lane; on this host the gpu lane runs
its CPU fallback on its own thread), parallel vs sequential latency, what ran each partition and the bytes the
runtime copied per run (at sync points: staging by backends that cannot work in the arena; at the model's inputs and
outputs: layout and dtype conversions).

    PYTHONPATH=. .venv/bin/python bench/cpp_parallel.py [--runs 20] [--warmup 3]

Every partition gets threads=1 (manifest rewritten, SHA256SUMS updated) so the two lanes use the two cores of a
2-core host instead of competing for them; the sequential baseline runs the same partitions, same threads, in
step order on one thread (`stretch_benchmark --sequential`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stretchc.bundle.binary import encode_manifest  # noqa: E402
from stretchc.bundle.manifest import dumps, sha256_bytes  # noqa: E402
from stretchc.driver import CompileOptions, compile_model  # noqa: E402
from stretchc.examples import branched_model  # noqa: E402


def single_thread(bundle: Path) -> dict:
    m = json.loads((bundle / "manifest.json").read_text())
    for p in m["partitions"]:
        p["threads"] = 1
    (bundle / "manifest.json").write_bytes(dumps(m))
    (bundle / "manifest.bin").write_bytes(encode_manifest(m))
    files = sorted(f for f in bundle.rglob("*") if f.is_file() and f.name != "SHA256SUMS")
    (bundle / "SHA256SUMS").write_text("".join(f"{sha256_bytes(f.read_bytes())}  {f.relative_to(bundle).as_posix()}\n" for f in files))
    return m


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--depth", type=int, default=18)
    args = ap.parse_args()
    subprocess.run([str(ROOT / "android_runtime" / "build_host.sh")], check=True, capture_output=True)
    bench = ROOT / "android_runtime" / "build-host" / "stretch_benchmark"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = branched_model(branches=(2,), size=args.size, width=args.width, depth=args.depth, name="two_branch_bench")
        onnx.save(model, tmp / "m.onnx")
        compile_model(tmp / "m.onnx", tmp / "bundle", CompileOptions(place={"s1.b0": "cpu", "s1.b1": "gpu"}))  # one branch per lane
        m = single_thread(tmp / "bundle")
        reports = {}
        for mode in ("sequential", "parallel"):
            cmd = [str(bench), "--bundle", str(tmp / "bundle"), "--runs", str(args.runs), "--warmup", str(args.warmup),
                   "--report", str(tmp / f"{mode}.json")] + (["--sequential"] if mode == "sequential" else [])
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            print(proc.stdout)
            reports[mode] = json.loads((tmp / f"{mode}.json").read_text())
    seq, par = reports["sequential"], reports["parallel"]
    branches = {k: v["ms"] for k, v in seq["partitions"].items() if ".b" in k}
    ratio = par["latency_ms"]["min"] / seq["latency_ms"]["min"]
    summary = {
        "model": f"branched_model(branches=(2,), size={args.size}, width={args.width}, depth={args.depth})",
        "lanes": [lane["processor"] for lane in m["schedule"]["lanes"]],
        "branch_ms_sequential": branches,
        "sequential_ms": seq["latency_ms"],
        "parallel_ms": par["latency_ms"],
        "ratio_min": round(ratio, 3),
        "ran_on": {k: f"{v['ran_on']['backend']}/{v['ran_on']['delegate']}" + (" (fallback)" if v["fallback_reason"] else "") for k, v in par["partitions"].items()},
        "bytes_copied_per_run": par["bytes_copied_per_run"],
        "sync_wait_ms": par["sync_wait_ms"],
    }
    print(json.dumps(summary, indent=2))
    ok = ratio <= 0.6 and par["bytes_copied_per_run"]["sync_points"] == 0 and all(v >= 20 for v in branches.values())
    print("PASS" if ok else "FAIL", f"parallel/sequential = {ratio:.3f} (goal <= 0.6), branches >= 20 ms: {all(v >= 20 for v in branches.values())}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
