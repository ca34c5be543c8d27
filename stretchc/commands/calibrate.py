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
from typing import Any

import numpy as np
import yaml

from stretchc.console import get_console
from stretchc.costmodel.microbench import KERNELS, PROCESSOR, Measurement, fit, left_out_errors, measure, measured_peaks
from stretchc.driver import check_output_file
from stretchc.errors import StretchError
from stretchc.fileio import write_atomically
from stretchc.targets.host import HOST_TARGET, describe, last_level_cache_mb

HEADER = "# A host target measured by stretchc calibrate (stretchc/commands/calibrate.py); compile with -t THIS_FILE.\n"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("calibrate", parents=[common], help="measure this machine's CPU kernels and write it as a target file", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-t", "--target", required=True, help="what to measure: host (this machine)")
    p.add_argument("-o", "--output", required=True, type=Path, help="the target file to write (.yaml)")
    p.add_argument("--runs", type=int, default=50, help="timed runs per micro-benchmark (the minimum counts; default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    p.set_defaults(func=run)


def _ours(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(HEADER)) == HEADER.encode()


def target_file(raw: dict[str, Any], measurements: list[Measurement], runs: int, warmup: int, cache_mb: float | None) -> dict[str, Any]:
    """The measured target's contents: `raw` with the measured peaks and a `measured` section (the fitted CPU
    parameters, the last-level cache of `cache_mb` MiB they assume, and each micro-benchmark's minimum with its error
    in the fit and left out of it)."""
    raw = measured_peaks(raw, measurements)
    fitted = fit(raw, measurements, cache_mb)
    left = left_out_errors(raw, measurements, cache_mb)
    points = [
        {"kernel": m.kernel, "dtype": m.dtype, "ms": round(m.ms, 5), "error_pct": round(fitted.errors_pct[f"{m.kernel} {m.dtype}"], 1),
         "left_out_pct": round(left[f"{m.kernel} {m.dtype}"], 1)}
        for m in measurements
    ]
    return {**raw, "measured": {"runs": runs, "warmup": warmup, **fitted.measured(), "points": points}}


def run(args: argparse.Namespace) -> int:
    console = get_console()
    if args.target != HOST_TARGET:
        raise StretchError("usage", f"calibrate measures the machine it runs on: -t {HOST_TARGET} (measuring {args.target} would need its kernels run on it through adb, which stretchc does not do yet)")
    if args.output.suffix not in (".yaml", ".yml"):
        raise StretchError("usage", "the target file must end in .yaml or .yml (compile reads -t PATH as a file by that suffix)", file=str(args.output))
    if args.runs < 1 or args.warmup < 0:
        raise StretchError("usage", "--runs must be >= 1 and --warmup >= 0")
    check_output_file(args.output, ours=_ours, what="a target file")
    with console.step("describing this machine"):
        raw = describe()

    def progress(i: int, n: int, what: str) -> None:
        console.progress(what, i, n)

    with console.step(f"timing {2 * len(KERNELS)} kernel micro-benchmarks ({args.runs} runs each, one thread)"):
        measurements = measure(KERNELS, runs=args.runs, warmup=args.warmup, progress=progress)
    data = target_file(raw, measurements, args.runs, args.warmup, last_level_cache_mb())
    write_atomically((HEADER + yaml.safe_dump(data, sort_keys=False, width=140)).encode(), args.output)
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
