"""Predicted latency of the NN-Stretch configurations on the Snapdragon 855 target (mi9), configured vs optimised.

    .venv/bin/python bench/predict_configs.py /work/shared/nnstretch-configs/mi [--models R-34,R-50,RX-1.6,RX-4,EN-L4,EN-B5]
        [--image-size 224] [--target mi9] [--update-results bench/RESULTS.md]

For every configuration: build the model (stretchc.modelbuild, seed 0), lower it (through the lowering cache), run
unshare-pads, find-branches and padv2-to-pad (the default pipeline's passes before assign-delegates), then predict with the cost model (stretchc.costmodel.placement.plan):
- `configured`: the placement recorded in the model (`--place-from-model`), all regions fixed;
- `optimised`: the critical-path search over cpu/gpu (plus dsp when the configuration uses the DSP, as if
  quantize-partitions ran with calibration data), seeded with the configured placement when it is eligible.
Configurations without DSP regions are also compiled for real (`stretchc compile -t mi9 --place-from-model`,
the bundle's manifest `predicted_latency_ms` is reported). Configurations with DSP regions are predicted on the
IR only (no bundle: compiling them needs quantize-partitions with calibration data), marked `IR only`.
With `--update-results FILE` the table replaces the body of `## Cost model and placement (issue 5)`.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import onnx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stretchc.costmodel.placement import plan  # noqa: E402
from stretchc.driver import CompileOptions, _lower, compile_model  # noqa: E402
from stretchc.errors import StretchError  # noqa: E402
from stretchc.frontend.module import build_module  # noqa: E402
from stretchc.frontend.validate import load_model  # noqa: E402
from stretchc.modelbuild import build_model, load_config, placement_from_model  # noqa: E402
from stretchc.passmanager import PassContext, PassManager, parse_pipeline  # noqa: E402
from stretchc.targets import load_target  # noqa: E402

SECTION = "## Cost model and placement (issue 5)"
PLACEMENT_INPUT_PIPELINE = "unshare-pads,find-branches,padv2-to-pad"


def predict_one(cfg_path: Path, target_name: str, image_size: int, work: Path) -> dict:
    cfg = load_config(cfg_path)
    model = build_model(cfg, image_size=image_size, seed=0)
    onnx_path = work / f"{cfg_path.stem}.onnx"
    onnx.save(model, str(onnx_path))
    configured = placement_from_model(model) or {}
    target = load_target(target_name)
    m = load_model(onnx_path, {})
    module = build_module(m, _lower(m, onnx_path, CompileOptions(target=target_name)), name=cfg_path.stem, file=str(onnx_path))
    # The same canonicalization the compiler runs before placement, so the prediction sees the same graph.
    PassManager(parse_pipeline(PLACEMENT_INPUT_PIPELINE)).run(module, PassContext(target=target))
    uses_dsp = "dsp" in configured.values()
    conf = plan(module, target, fixed=configured, calibrated=True, optimise_free=False)
    opt = plan(module, target, calibrated=uses_dsp, seeds=[configured])
    row = {
        "config": cfg_path.stem, "branches": "/".join(str(len(s.branches)) for s in cfg.branched_stages) or "1",
        "configured_ms": conf["predicted_latency_ms"], "optimised_ms": opt["predicted_latency_ms"],
        "optimised": opt["placement"], "best_single": opt["best_single"], "compiled_ms": None, "mode": "IR only (DSP)" if uses_dsp else "",
    }
    # DSP configurations calibrate on explicit random data: this measures placement and latency prediction, not accuracy.
    extra = {"calib": "random"} if uses_dsp else {}
    try:
        res = compile_model(onnx_path, work / f"{cfg_path.stem}.stretch", CompileOptions(target=target_name, place_from_model=True, extra=extra))
        row["compiled_ms"] = res.manifest.get("predicted_latency_ms")
        row["mode"] = "compiled (int8 DSP)" if uses_dsp else "compiled"
    except StretchError as err:
        row["mode"] = f"IR only: compile refused: {err.code}: {err.message}"
    return row


def _procs(pl: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for p in pl.values():
        counts[p] = counts.get(p, 0) + 1
    return " ".join(f"{p}:{n}" for p, n in sorted(counts.items()))


def table(rows: list[dict], target: str, image_size: int) -> str:
    out = [
        f"Target {target}, {image_size} px, models built by stretchc.modelbuild (seed 0); cost model fitted by bench/fit_cost_model.py.",
        "`configured` = the configuration's own placement (`--place-from-model`); `optimised` = assign-delegates{policy=critical-path}",
        "(DSP allowed only for configurations that use it). Every configuration is also compiled for real with `--place-from-model`",
        "(DSP ones with `--calib random`, int8 DSP partitions); `compiled` is the bundle manifest's predicted latency.",
        "`IR only`: the compile was refused (the reason is given); predicted on the IR after find-branches. Predictions, not measurements.",
        "",
        "| config | branches | configured ms | compiled (manifest) ms | optimised ms | optimised regions | best single | how |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['config']} | — | — | — | — | — | — | {r['error']} |")
            continue
        bs = r["best_single"]
        comp = f"{r['compiled_ms']:.2f}" if r["compiled_ms"] is not None else "—"
        out.append(
            f"| {r['config']} | {r['branches']} | {r['configured_ms']:.2f} | {comp} | {r['optimised_ms']:.2f} | {_procs(r['optimised'])} | "
            f"{bs['processor']} {bs['ms']:.2f} | {r['mode']} |"
        )
    return "\n".join(out) + "\n"


def update_results(path: Path, body: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    block = f"{SECTION}\n\n{body}"
    if SECTION in text:
        text = re.sub(rf"{re.escape(SECTION)}\n.*?(?=\n## |\Z)", block.rstrip("\n") + "\n", text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--models", default="R-34,R-50,RX-1.6,RX-4,EN-L4,EN-B5")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--target", default="mi9")
    ap.add_argument("--update-results", type=Path)
    args = ap.parse_args()
    prefixes = args.models.split(",")
    paths = sorted(p for p in args.folder.glob("*.yaml") if any(re.fullmatch(rf"{re.escape(m)}-[CDG]+", p.stem) for m in prefixes))
    rows = []
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for p in paths:
            t0 = time.time()
            try:
                row = predict_one(p, args.target, args.image_size, Path(tmp))
                if row["optimised_ms"] > row["configured_ms"] + 1e-6:
                    bad += 1
                    row["mode"] += " OPTIMISED SLOWER"
            except StretchError as err:  # the builder refuses the prototype's inconsistent configurations
                row = {"config": p.stem, "error": f"refused: {err.code}: {err.message}"}
            except Exception as exc:  # noqa: BLE001 - report every failure
                row = {"config": p.stem, "error": f"FAILED: {type(exc).__name__}: {exc}"}
                bad += 1
            rows.append(row)
            print(f"{p.stem}: {row.get('configured_ms')} -> {row.get('optimised_ms')} ({time.time() - t0:.0f}s)", flush=True)
    body = table(rows, args.target, args.image_size)
    print(body)
    if args.update_results:
        update_results(args.update_results, body)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
