"""Pass debugging (issue 14): `stretchc bisect` vs `stretchc compile --verify` on the same model and options.

Target: bisect on the example (`examples/branchy.onnx`, pixel6) takes less than 2x the time of
`compile --verify`. Both run as the CLI, in a scratch folder with its own lowering cache, warmed by one
compile first (bisect lowers through the same cache; the target is about the work after the lowering).
A second case, a small 2-branch model for mi9 with branch s1.b1 on the DSP (`--calib random`), shows the
cost with a quantizing pass. Median of --runs runs each, the two commands interleaved.

    .venv/bin/python bench/bisect_overhead.py [--runs 5] [--update-results bench/RESULTS.md]
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

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, publish, table  # noqa: E402

from stretchc.examples import branched_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STRETCHC = REPO / ".venv" / "bin" / "stretchc"
SECTION = "## Pass debugging (issue 14)"
TARGET_RATIO = 2.0


def _timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([str(STRETCHC), *args], cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"stretchc {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--update-results", type=Path, metavar="FILE", help="write the table into FILE's section")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bisect-bench-") as tmp:
        scratch = Path(tmp)
        env = {**os.environ, "STRETCHC_CACHE_DIR": str(scratch / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
        small = scratch / "small.onnx"
        onnx.save(branched_model(branches=(2,), size=32, width=8, name="small"), str(small))
        cases = [
            ("example, pixel6", REPO / "examples" / "branchy.onnx", ["-t", "pixel6"]),
            ("small 2-branch, mi9, s1.b1 on DSP, --calib random", small, ["-t", "mi9", "--place", "s1.b1=dsp", "--calib", "random"]),
        ]
        rows = []
        for label, model, options in cases:
            _timed(["compile", str(model), "-o", str(scratch / "warm.stretch"), "-q", *options], scratch, env)
            compile_s, bisect_s = [], []
            for k in range(args.runs):
                out = scratch / f"b{k}.stretch"
                compile_s.append(_timed(["compile", str(model), "-o", str(out), "--verify", "-q", *options], scratch, env))
                shutil.rmtree(out, ignore_errors=True)
                bisect_s.append(_timed(["bisect", str(model), "-q", *options], scratch, env))
            c, b = statistics.median(compile_s), statistics.median(bisect_s)
            target = f"< {TARGET_RATIO:g}" if model.name == "branchy.onnx" else "-"
            rows.append([label, f"{c:.2f}", f"{b:.2f}", f"{b / c:.2f}", target])
    out = table(["case", "compile --verify (s)", "bisect (s)", "ratio", "target"], rows)
    body = f"Machine: {machine()}. {args.runs} runs each, median; lowering cache warm.\n\n{out}"
    publish(body, args.update_results, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
