"""int8 vs float32 on this machine's CPU (issue 10): the R-50 stage-3 CPU branch, XNNPACK kernels both ways.

    PYTHONPATH=. .venv/bin/python bench/int8_cpu_ratio.py [--config ../shared/nnstretch-configs/mi/R-50-CD.yaml]
        [--image-size 224] [--runs 50] [--threads 1,2] [--update-results bench/RESULTS.md]

Builds R-50-CD (seed 0), compiles it for mi9 with its recorded placement twice (`--precision float` and
`--precision int8`, `--calib random`: the numbers of a random-weight model do not matter here, only its time),
and times the stage-3 CPU branch partition (`s3.b0`) of each bundle alone in the LiteRT interpreter (XNNPACK,
the default CPU delegate) on a fixed input: warm-up 5, then `--runs` invokes, the median reported. The ratio is
int8 time / float32 time (below 1: int8 is faster). No assertion: this is a measurement of this machine.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import machine, publish, table  # noqa: E402
from stretchc.console import Console, set_console  # noqa: E402
from stretchc.driver import CompileOptions, compile_model  # noqa: E402
from stretchc.litert import load_interpreter  # noqa: E402
from stretchc.modelbuild import build_model, load_config  # noqa: E402
from tests.conftest import settings_with  # noqa: E402

SECTION = "## int8 CPU kernels on this machine (issue 10)"
BRANCH = "s3.b0"


def time_partition(path: Path, threads: int, runs: int) -> float:
    it = load_interpreter(model_path=str(path), num_threads=threads)
    for d in it.get_input_details():
        info = np.iinfo(d["dtype"]) if np.issubdtype(d["dtype"], np.integer) else None
        x = np.random.default_rng(0).integers(info.min, info.max, d["shape"]) if info else np.random.default_rng(0).random(d["shape"])
        it.set_tensor(d["index"], x.astype(d["dtype"]))
    for _ in range(5):
        it.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        it.invoke()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def int8_units_note() -> str:
    """What this CPU has for int8 dot products (/proc/cpuinfo flags), and why the ratio is not a phone's."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    found = [f for f in ("amx_int8", "avx512_vnni", "avx_vnni", "asimddp") if f in flags]
    note = f"int8 dot-product features of this CPU (/proc/cpuinfo): {', '.join(found) or 'none found'}."
    if "amx_int8" in found:
        note += (
            " XNNPACK can run int8 GEMMs on AMX tile units, which no phone has (the int8 times here imply more than AVX-512 VNNI peaks at): the ratio here is not a phone's"
            " (the NN-Stretch prototype's int8 CPU kernels were about 3x faster than float32 on its phones, ../shared/facts/nnstretch.md §9.4)."
        )
    return note


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=REPO.parent / "shared" / "nnstretch-configs" / "mi" / "R-50-CD.yaml")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--update-results", type=Path, metavar="FILE")
    args = ap.parse_args()
    set_console(Console(quiet=True))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        src = t / "model.onnx"
        onnx.save(build_model(load_config(args.config), image_size=args.image_size, seed=0), str(src))
        files = {}
        for precision in ("float", "int8"):
            compile_model(src, t / precision, CompileOptions(target="mi9", place_from_model=True, settings=settings_with(precision, calib="random")))
            files[precision] = t / precision / "partitions" / f"{BRANCH}.tflite"
        for threads in (int(x) for x in args.threads.split(",")):
            fp32 = time_partition(files["float"], threads, args.runs)
            int8 = time_partition(files["int8"], threads, args.runs)
            rows.append([BRANCH, args.image_size, threads, f"{fp32:.3f}", f"{int8:.3f}", f"{int8 / fp32:.2f}"])
            print(" ".join(str(c) for c in rows[-1]), file=sys.stderr, flush=True)
    body = (
        f"`PYTHONPATH=. .venv/bin/python bench/int8_cpu_ratio.py --image-size {args.image_size} --runs {args.runs}` ({machine()}): "
        f"{args.config.stem}'s stage-3 CPU branch partition, float32 vs int8 bundle, LiteRT interpreter with XNNPACK, median of {args.runs}.\n\n"
        + table(["partition", "image px", "threads", "float32 ms", "int8 ms", "int8 / float32"], rows) + "\n\n"
        + int8_units_note() + "\n"
    )
    publish(body, args.update_results, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
