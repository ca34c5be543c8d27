"""Never slower than the plain model: published architectures compiled for every target with the default policy.

    .venv/bin/python bench/never_slower.py [--models InceptionV3:299,NASNetMobile:224,...] [--targets pixel6,mi9,...]
        [--work DIR] [--update-results bench/RESULTS.md]

Keras Applications architectures (random weights, logits out; tests/external/export_keras.py) are exported by
Keras as TF SavedModels and converted to ONNX by tf2onnx's command line at opset 17, then compiled by
`stretchc compile MODEL.onnx -t TARGET --report r.json --time-passes` with the default policy (`auto`), with
`--calib random` on targets with a DSP or an NPU (int8 there needs calibration data). Per model and target the
table gives the predicted latency, the best single processor (the whole model as one partition), the predicted
speedup over it, the partitions and their processors, the compile's wall time and the share of it the search
takes (assign-delegates, plus the plans decided again inside quantize-partitions, which this bench cannot
separate from calibration and quantization: the `search` column is assign-delegates alone, the `+quantize`
column that pass's whole time). A row fails when the speedup is below 1.00 or the compile warns
`slower-than-one-partition`; the script exits 1 if any row fails. Every number is a prediction of the cost
model (nothing runs on a phone); the times are this machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import machine, publish, table  # noqa: E402

SECTION = "## Never slower than one partition (issue 19)"
MODELS = "InceptionV3:299,NASNetMobile:224,Xception:299,EfficientNetB0:224,DenseNet121:224,MobileNetV2:224,ResNet50:224"
TARGETS = "pixel6,mi9,pixel4,pixel3,galaxy-s21,galaxy-s23,galaxy-s24"
INT8_TARGETS = {"mi9", "pixel4", "pixel3", "galaxy-s23", "galaxy-s24"}  # a DSP or an NPU: --calib random
STRETCHC = [str(Path(sys.executable).parent / "stretchc")]


def _run(cmd: list[str], what: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return done


def export(models: list[tuple[str, int]], work: Path) -> dict[str, Path]:
    """Each model as ONNX (Keras export, then tf2onnx at opset 17); reused when already in `work`."""
    out = {}
    for name, size in models:
        onnx_path = work / f"{name}-{size}.onnx"
        if not onnx_path.exists():
            saved = work / f"{name}-{size}"
            _run([sys.executable, str(REPO / "tests" / "external" / "export_keras.py"), str(work), f"{name}:{size}"], f"Keras export of {name}")
            (work / name).rename(saved)
            _run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved), "--opset", "17", "--output", str(onnx_path)], f"tf2onnx of {name}")
        out[f"{name}:{size}"] = onnx_path
    return out


def _pass_ms(stderr: str, name: str) -> float:
    m = re.search(rf"^\s*([\d.]+)\s+[\d.]+\s+\w+\s+{re.escape(name)}$", stderr, re.M)
    return float(m.group(1)) if m else float("nan")


def compile_one(model: Path, target: str, work: Path) -> dict[str, object]:
    out = work / f"{model.stem}.{target}.stretch"
    report = work / f"{model.stem}.{target}.json"
    subprocess.run(["rm", "-rf", str(out), str(report)], check=True)
    cmd = [*STRETCHC, "compile", str(model), "-t", target, "-o", str(out), "--report", str(report), "--time-passes"]
    if target in INT8_TARGETS:
        cmd += ["--calib", "random"]
    t0 = time.perf_counter()
    done = _run(cmd, f"compile of {model.name} for {target}")
    wall = time.perf_counter() - t0
    rep = json.loads(report.read_text())
    subprocess.run(["rm", "-rf", str(out)], check=True)
    parts = rep["partitions"]
    return {
        "predicted_ms": rep["predicted_latency_ms"],
        "best_single": rep["best_single"],
        "speedup": rep["speedup_over_best_single"],
        "partitions": len(parts),
        "processors": sorted({f"{p['processor']} {p['precision']}" for p in parts}),
        "regions": len(rep["regions"]),
        "warned": "slower-than-one-partition" in done.stderr,
        "wall_s": round(wall, 1),
        "search_ms": _pass_ms(done.stdout + done.stderr, "assign-delegates"),
        "quantize_ms": _pass_ms(done.stdout + done.stderr, "quantize-partitions"),
        "rejected": len(rep.get("rejected") or []),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--targets", default=TARGETS)
    ap.add_argument("--work", type=Path, help="folder for the exported models and reports (kept; default a temporary one)")
    ap.add_argument("--update-results", type=Path)
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="never-slower-"))
    work.mkdir(parents=True, exist_ok=True)
    models = [(m.split(":")[0], int(m.split(":")[1])) for m in args.models.split(",")]
    targets = args.targets.split(",")
    files = export(models, work)
    rows, failed = [], 0
    results: dict[str, dict[str, object]] = {}
    for key, path in files.items():
        for target in targets:
            try:
                r = compile_one(path, target, work)
            except RuntimeError as exc:
                failed += 1
                first = str(exc).strip().splitlines()
                rows.append([key, target, "compile failed", "", "", "", "", "", "", first[-1][:120] if first else "", "FAIL"])
                print(f"{key} {target}: {exc}", file=sys.stderr, flush=True)
                continue
            results[f"{key} {target}"] = r
            best = r["best_single"]
            ok = r["speedup"] is not None and float(r["speedup"]) >= 1.0 and not r["warned"]  # type: ignore[arg-type]
            failed += not ok
            search_share = 100 * float(r["search_ms"]) / 1000 / float(r["wall_s"])  # type: ignore[arg-type]
            rows.append([
                key, target, f"{r['predicted_ms']:.3f}", f"{best['processor']} {best['ms']:.3f}" if best else "-",  # type: ignore[index]
                f"{r['speedup']:.2f}x", r["partitions"], ", ".join(r["processors"]), r["regions"],  # type: ignore[arg-type]
                f"{r['wall_s']} s; search {float(r['search_ms']) / 1000:.1f} s ({search_share:.0f} %), +quantize {float(r['quantize_ms']) / 1000:.1f} s",  # type: ignore[arg-type]
                r["rejected"], "ok" if ok else "FAIL",
            ])
            print(f"{key} {target}: {rows[-1]}", file=sys.stderr, flush=True)
    (work / "never_slower.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    body = table(
        ["model:px", "target", "predicted ms", "best single ms", "speedup", "partitions", "processors", "regions", "compile wall time", "rejected choices", "result"],
        rows,
    )
    pre = (
        f"`bench/never_slower.py` on {machine()}: Keras Applications (random weights) through tf2onnx (opset 17), default policy, "
        "`--calib random` on DSP/NPU targets. Predictions of the cost model, not phone measurements. `compile wall time` "
        "excludes onnx2tf when the lowering comes from WORK's cache; `search` is the assign-delegates pass (placement, "
        "precision, grouping) and its share of the compile, `+quantize` the quantize-partitions pass (calibration, "
        "quantization, the accuracy guard and the plans it decides again); `rejected choices` counts the (region, processor, "
        "precision) choices the guard rejected.\n\n"
    )
    publish(body + f"\n\n{failed} row(s) failed.", args.update_results, SECTION, pre)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
