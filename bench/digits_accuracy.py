"""Trained example accuracy (issue 10): top-1 on the digits held-out split, float ONNX vs compiled bundles.

Model: examples/digits.onnx (`stretchc example digits -o examples/digits.onnx`). Data: the fixed split of
scikit-learn's digits (stretchc/digits/data.py), written as `stretchc example digits --data DIR` writes it:
calib.npz (225 samples) is the `--calib` data, heldout.npz (449 samples, never trained or calibrated on) is
what every number here is measured on. Each bundle is compiled by the `stretchc` CLI (the commands are
printed) and run on the host runtime: bundle top-1 against the labels, its change from the float model's,
top-1 agreement with the float model and output SQNR against it (stretchc.verify with labels).

Configurations: mi9 with branches s1.b1 and s2.b0 on the DSP, and pixel6 (no DSP), each with
`--precision float`, `int8` and `auto` when the installed stretchc has `--precision` (read from
`stretchc compile --help`); without it, the compiler's one behaviour: DSP partitions int8, the rest float.

    .venv/bin/python bench/digits_accuracy.py [--samples N] [--stretchc PATH]
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import machine, table  # noqa: E402
from stretchc.console import Console, set_console  # noqa: E402
from stretchc.digits.data import data_files  # noqa: E402
from stretchc.frontend.module import onnx_inputs  # noqa: E402
from stretchc.frontend.validate import load_model  # noqa: E402
from stretchc.quantize.calibration_data import load_calibration_data  # noqa: E402
from stretchc.verify import verify_bundle  # noqa: E402

MODEL = REPO / "examples" / "digits.onnx"
DSP_PLACEMENT = "s1.b1=dsp,s2.b0=dsp"
PRECISIONS = ("float", "int8", "auto")
TARGETS = (("mi9", DSP_PLACEMENT), ("pixel6", None))
TARGET_POINTS = {"int8": 1.0, "auto": 0.5}  # issue 10: top-1 within this many points of float


@dataclass
class Row:
    target: str
    placement: str
    precision: str
    command: str
    top1: float
    float_top1: float
    agreement: float
    sqnr_db: float


def supports_precision(stretchc: str) -> bool:
    """The installed compiler has `--precision` (issue 10's precision policies)."""
    help_text = subprocess.run([stretchc, "compile", "--help"], capture_output=True, text=True, timeout=300, check=True).stdout
    return "--precision" in help_text


def compile_bundle(stretchc: str, target: str, place: str | None, precision: str | None, calib: Path, out: Path) -> tuple[str, float]:
    """Compile examples/digits.onnx; returns (the command as a user types it, with data in DATA/, seconds)."""
    cmd = [stretchc, "compile", str(MODEL), "-t", target, "-o", str(out), "--calib", str(calib), "-q"]
    if place:
        cmd += ["--place", place]
    if precision:
        cmd += ["--precision", precision]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    secs = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"compile failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stderr}")
    shown = ["stretchc", "compile", "examples/digits.onnx", "-t", target, "-o", out.name, "--calib", "DATA/calib.npz"]
    shown += (["--place", place] if place else []) + (["--precision", precision] if precision else [])
    return shlex.join(shown), secs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=0, help="measure on the first N held-out samples only (smoke runs; default all 449)")
    ap.add_argument("--stretchc", default=str(REPO / ".venv" / "bin" / "stretchc"), help="the stretchc executable (default .venv/bin/stretchc)")
    args = ap.parse_args()
    stretchc = args.stretchc if Path(args.stretchc).exists() else shutil.which("stretchc") or args.stretchc
    set_console(Console(quiet=True))
    precisions: tuple[str | None, ...] = PRECISIONS if supports_precision(stretchc) else (None,)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="digits-accuracy-") as tmp:
        t = Path(tmp)
        for name, data in data_files().items():
            (t / name).write_bytes(data)
        held = load_calibration_data(str(t / "heldout.npz"), onnx_inputs(load_model(MODEL)))
        samples, labels = held.samples, held.labels
        assert labels is not None
        if args.samples > 0:
            samples, labels = samples[: args.samples], labels[: args.samples]
        for target, place in TARGETS:
            for precision in precisions:
                out = t / f"{target}-{precision or 'default'}.stretch"
                command, secs = compile_bundle(stretchc, target, place, precision, t / "calib.npz", out)
                rep = verify_bundle(out, MODEL, inputs=samples, labels=labels, labels_source=str(t / "heldout.npz"))
                acc = rep.accuracy[0]
                sqnr = next(c.sqnr_db for c in rep.checks if c.kind == "output" and c.name == acc.output)
                label = precision or ("float, DSP int8" if place else "float")
                rows.append(Row(target, place or "cost model", label, command, acc.bundle_top1, acc.float_top1, acc.agreement, sqnr or float("nan")))
                print(f"{target} {label}: top-1 {100 * acc.bundle_top1:.2f}% ({secs:.1f} s)", file=sys.stderr)
    n = len(samples)
    float_top1 = rows[0].float_top1
    body = [
        table(
            ["bundle", "placement", "precision", "top-1", "change vs float (points)", "top-1 agreement", "output SQNR (dB)"],
            [["float ONNX (ONNX Runtime)", "-", "float32", f"{100 * float_top1:.2f}%", "-", "-", "-"]]
            + [
                [
                    r.target,
                    r.placement,
                    r.precision,
                    f"{100 * r.top1:.2f}%",
                    f"{100 * (r.top1 - r.float_top1):+.2f}",
                    f"{100 * r.agreement:.2f}%",
                    "inf" if not np.isfinite(r.sqnr_db) else f"{r.sqnr_db:.1f}",
                ]
                for r in rows
            ],
        ),
        "",
        f"Top-1 on {n} held-out digits samples (index % 4 == 3 of scikit-learn's load_digits; calibration: calib.npz, 225 samples).",
    ]
    for precision, points in TARGET_POINTS.items():
        for r in (r for r in rows if r.precision == precision):
            drop = 100 * (r.float_top1 - r.top1)
            verdict = "meets" if drop <= points else "MISSES"
            body.append(f"{r.target} {precision}: {drop:.2f} points below float ({verdict} the target of at most {points:.1f}).")
    extra = f" --samples {args.samples}" if args.samples > 0 else ""
    body += [
        "",
        f"Reproduce: `.venv/bin/python bench/digits_accuracy.py{extra}` ({machine()}). It runs:",
        "",
        "    stretchc example digits --data DATA",
        *[f"    {r.command}" for r in rows],
        "    stretchc verify BUNDLE examples/digits.onnx --input-dir DATA/heldout.npz   # for each BUNDLE",
    ]
    print("\n".join(body))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
