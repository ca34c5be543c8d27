"""Fit the cost model to every calibration set and write its parameters; report in-sample, leave-one-out and
held-out-family errors.

    .venv/bin/python bench/fit_cost_model.py [--check] [--refresh-workloads] [--update-results FILE]

- `--refresh-workloads`: rebuild `stretchc/costmodel/networks/workloads.json` from the stored NN-Stretch
  configurations (build at 224 px, seed 0; lower through the lowering cache; the passes before
  assign-delegates). Needed after a change to the builder, the lowering or those passes.
- Default: fit (stretchc/costmodel/fit.py: one MAP fit over all sets, deterministic) and write
  `stretchc/targets/data/costmodel/fitted.yaml`; then the held-out errors (stretchc/costmodel/held_out.py: every
  point predicted by a fit without it, and every NN-Stretch configuration by a fit without its whole family, the
  error on networks the fit has not seen) to `held_out.yaml`, which compiles read for their error band; print
  every target's points (measured, predicted, left out) and its (processor, dtype) groups
  (stretchc.costmodel.accuracy).
- `--check`: exit 1 if the committed parameters differ from a refit by more than 1% anywhere, the held-out
  errors do not follow from the present files, or a stored workload is stale (its configuration changed);
  writes nothing.
- `--update-results FILE`: replace the body of `## Cost model calibration (issue 11)` in FILE.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import publish  # noqa: E402
from stretchc.costmodel import PARAMS_PATH, load_params  # noqa: E402
from stretchc.costmodel.accuracy import accuracy  # noqa: E402
from stretchc.costmodel.calibration import (  # noqa: E402
    NETWORKS_DIR,
    WORKLOADS_PATH,
    config_digest,
    load_calibration,
    load_workloads,
)
from stretchc.costmodel.fit import Fitter, params_close  # noqa: E402
from stretchc.driver import compute_network_workload  # noqa: E402
from stretchc.costmodel import held_out  # noqa: E402
from stretchc.targets import known_targets, load_target  # noqa: E402

HEADER = "# Cost-model parameters: written by bench/fit_cost_model.py from calibration.yaml (do not edit by hand).\n"
SECTION = "## Cost model calibration (issue 11)"


def refresh_workloads() -> None:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in sorted(NETWORKS_DIR.glob("*.yaml")):
            print(f"workload of {cfg.stem} ...", file=sys.stderr, flush=True)
            out[cfg.stem] = compute_network_workload(cfg.stem, work_dir=Path(tmp))
    lines = [f"{json.dumps(k)}: {json.dumps(v, sort_keys=True, separators=(',', ':'))}" for k, v in sorted(out.items())]
    WORKLOADS_PATH.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    load_workloads.cache_clear()


def stale_workloads() -> list[str]:
    stored = load_workloads()
    names = sorted(p.stem for p in NETWORKS_DIR.glob("*.yaml"))
    return [n for n in names if n not in stored or stored[n]["config_sha256"] != config_digest(n)]


def report() -> str:
    targets = [load_target(n) for n in known_targets()]

    acc = accuracy(targets)  # the left-out predictions held_out.yaml stores
    out = ["Leave-one-out over unique points (one set per SoC, shared by the targets carrying it); errors are |predicted - measured| / measured.", ""]
    out += ["| target | set (shared with) | points | in-sample median | leave-one-out median | mean | worst | prior-dominated groups |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for a in acc:
        if not a.rows:
            out.append(f"| {a.target} | {a.calibration_set} | 0 | — | — | — | — | all (no points) |")
            continue
        flagged = ", ".join(f"{g.processor}/{g.dtype}" for g in a.groups if g.prior_dominated) or "none"
        out.append(
            f"| {a.target} | {a.calibration_set} ({', '.join(a.shared_with) or '—'}) | {len(a.rows)} | {a.median(False):.1f}% | "
            f"{a.median(True):.1f}% | {a.mean(True):.1f}% | {a.worst(True):.1f}% | {flagged} |"
        )
    mi9 = next(a for a in acc if a.target == "mi9")
    nn = [r for r in mi9.rows if r.point.network]
    out += ["", "The 15 NN-Stretch configurations given for calibration (mi9, whole-model latency, each with its own placement, all int8):", ""]
    held = held_out.load_held_out()["points"]
    out += ["| config | measured ms | predicted ms | error | leave-one-out error | family held out |", "|---|---:|---:|---:|---:|---:|"]
    for r in nn:
        out.append(
            f"| {r.point.label} | {r.point.latency_ms:.2f} | {r.predicted_ms:.2f} | {r.error_pct:+.1f}% | {r.loo_error_pct:+.1f}% | "
            f"{held[r.point.key]['family_left_out']:+.1f}% |"
        )
    worst = max(abs(r.error_pct) for r in nn)
    out.append("")
    out.append(f"In-sample worst {worst:.1f}%; leave-one-out median {_med([abs(r.loo_error_pct or 0) for r in nn]):.1f}%.")
    fam = [abs(held[r.point.key]["family_left_out"]) for r in nn]
    out.append(f"Family held out (fit without all 5 configurations of the family, then predict them): median {_med(fam):.1f}%, worst {max(fam):.1f}%.")
    out += ["", "Each family predicted by a fit that never saw it (issue 22's acceptance: mean absolute error <= 20 % on every family, rank correlation >= 0.9 over the 15):", ""]
    out += ["| family held out | configurations | mean absolute error | worst |", "|---|---:|---:|---:|"]
    by_family: dict[str, list[float]] = {}
    for r in nn:
        by_family.setdefault(held[r.point.key]["family"], []).append(abs(held[r.point.key]["family_left_out"]))
    for name, errs in sorted(by_family.items()):
        out.append(f"| {name} | {len(errs)} | {sum(errs) / len(errs):.1f}% | {max(errs):.1f}% |")
    predicted = [r.point.latency_ms * (1 + held[r.point.key]["family_left_out"] / 100) for r in nn]
    out.append("")
    out.append(f"Spearman rank correlation of the family-held-out predictions with the measured minimums over the {len(nn)}: {_spearman(predicted, [r.point.latency_ms for r in nn]):.3f}.")
    return "\n".join(out) + "\n"


def _spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (Pearson's over the ranks; the latencies have no ties)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _med(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2) if s else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed parameters or workloads are stale")
    ap.add_argument("--refresh-workloads", action="store_true", help="rebuild the stored NN-Stretch workloads (lowers 15 models)")
    ap.add_argument("--update-results", type=Path, metavar="FILE")
    args = ap.parse_args()
    if args.refresh_workloads and not args.check:
        refresh_workloads()
    stale = stale_workloads()
    if stale:
        print(f"stale workloads: {', '.join(stale)} (run with --refresh-workloads)", file=sys.stderr)
        if args.check:
            return 1
    fitter = Fitter(load_calibration().points())
    fitted = fitter.fit().params
    committed = load_params()
    if args.check:
        if not PARAMS_PATH.is_file() or not params_close(fitted.to_raw(), committed.to_raw()):
            print(f"{PARAMS_PATH.name} differs from a refit (run bench/fit_cost_model.py)", file=sys.stderr)
            return 1
        if held_out.stale():
            print("held_out.yaml does not follow from the present calibration, parameters and workloads (run bench/fit_cost_model.py)", file=sys.stderr)
            return 1
        print("cost-model parameters and workloads are current")
        return 0
    PARAMS_PATH.write_text(HEADER + yaml.safe_dump(fitted.to_raw(), sort_keys=True, default_flow_style=None, width=140))
    load_params.cache_clear()

    def progress(i: int, n: int) -> None:
        if i % 10 == 0:
            print(f"held-out refits {i}/{n}", file=sys.stderr, flush=True)

    held_out.write(held_out.compute(fitter, progress))
    publish(report(), args.update_results, SECTION, "Generated by `.venv/bin/python bench/fit_cost_model.py --update-results bench/RESULTS.md`.\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
