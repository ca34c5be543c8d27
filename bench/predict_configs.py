"""Predicted latency of the NN-Stretch configurations on the Snapdragon 855 target (mi9): against the
prototype's measurements where they are given, and configured placement vs the optimiser's.

    .venv/bin/python bench/predict_configs.py /work/shared/nnstretch-configs/mi [--models R-34,R-50,EN-L4]
        [--target mi9] [--no-compile] [--update-results bench/RESULTS.md]

Every configuration is built as the prototype timed it (`stretchc build-model --timed`: 224 px, seed 0, the
prototype's Keras wiring and layers), lowered (through the lowering cache) and priced with every region int8, as the prototype runs one
full-int8 model:
- `configured`: its own placement (`--place-from-model`). For configurations with a measured latency
  (stretchc/targets/data/costmodel/calibration.yaml, ../shared/facts/nnstretch-measured.md) the number is the JSON
  report's `predicted_latency_ms` of a real compile: `stretchc compile CONFIG.onnx -t mi9 --place-from-model
  --precision int8 --calib random --report r.json`; the script fails if that number is not the IR prediction
  it also computes. `--no-compile` uses the IR prediction only.
- `optimised`: assign-delegates{policy=critical-path} under --precision int8 over the target's processors, NOT seeded with the configured
  placement, so it can come out slower than the configuration (flagged): a check on the search.
- `changed`: the regions the optimiser put on another processor than the configuration, as `from->to xN`.
The measured columns are measurements of the prototype (../shared/facts/nnstretch-measured.md); every other number is
a prediction. With `--update-results FILE` the table replaces the body of `## Cost model and placement (issue 5)`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import onnx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import publish  # noqa: E402
from stretchc.cli import build_parser, main as cli_main  # noqa: E402
from stretchc.costmodel.calibration import load_calibration  # noqa: E402
from stretchc.costmodel.placement import plan  # noqa: E402
from stretchc.driver import CompileOptions, _lower, placement_input_pipeline  # noqa: E402
from stretchc.errors import StretchError  # noqa: E402
from stretchc.frontend.module import build_module  # noqa: E402
from stretchc.frontend.validate import load_model  # noqa: E402
from stretchc.modelbuild import as_timed, build_model, load_config, placement_from_model  # noqa: E402
from stretchc.passmanager import PassContext, PassManager, parse_pipeline  # noqa: E402
from stretchc.targets import load_target  # noqa: E402

SECTION = "## Cost model and placement (issue 5)"


def measured_ms() -> dict[str, float]:
    """The prototype's measured latencies on mi9 that the calibration set holds (config name -> ms)."""
    return {p.label: p.latency_ms for p in load_calibration().points(["sd855"]) if p.network and p.protocol_name == "nnstretch"}


def compiled_prediction(onnx_path: Path, target: str, work: Path) -> float:
    """The JSON report's predicted_latency_ms of `stretchc compile --place-from-model --precision int8 --calib random`."""
    report = work / f"{onnx_path.stem}.report.json"
    bundle = work / f"{onnx_path.stem}.stretch"
    args = ["compile", str(onnx_path), "-t", target, "--place-from-model", "--precision", "int8", "--calib", "random", "--report", str(report), "-o", str(bundle), "-q"]
    if cli_main(args) != 0:
        raise StretchError("internal", f"compile of {onnx_path.name} failed")
    return float(json.loads(report.read_text())["predicted_latency_ms"])


def config_module(cfg_path: Path, target_name: str, work: Path, *, timed: bool = True):  # type: ignore[no-untyped-def]
    """(config, ONNX path, configured placement, module after the placement's input pipeline) of one NN-Stretch
    configuration at 224 px (`timed`: as the prototype timed it)."""
    cfg = load_config(cfg_path)
    cfg = as_timed(cfg) if timed else cfg
    model = build_model(cfg, image_size=224, seed=0)
    onnx_path = work / f"{cfg_path.stem}.onnx"
    onnx.save(model, str(onnx_path))
    configured = placement_from_model(model) or {}
    m = load_model(onnx_path, {})
    module = build_module(m, _lower(m, onnx_path, CompileOptions(target=target_name)), name=cfg_path.stem, file=str(onnx_path))
    PassManager(parse_pipeline(placement_input_pipeline())).run(module, PassContext(target=load_target(target_name)))
    return cfg, onnx_path, configured, module


