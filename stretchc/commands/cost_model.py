"""`stretchc cost-model --report [-t TARGET]`: the cost model's calibration points, predicted vs measured.

Without -t, every known target. The numbers in the target files are fitted by `bench/fit_cost_model.py`.
"""

from __future__ import annotations

import argparse

from stretchc.console import get_console
from stretchc.errors import StretchError
from stretchc.targets import known_targets, load_target


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cost-model", parents=[common], help="show the latency cost model's calibration", description=__doc__)
    p.add_argument("--report", action="store_true", help="print every calibration point with predicted vs measured time")
    p.add_argument("-t", "--target", action="append", default=[], help="a target name or file (repeatable; default: all known)")
    p.set_defaults(func=run)


def calibration_report(names: list[str]) -> str:
    from stretchc.costmodel import calibration_table
    from stretchc.costmodel.fit import mape

    lines = [f"{'target':<11} {'model':<19} {'dtype':<8} {'proc':<4} {'measured ms':>11} {'predicted ms':>12} {'error':>7}  source"]
    every = []
    for name in names:
        t = load_target(name)
        rows = calibration_table(t)
        every += rows
        for r in rows:
            lines.append(f"{t.name:<11} {r['model']:<19} {r['dtype']:<8} {r['processor']:<4} {r['latency_ms']:>11.2f} {r['predicted_ms']:>12.2f} {r['error_pct']:>+6.1f}%  {r['source']}")
        if not rows:
            src = (t.raw.get("cost") or {}).get("efficiency_from")
            lines.append(f"{t.name:<11} (no calibration points{'; efficiencies inherited from ' + src if src else ''})")
    lines.append(f"{len(every)} points, median absolute percentage error {mape(every):.1f}%")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if not args.report:
        raise StretchError("usage", "stretchc cost-model: give --report")
    get_console().out(calibration_report(args.target or known_targets()))
    return 0
