"""Compile overhead (issue 2): `stretchc compile` of a 2-branch model with >= 20 M parameters vs the bare
`onnx2tf -i copy.onnx -o outdir -n` CLI on the same model. The onnx2tf run happens in a scratch directory
holding its calibration sample file (`calibration_image_sample_data_20x128x128x3_float32.npy`, float32
[20,128,128,3] in [0,1]) so it never reaches the network; PATH includes .venv/bin. stretchc runs with
--no-cache so it lowers every time. Median of --runs runs each; target ratio <= 1.3.

    .venv/bin/python bench/compile_overhead.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

from stretchc.examples import branched_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        model = branched_model(branches=(2,), size=32, width=1024, depth=6, name="big2")
        params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
        assert params >= 20_000_000, params
        src = scratch / "big2.onnx"
        onnx.save(model, str(src))
        np.save(scratch / "calibration_image_sample_data_20x128x128x3_float32.npy",
                np.random.default_rng(0).uniform(0, 1, (20, 128, 128, 3)).astype(np.float32))
        ours, bare = [], []
        for k in range(args.runs):
            out = scratch / f"b{k}.stretch"
            ours.append(_timed([str(BIN / "stretchc"), "compile", str(src), "-t", "pixel6", "-o", str(out), "-q", "--no-cache"], scratch, env))
            shutil.rmtree(out, ignore_errors=True)
            shutil.copy(src, scratch / "copy.onnx")  # onnx2tf overwrites its input
            bare.append(_timed([str(BIN / "onnx2tf"), "-i", "copy.onnx", "-o", f"outdir{k}", "-n"], scratch, env))
            shutil.rmtree(scratch / f"outdir{k}", ignore_errors=True)
        o, b = statistics.median(ours), statistics.median(bare)
        print(f"machine: {machine()}")
        print(f"model: branched_model(branches=(2,), size=32, width=1024, depth=6): {params / 1e6:.1f} M parameters; {args.runs} runs, median")
        print(table(["stretchc compile (s)", "onnx2tf CLI (s)", "ratio", "target"], [[f"{o:.1f}", f"{b:.1f}", f"{o / b:.2f}", "<= 1.3"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