def predict_one(cfg_path: Path, target_name: str, work: Path, compile_it: bool) -> dict:
    cfg, onnx_path, configured, module = config_module(cfg_path, target_name, work)
    target = load_target(target_name)
    conf = plan(module, target, fixed=configured, policy="int8", calibrated=True, optimise_free=False)
    opt = plan(module, target, policy="int8", calibrated=True)
    row = {
        "config": cfg_path.stem,
        "branches": "/".join(str(len(s.branches)) for s in cfg.stages),
        "notes": len(cfg.notes),
        "configured_ms": conf["predicted_latency_ms"],
        "optimised_ms": opt["predicted_latency_ms"],
        "changed": Counter(f"{configured[r]}->{p}" for r, p in opt["placement"].items() if p != configured[r]),
        "how": "IR prediction",
    }
    if compile_it:
        ms = compiled_prediction(onnx_path, target_name, work)
        if abs(ms - row["configured_ms"]) > 1e-3:
            raise RuntimeError(f"{cfg_path.stem}: the compile's report predicts {ms} ms, the IR {row['configured_ms']} ms")
        row["configured_ms"], row["how"] = ms, "stretchc compile --precision int8"
    return row


def table(rows: list[dict], target: str, measured: dict[str, float]) -> str:
    out = [
        f"Target {target}, 224 px, every region int8; models built by stretchc.modelbuild (seed 0); cost model fitted by bench/fit_cost_model.py.",
        "`measured`: the NN-Stretch prototype on its Snapdragon 855 phone (min of 50 runs; given for 15 configurations, which are also",
        "calibration points of the fit). `configured`: the configuration's own placement, predicted through the compile's JSON report where",
        "a measurement exists. `optimised`: the critical-path search (cpu/gpu/dsp), not seeded with the configuration. `changed`: regions the",
        "optimiser moved, `from->to xN`. Everything but `measured` is a prediction.",
        "",
        "| config | branches | measured ms | configured ms | error | optimised ms | optimised vs configured | changed |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    errors = []
    for r in rows:
        if "error" in r:
            out.append(f"| {r['config']} | — | — | — | — | — | — | {r['error']} |")
            continue
        meas = measured.get(r["config"])
        err = "—"
        if meas is not None:
            e = 100.0 * (r["configured_ms"] - meas) / meas
            errors.append(abs(e))
            err = f"{e:+.1f}%"
        gain = 100.0 * (r["optimised_ms"] - r["configured_ms"]) / r["configured_ms"]
        changed = ", ".join(f"{k} x{n}" for k, n in sorted(r["changed"].items())) or "none"
        flag = " (search worse than the configuration)" if r["optimised_ms"] > r["configured_ms"] + 1e-6 else ""
        out.append(
            f"| {r['config']} | {r['branches']} | {meas if meas is not None else '—'} | {r['configured_ms']:.2f} | {err} | {r['optimised_ms']:.2f} | "
            f"{gain:+.1f}%{flag} | {changed} |"
        )
    if errors:
        out += ["", f"Measured configurations: {len(errors)}, median |error| {sorted(errors)[len(errors) // 2]:.1f}%, worst {max(errors):.1f}%."]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--models", default="R-34,R-50,RX-1.6,RX-4,EN-L4,EN-B5")
    ap.add_argument("--target", default="mi9")
    ap.add_argument("--no-compile", action="store_true", help="IR predictions only (no real compile of the measured configurations)")
    ap.add_argument("--update-results", type=Path)
    args = ap.parse_args()
    prefixes = args.models.split(",")
    paths = sorted(p for p in args.folder.glob("*.yaml") if any(re.fullmatch(rf"{re.escape(m)}-[CDG]+", p.stem) for m in prefixes))
    measured = measured_ms() if args.target == "mi9" else {}
    rows, bad = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for p in paths:
            t0 = time.time()
            try:
                row = predict_one(p, args.target, Path(tmp), not args.no_compile and p.stem in measured)
            except StretchError as err:
                row = {"config": p.stem, "error": f"{err.code}: {err.message}"}
                bad += 1
            rows.append(row)
            print(f"{p.stem}: {row.get('configured_ms')} (measured {measured.get(p.stem)}) -> {row.get('optimised_ms')} ({time.time() - t0:.0f}s)", flush=True)
    body = table(rows, args.target, measured)
    publish(body, args.update_results, SECTION)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
