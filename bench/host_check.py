"""The cost model against real timings (issue 22): calibrate this machine, compile networks the calibration never
ran for it, run the bundles with the C++ runtime and compare each prediction with the measured latency.

    .venv/bin/python bench/host_check.py [--work DIR] [--runs 50] [--repeats 3] [--only NAME ...] [--update-results bench/RESULTS.md]

1. `stretchc calibrate -t host -o WORK/host.yaml` (single-op micro-benchmarks only; reused when WORK has it).
2. Networks: Keras Applications (random weights, tf2onnx opset 17, as bench/never_slower.py exports them), NN-Stretch
   configurations built at 128 px (`stretchc build-model`), and the bundled branched example.
3. Each compiled for the calibrated target with one CPU lane (WORK/host-1-lane.yaml) three ways where it has more
   than one region: float32 as the cost-model search groups it (one partition on the one lane), float32 with every
   region its own partition (`assign-delegates{grouping=regions}`: partition invokes and sync points in sequence on
   the one lane), and int8 (`--precision int8 --calib random`, one partition); networks of one region twice (float32
   and int8). Then float32 and int8 again for the same calibration with a lane per core (WORK/host-N-lanes.yaml, as
   `stretchc calibrate` describes this machine): the search may run branches on two lanes at the same time; a row
   where it does not (the same plan as on one lane) is left out.
4. `stretch_benchmark` runs each bundle (`--runs` runs after 3 warm-up runs) `--repeats` times; the measured latency is
   the minimum over all runs (the host's protocol statistic, as the calibration measured), the median of the
   repeats' minimums shown beside it.

Prints the table and the median and worst |error| and the Spearman rank correlation of predicted and measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import machine, publish, table  # noqa: E402
from bench.never_slower import _run, export  # noqa: E402

SECTION = "## The cost model against measured latencies on this machine (issue 22)"
KERAS = [("MobileNetV2", 224), ("EfficientNetB0", 224), ("ResNet50", 224), ("DenseNet121", 224), ("InceptionV3", 299), ("NASNetMobile", 224), ("Xception", 299)]
CONFIGS = ["mi/R-50-CG", "mi/EN-L4-CD", "mi/RX-1.6-CDG", "pixel/R-34-CG"]
CONFIG_SIZE = 128
BENCHMARK = REPO / "android_runtime" / "build-host" / "stretch_benchmark"


def stretchc(*args: str, what: str) -> subprocess.CompletedProcess[str]:
    return _run([str(REPO / ".venv" / "bin" / "stretchc"), *args], what)


def networks(work: Path, configs: Path) -> dict[str, Path]:
    out = {f"{name}:{size}": path for (name, size), path in zip(KERAS, export(KERAS, work).values())}
    for cfg in CONFIGS:
        path = work / f"{cfg.replace('/', '-')}-{CONFIG_SIZE}.onnx"
        if not path.exists():
            stretchc("build-model", str(configs / f"{cfg}.yaml"), "--image-size", str(CONFIG_SIZE), "-o", str(path), what=f"build-model {cfg}")
        out[f"{cfg}:{CONFIG_SIZE}"] = path
    out["examples/branchy"] = REPO / "examples" / "branchy.onnx"
    return out


def regions_pipeline() -> str:
    """The default pipeline with every region its own partition."""
    from stretchc.driver import default_pipeline

    text = default_pipeline()
    return text.replace("assign-delegates{", "assign-delegates{grouping=regions,") if "assign-delegates{" in text else text.replace("assign-delegates", "assign-delegates{grouping=regions}")


def with_lanes(target: Path, lanes: int) -> Path:
    """The calibrated target file with `lanes` CPU lanes (the same measurements), beside it."""
    import yaml

    from stretchc.targets.host import MEASURED_HEADER

    raw = yaml.safe_load(target.read_text())
    raw["cpu"]["lanes"] = lanes
    out = target.with_name(f"{target.stem}-{lanes}-lane{'s' if lanes > 1 else ''}.yaml")
    out.write_text(MEASURED_HEADER + yaml.safe_dump(raw, sort_keys=False))
    return out


def measure(bundle: Path, runs: int, repeats: int, work: Path) -> tuple[float, float]:
    """(minimum over every run, median of the repeats' minimums) of the bundle's latency, in ms."""
    mins = []
    for k in range(repeats):
        report = work / f"{bundle.name}.{k}.json"
        _run([str(BENCHMARK), "--bundle", str(bundle), "--runs", str(runs), "--warmup", "3", "--report", str(report)], f"stretch_benchmark {bundle.name}")
        mins.append(float(json.loads(report.read_text())["latency_ms"]["min"]))
    return min(mins), statistics.median(mins)


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, help="folder for the target file, models and bundles (kept; default a temporary one)")
    ap.add_argument("--configs", type=Path, default=REPO.parent / "shared" / "nnstretch-configs")
    ap.add_argument("--runs", type=int, default=50, help="timed runs per repeat (default 50, as stretchc calibrate times each micro-benchmark)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", nargs="*", help="only these networks (names as the table gives them)")
    ap.add_argument("--update-results", type=Path)
    args = ap.parse_args(argv)
    subprocess.run([str(REPO / "android_runtime" / "build_host.sh")], check=True, capture_output=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="host_check."))
    work.mkdir(parents=True, exist_ok=True)
    target = work / "host.yaml"
    if not target.exists():
        print("calibrating this machine ...", file=sys.stderr, flush=True)
        stretchc("calibrate", "-t", "host", "-o", str(target), "-q", what="stretchc calibrate")
    cores = os.cpu_count() or 1
    one, many = with_lanes(target, 1), with_lanes(target, cores)
    lanes_label = f"{cores} lanes"
    variants = [
        ("float32", "f32", ["--precision", "float"], one),
        ("float32, every region a partition", "f32-regions", ["--precision", "float", "--pipeline", regions_pipeline()], one),
        ("int8", "i8", ["--precision", "int8", "--calib", "random"], one),
    ] + ([
        (f"float32, {lanes_label}", "f32-lanes", ["--precision", "float"], many),
        (f"int8, {lanes_label}", "i8-lanes", ["--precision", "int8", "--calib", "random"], many),
    ] if cores > 1 else [])
    rows, pairs = [], []
    for name, model in networks(work, args.configs).items():
        if args.only and name not in args.only:
            continue
        for label, slug, flags, on in variants:
            bundle = work / "bundles" / f"{name.replace('/', '-').replace(':', '-')}-{slug}.stretch"
            print(f"{name} {label} ...", file=sys.stderr, flush=True)
            if bundle.exists():
                shutil.rmtree(bundle)
            stretchc("compile", str(model), "-t", str(on), "-o", str(bundle), "-q", *flags, what=f"compile {name} {label}")
            report = json.loads((bundle / "report.json").read_text())
            parts = len(report["partitions"])
            lanes = len({(p["processor"], p["lane"]) for p in report["partitions"]})
            if slug == "f32-regions" and parts == 1:
                continue  # one region: the same bundle as the first variant
            if on == many and lanes == 1:
                continue  # the search kept to one lane: the plan of the one-lane target
            predicted = float(report["predicted_latency_ms"])
            best, median = measure(bundle, args.runs, args.repeats, work)
            err = 100.0 * (predicted - best) / best
            pairs.append((predicted, best, err))
            rows.append([name, label, parts, lanes, f"{predicted:.2f}", f"{best:.2f}", f"{median:.2f}", f"{err:+.1f}%"])
    errs = [abs(e) for _, _, e in pairs]
    rho = spearman([p for p, _, _ in pairs], [m for _, m, _ in pairs])
    body = "\n".join([
        f"`bench/host_check.py` on {machine()}: the host target calibrated by `stretchc calibrate -t host` (single-op micro-benchmarks, two or more per shape class, and chains whose weights overflow the last-level cache), "
        f"every bundle run by the C++ runtime (`stretch_benchmark`, {args.runs} runs after 3 warm-up runs, {args.repeats} times; measured = the "
        "minimum of all runs, the host protocol's statistic; the median of the repeats' minimums beside it). The CPU with one lane, "
        f"and with {cores} (one per core, partitions on different lanes run at the same time; rows where the search kept to one lane left out).",
        "",
        table(["network", "bundle", "partitions", "lanes", "predicted ms", "measured min ms", "median of minimums ms", "error"], rows),
        "",
        f"{len(pairs)} bundles of {len({r[0] for r in rows})} networks: median |error| {statistics.median(errs):.1f}%, worst {max(errs):.1f}%, "
        f"Spearman rank correlation {rho:.3f} (issue 22's goal: median <= 15%, worst <= 30%, rank correlation >= 0.9).",
    ])
    publish(body, args.update_results, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
