"""int8 bundles of the NN-Stretch configurations (issue 10): every buildable configuration compiled as the
prototype runs it, and what the bundle holds.

    PYTHONPATH=. .venv/bin/python bench/precision_configs.py ../shared/nnstretch-configs/mi [--image-size 224]
        [--models R-50,EN-L4] [--calib random|natural] [--update-results bench/RESULTS.md]

For every `*.yaml` (sorted; the model builder refuses the prototype's inconsistent ones, reported as refused):
build the model (seed 0), then `stretchc compile MODEL -t mi9 --place-from-model --precision int8 --calib random`
(`--calib natural`: 32 crops of scikit-learn's sample photographs instead). Reported per configuration: partitions
int8 / all, inner sync points int8 / all, QUANTIZE+DEQUANTIZE ops inside partitions, the arena against the same
buffer plan all float32, the predicted latency, and the output SQNR against the float ONNX model on 8 crops of the
sample photographs (never seen by calibration). With `--update-results FILE` the table replaces the body of
`## Precision (issue 10)`. Exits 1 when a built configuration misses the acceptance (an int8 check, or arena > 30%).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import machine, publish, table  # noqa: E402
from stretchc.analyses import Arena  # noqa: E402
from stretchc.console import Console, set_console  # noqa: E402
from stretchc.driver import CompileOptions, compile_model  # noqa: E402
from stretchc.errors import StretchError  # noqa: E402
from stretchc.modelbuild import build_model, load_config  # noqa: E402
from stretchc.tflite_io import import_model  # noqa: E402
from stretchc.verify import verify_bundle  # noqa: E402
from tests.conftest import settings_with  # noqa: E402
from tests.precision.images import natural_images  # noqa: E402

SECTION = "## Precision (issue 10)"


def one(cfg_path: Path, image_size: int, calib: str, work: Path) -> list[object]:
    model = build_model(load_config(cfg_path), image_size=image_size, seed=0)
    src = work / f"{cfg_path.stem}.onnx"
    onnx.save(model, str(src))
    if calib == "natural":
        np.save(work / "calib.npy", natural_images(32, image_size, seed=1))
        calib = str(work / "calib.npy")
    start = time.perf_counter()
    res = compile_model(src, work / "b", CompileOptions(target="mi9", place_from_model=True, settings=settings_with("int8", calib=calib)))
    secs = time.perf_counter() - start
    m = res.manifest
    io = {i["sync"] for i in m["inputs"]} | {o["sync"] for o in m["outputs"]}
    slot = {s["name"]: s["dtype"] for s in m["buffers"]["slots"]}
    inner = [s for s in m["sync_points"] if s["name"] not in io]
    inner_int8 = sum(1 for s in inner if slot[s["slot"]] == "int8" and not s["conversions"])
    qdq = sum(1 for p in m["partitions"] for n in import_model((work / "b" / p["file"]).read_bytes()).nodes if n.kind in ("QUANTIZE", "DEQUANTIZE"))
    arena = res.analyses.get(Arena)
    share = arena.bytes / arena.float_bytes
    feeds = [{"input": x[None]} for x in natural_images(8, image_size, seed=2)]
    out = next(c for c in verify_bundle(work / "b", src, inputs=feeds).checks if c.kind == "output")
    int8_parts = sum(1 for p in m["partitions"] if p["precision"] == "int8")
    ok = int8_parts == len(m["partitions"]) and inner_int8 == len(inner) and qdq == 0 and share <= 0.30
    return [
        cfg_path.stem, f"{int8_parts}/{len(m['partitions'])}", f"{inner_int8}/{len(inner)}", qdq,
        f"{arena.bytes:,}", f"{arena.float_bytes:,}", f"{100 * share:.0f}%", f"{m['predicted_latency_ms']:.2f}",
        f"{out.sqnr_db:.1f}", f"{secs:.0f}", "ok" if ok else "MISSED",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--models", default="", help="comma-separated prefixes (R-34,R-50,RX-1.6,RX-4,EN-L4,EN-B5); default all")
    ap.add_argument("--calib", choices=("random", "natural"), default="random")
    ap.add_argument("--update-results", type=Path, metavar="FILE")
    args = ap.parse_args()
    set_console(Console(quiet=True))
    prefixes = [m for m in args.models.split(",") if m]
    paths = sorted(p for p in args.folder.glob("*.yaml") if not prefixes or any(re.fullmatch(rf"{re.escape(m)}-[CDG]+", p.stem) for m in prefixes))
    headers = ["config", "int8 partitions", "int8 inner sync points", "Q/DQ in partitions", "arena bytes", "float plan bytes", "arena / float", "predicted ms", "output SQNR dB (photos)", "compile s", "acceptance"]
    rows: list[list[object]] = []
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for p in paths:
            work = Path(tmp) / p.stem
            work.mkdir()
            try:
                row = one(p, args.image_size, args.calib, work)
                missed += row[-1] != "ok"
            except StretchError as err:
                row = [p.stem, *["—"] * 9, f"refused: {err.code}: {err.message}".replace("|", "\\|")]
            rows.append(row)
            print(" ".join(str(c) for c in row), file=sys.stderr, flush=True)
    body = (
        f"`PYTHONPATH=. .venv/bin/python bench/precision_configs.py ../shared/nnstretch-configs/mi --image-size {args.image_size} --calib {args.calib}`"
        f" ({machine()}): `stretchc compile MODEL -t mi9 --place-from-model --precision int8 --calib {args.calib}`;"
        " SQNR on 8 crops of scikit-learn's sample photographs against the float ONNX model.\n\n" + table(headers, rows) + "\n"
    )
    publish(body, args.update_results, SECTION)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
