"""Hexagon quantization quality (issue 4): calibrate DSP partitions on 100 inputs, measure on 200 others.

Models: the example (examples/branchy.onnx, s1.b1 on the DSP) and a reduced 2-branch ResNet-style model
from the model builder (image 64, bottleneck blocks, branch 1 of each stage on the DSP). Inputs: uniform
[0, 1) NCHW, calibration and measurement drawn from different seeds. Reports output SQNR (dB) and max abs
error vs the float ONNX model (onnxruntime), per-sync-point SQNR, and top-1 agreement.

    .venv/bin/python bench/quant_quality.py [--calib N] [--measure N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stretchc.console import Console, set_console  # noqa: E402
from stretchc.driver import CompileOptions, compile_model  # noqa: E402
from stretchc.compile_settings import CompileSettings  # noqa: E402
from stretchc.verify import verify_bundle  # noqa: E402
from tests.backends.dsp.nets import build  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calib", type=int, default=100)
    ap.add_argument("--measure", type=int, default=200)
    args = ap.parse_args()
    set_console(Console(quiet=True))
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        models = {
            "example (branchy.onnx, s1.b1=dsp)": (REPO / "examples" / "branchy.onnx", {"s1.b1": "dsp"}, False),
            "2-branch ResNet-style (builder, 64 px)": (build("resnet", t), {}, True),
        }
        rows = []
        for label, (path, place, from_model) in models.items():
            shape = [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim][1:]
            calib = np.random.default_rng(0).random((args.calib, *shape)).astype(np.float32)
            np.save(t / "calib.npy", calib)
            start = time.perf_counter()
            res = compile_model(path, t / "b.stretch", CompileOptions(target="mi9", place=place, place_from_model=from_model, settings=CompileSettings(calib=t / "calib.npy")))
            secs = time.perf_counter() - start
            rng = np.random.default_rng(12345)
            feeds = [{"input": rng.random((1, *shape)).astype(np.float32)} for _ in range(args.measure)]
            rep = verify_bundle(t / "b.stretch", path, inputs=feeds)
            out = next(c for c in rep.checks if c.kind == "output")
            syncs = [c for c in rep.checks if c.kind == "sync" and c.sqnr_db is not None and np.isfinite(c.sqnr_db)]
            worst_sync = min(syncs, key=lambda c: c.sqnr_db) if syncs else None  # type: ignore[arg-type,return-value]
            dsp = [p["name"] for p in res.manifest["partitions"] if p["processor"] == "dsp"]
            top1 = next(iter(rep.top1_agreement.values()), float("nan"))
            rows.append((label, ",".join(dsp), out.sqnr_db, out.max_abs_error, out.max_abs_reference, top1,
                         f"{worst_sync.name} {worst_sync.sqnr_db:.1f}" if worst_sync else "-", secs))
            print(rep.table())
    print(f"\ncalibration inputs: {args.calib}, measurement inputs: {args.measure} (uniform [0,1), different seeds)")
    print("| model | DSP partitions | output SQNR (dB) | max abs err (max abs ref) | top-1 agreement | worst sync point SQNR (dB) | compile (s) |")
    print("|---|---|---|---|---|---|---|")
    for label, dsp, db, err, ref, top1, ws, secs in rows:
        print(f"| {label} | {dsp} | {db:.1f} | {err:.2e} ({ref:.2e}) | {100 * top1:.1f}% | {ws} | {secs:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
