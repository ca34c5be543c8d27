"""Host runtime parallel speedup (issue 2): a 2-branch model whose branches take >= 20 ms each on this
machine, run with `HostRuntime.run` (one thread per lane: --place s1.b0=cpu,s1.b1=gpu puts the branches on two lanes, which the
host runtime runs on the CPU) vs `HostRuntime.run_sequential`. Prints a markdown table; target ratio <= 0.6.

    .venv/bin/python bench/host_parallel.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

from stretchc.console import Console, set_console  # noqa: E402
from stretchc.driver import CompileOptions, compile_model  # noqa: E402
from stretchc.examples import branched_model  # noqa: E402
from stretchc.runtime.host import HostRuntime, Profile  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--depth", type=int, default=18)
    args = ap.parse_args()
    set_console(Console(quiet=True))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench2.onnx"
        onnx.save(branched_model(branches=(2,), size=args.size, width=args.width, depth=args.depth, name="bench2"), str(path))
        compile_model(path, Path(tmp) / "b.stretch", CompileOptions(target="pixel6", place={"s1.b0": "cpu", "s1.b1": "gpu"}))
        rt = HostRuntime(Path(tmp) / "b.stretch")
        x = {i["name"]: np.random.default_rng(0).random(i["shape"]).astype(i["dtype"]) for i in rt.manifest["inputs"]}
        ref = rt.run_sequential(x)
        got = rt.run(x)
        assert all(np.array_equal(ref[k], got[k]) for k in ref), "parallel and sequential runs disagree"
        for _ in range(3):  # warm-up
            rt.run(x)
            rt.run_sequential(x)
        par, seq, branch_ms = [], [], {"s1.b0": [], "s1.b1": []}
        for _ in range(args.runs):
            t = time.perf_counter()
            rt.run_sequential(x)
            seq.append((time.perf_counter() - t) * 1e3)
            prof = Profile()
            t = time.perf_counter()
            rt.run(x, profile=prof)
            par.append((time.perf_counter() - t) * 1e3)
            for b in branch_ms:
                s, e, _ = prof.partitions[b]
                branch_ms[b].append(e - s)
        p, s = statistics.median(par), statistics.median(seq)
        pmin, smin = min(par), min(seq)  # NN-Stretch's protocol reports the minimum of the runs
        print(f"machine: {machine()}")
        print(f"model: branched_model(branches=(2,), size={args.size}, width={args.width}, depth={args.depth}); {args.runs} runs, 3 warm-up")
        print(
            table(
                ["branch s1.b0 (ms)", "branch s1.b1 (ms)", "run_sequential median / min (ms)", "run, 1 thread/lane median / min (ms)",
                 "ratio of medians", "ratio of minimums", "target"],
                [[f"{statistics.median(branch_ms['s1.b0']):.1f}", f"{statistics.median(branch_ms['s1.b1']):.1f}", f"{s:.1f} / {smin:.1f}",
                  f"{p:.1f} / {pmin:.1f}", f"{p / s:.2f}", f"{pmin / smin:.2f}", "<= 0.6"]],
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
