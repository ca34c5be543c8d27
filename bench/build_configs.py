"""Build every NN-Stretch configuration under a folder and report what happened to each.

    PYTHONPATH=. .venv/bin/python bench/build_configs.py ../shared/nnstretch-configs [--image-size 224]
        [--seed 0] [--update-results bench/RESULTS.md]

For each `*.yaml` (recursive, sorted): load and validate it (leniently, as the prototype's Keras builder: each
tolerated inconsistency is a note), build the ONNX model, run `onnx.checker` with full_check, and run it once in
ONNX Runtime (CPU) on a random input, checking the output is finite and of shape [1, NUM_CLASSES]. A
configuration is either `built` (with its notes counted) or `refused: <the builder's message>`; anything else
(a crash, a checker or runtime failure) is `FAILED` and makes the script exit 1.

Prints a Markdown table (config, branches per stage, params, GFLOPs at the image size, notes, result). With
`--update-results FILE`, replaces the body of the `## Model builder (issue 3)` section of FILE (creating the
file or the section if absent) and leaves every other section as it was.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from bench._common import update_results
from stretchc.errors import StretchError
from stretchc.modelbuild import build_model, complexity, load_config

SECTION = "## Model builder (issue 3)"


def check_one(path: Path, image_size: int, seed: int) -> dict[str, str]:
    """Build, check and run one configuration; return the table row as strings."""
    row = {"branches": "—", "params": "—", "gflops": "—", "notes": "0", "result": ""}
    try:
        cfg = load_config(path)
    except StretchError as err:
        row["result"] = f"refused: {err.message}"
        return row
    row["branches"] = "/".join(str(len(s.branches)) for s in cfg.stages)
    row["notes"] = str(len(cfg.notes))
    cx = complexity(cfg, image_size)
    row["params"] = f"{cx['params'] / 1e6:.3f} M"
    row["gflops"] = f"{cx['flops'] / 1e9:.3f}"
    try:
        model = build_model(cfg, image_size=image_size, seed=seed)
        onnx.checker.check_model(model, full_check=True)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(seed).standard_normal((1, 3, image_size, image_size)).astype(np.float32)
        (y,) = sess.run(["logits"], {"input": x})
        if y.shape != (1, cfg.num_classes) or not np.isfinite(y).all():
            raise RuntimeError(f"bad output: shape {y.shape}, finite {bool(np.isfinite(y).all())}")
        row["result"] = "built, checker ok, ORT ok"
    except Exception as exc:  # noqa: BLE001 - the bench reports every failure, it does not stop at one
        row["result"] = f"FAILED: {type(exc).__name__}: {exc}"
    return row


def table(rows: list[tuple[str, dict[str, str]]], image_size: int) -> str:
    lines = [
        f"| config | branches per stage | params | GFLOPs @{image_size} | notes | result |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, r in rows:
        result = r["result"].replace("|", "\\|")
        lines.append(f"| {name} | {r['branches']} | {r['params']} | {r['gflops']} | {r['notes']} | {result} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path, help="folder searched recursively for *.yaml configurations")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--update-results", type=Path, metavar="FILE", help="write the table into FILE's section")
    args = ap.parse_args(argv)
    paths = sorted(p for p in args.dir.rglob("*.yaml") if p.is_file())
    if not paths:
        print(f"no *.yaml under {args.dir}", file=sys.stderr)
        return 2
    rows: list[tuple[str, dict[str, str]]] = []
    start = time.perf_counter()
    for p in paths:
        t = time.perf_counter()
        row = check_one(p, args.image_size, args.seed)
        name = p.relative_to(args.dir).as_posix()
        rows.append((name, row))
        print(f"{name}: {row['result']} ({time.perf_counter() - t:.1f} s)", file=sys.stderr)
    out = table(rows, args.image_size)
    built = sum(r["result"].startswith("built") for _, r in rows)
    refused = sum(r["result"].startswith("refused") for _, r in rows)
    failed = len(rows) - built - refused
    noted = [int(r["notes"]) for _, r in rows if r["result"].startswith("built") and r["notes"] != "0"]
    summary = (
        f"{len(rows)} configurations under `{args.dir.name}/`: {built} built (onnx.checker full_check + ONNX "
        f"Runtime run; {len(noted)} of them with {sum(noted)} notes on inconsistencies built the prototype's way), "
        f"{refused} refused, {failed} failed; {time.perf_counter() - start:.0f} s."
    )
    print(out)
    print(summary)
    if args.update_results:
        update_results(args.update_results, SECTION, RESULTS_PREAMBLE.format(image_size=args.image_size) + "\n" + summary + "\n\n" + out)
    return 1 if failed else 0


RESULTS_PREAMBLE = """\
`stretchc build-model` on every prototype configuration, generated by
`PYTHONPATH=. .venv/bin/python bench/build_configs.py ../shared/nnstretch-configs --update-results bench/RESULTS.md`
(image size {image_size}, seed 0). Params and FLOPs are counted as pycls counts them (`stretchc.modelbuild.complexity`;
for MB_VER 1 they include the per-branch convlast layers, which the prototype's own `complexity()` leaves out).
The un-branched R-50, RX-1.6 and RX-4 rows equal pycls's published ResNet-50, RegNetX-1.6GF and RegNetX-4.0GF
figures exactly. The notes (inconsistencies the prototype's Keras builder tolerates, built its way) are explained in
docs/nnstretch-configs.md; `stretchc build-model --strict` refuses those configurations instead.
"""


if __name__ == "__main__":
    sys.exit(main())
