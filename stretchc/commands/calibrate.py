"""`stretchc calibrate -t host -o FILE.yaml`: measure this machine's CPU kernels and write it as a target.

Describes the machine (stretchc/targets/host.py), times the kernel micro-benchmarks at float32 and int8 on one
thread with LiteRT's XNNPACK kernels (stretchc/costmodel/microbench.py: dense, 1 x 1 and depthwise
convolutions, fully connected, elementwise, pooling, concatenation, the shape classes XNNPACK runs off its fast
paths, chains whose weights overflow the last-level cache), sets the peaks from the fastest kernels, fits the cost
model's CPU parameters to the minimums, and writes a target file with them (`measured`). Compile
for it with `-t FILE.yaml`: its predictions then rest on this machine's measurements, and the C++ runtime's
`stretch_benchmark` can check them (bench/host_check.py).

Only the machine stretchc runs on can be measured (`-t host`); a phone would need its kernels run through adb.
An existing FILE is replaced only when it is a target file this command wrote.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stretchc import api
from stretchc.console import get_console
from stretchc.costmodel.microbench import PROCESSOR


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("calibrate", parents=[common], help="measure this machine's CPU kernels and write it as a target file", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-t", "--target", required=True, help="what to measure: host (this machine)")
    p.add_argument("-o", "--output", required=True, type=Path, help="the target file to write (.yaml)")
    p.add_argument("--runs", type=int, default=50, help="timed runs per micro-benchmark (the minimum counts; default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = get_console()
    data = api.calibrate(args.output, target=args.target, runs=args.runs, warmup=args.warmup, console=console)
    m = data["measured"]
    errors = [abs(p["left_out_pct"]) for p in m["points"]]
    console.out(f"wrote {args.output}: {data['description']}")
    cluster = data[PROCESSOR]["clusters"][0]
    console.out(f"  peak: {cluster['fmax_ghz']} GHz x {cluster['fp32_flop_per_cycle']} FLOP/cycle per core; memory {data['memory']['peak_gbps']} GB/s")
    for kind, p in m["kinds"].items():
        console.out(f"  {kind}: conv {p['conv']:.3f}, dwconv {p['dwconv']:.3f}, mem {p['mem']:.3f} of peak; {p['op_ms'] * 1e3:.1f} us per kernel")
        if p.get("weight_gbps"):
            console.out(f"    weights beyond the {m['cache_mb']:g} MiB cache read at {p['weight_gbps']:g} GB/s every run")
        if p.get("shape_classes"):
            console.out("    shape classes, times the base price: " + ", ".join(f"{c} x{f:g}" for c, f in p["shape_classes"].items()))
    console.out(f"  dispatch {m['dispatch_ms'][PROCESSOR] * 1e3:.1f} us per invoke; each micro-benchmark left out of the fit: median error {float(np.median(errors)):.1f}%, worst {max(errors):.1f}%")
    return 0
