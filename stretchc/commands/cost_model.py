"""`stretchc cost-model --report [-t TARGET] [--no-loo]`: how well the latency cost model predicts each target.

Per target: its calibration set (one per SoC, shared by the targets carrying it) with every point measured vs
predicted and its leave-one-out error (each point predicted by a fit without it), the medians, and per
(processor, dtype) the parameters the target is priced with, how many points inform them, the leave-one-out
median of those points, and whether they are prior-dominated (fewer than 5 points, or an efficiency at a
clamp). Without -t, every known target. The parameters are fitted by
`bench/fit_cost_model.py`; leave-one-out refits once per point (about a second each).
"""

from __future__ import annotations

import argparse

from stretchc import api
from stretchc.console import get_console
from stretchc.errors import StretchError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cost-model", parents=[common], help="show how well the latency cost model predicts", description=__doc__)
    p.add_argument("--report", action="store_true", help="print every calibration point, leave-one-out errors and the groups' parameters")
    p.add_argument("-t", "--target", action="append", default=[], help="a target name or file (repeatable; default: all known)")
    p.add_argument("--no-loo", action="store_true", help="skip the leave-one-out refits (in-sample errors only)")
    p.set_defaults(func=run)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}%"


def format_report(accs: list[api.TargetAccuracy]) -> str:
    lines: list[str] = []
    for a in accs:
        shared = f", shared with {', '.join(a.shared_with)}" if a.shared_with else ""
        lines.append(f"{a.target}: calibration set {a.calibration_set} ({len(a.rows) or len(a.measured)} unique points{shared})")
        if a.rows:
            lines.append(f"  {'point':<20} {'dtype':<8} {'on':<9} {'protocol':<24} {'measured':>9} {'predicted':>9} {'error':>7} {'left out':>8}")
        for r in a.rows:
            p = r.point
            where = "placement" if p.network else p.processor
            loo = "—" if r.loo_error_pct is None else f"{r.loo_error_pct:+.1f}%"
            lines.append(
                f"  {p.label:<20} {p.dtype:<8} {where:<9} {p.protocol_name:<24} {p.latency_ms:>9.2f} {r.predicted_ms:>9.2f} {r.error_pct:>+6.1f}% {loo:>8}"
            )
        if a.rows:
            lines.append(
                f"  in-sample median {_pct(a.median(False))}; leave-one-out median {_pct(a.median(True))}, mean {_pct(a.mean(True))}, worst {_pct(a.worst(True))}"
            )
        if a.measured:
            lines.append(f"  {'micro-benchmark':<28} {'dtype':<8} {'measured':>9} {'error':>7} {'left out':>8}")
            lines += [f"  {q['kernel']:<28} {q['dtype']:<8} {q['ms']:>9.4f} {q['error_pct']:>+6.1f}% {q['left_out_pct']:>+7.1f}%" for q in a.measured]
        lines.append(
            f"  {'processor/dtype':<16} {'kernel family':<18} {'points':>6} {'left out':>8} {'conv':>7} {'dwconv':>7} {'mem':>7} {'op ms':>8}  prior-dominated"
        )
        for g in a.groups:
            flag = "yes: " + "; ".join(g.flags) if g.flags else "no"
            lines.append(
                f"  {g.processor + '/' + g.dtype:<16} {g.kind:<18} {g.points:>6} {_pct(g.loo_median_pct):>8} {g.conv:>7.3f} {g.dwconv:>7.3f} "
                f"{g.mem:>7.3f} {g.op_ms:>8.4f}  {flag}"
            )
        lines.append("")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if not args.report:
        raise StretchError("usage", "stretchc cost-model: give --report")
    console = get_console()
    with console.step("leave-one-out refits" if not args.no_loo else "predicting the calibration points"):
        accs = api.cost_model_accuracy(args.target, loo=not args.no_loo)
    console.out(format_report(accs))
    return 0
