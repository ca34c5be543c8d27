"""How well the cost model predicts: per target, its calibration points predicted in-sample and left out.

- Points are counted once per SoC: a target's points are those of its calibration set, shared with every other
  target carrying the same SoC.
- Leave-one-out: every point is predicted by a fit over all the others (from the priors, not warm-started
  from the full fit, so the left-out point cannot leak in).
- Per (processor, dtype) the target prices (its protocol decides the kernel family): the parameters used, how
  many points of the set inform them, and a flag when they are prior-dominated: fewer than `MIN_POINTS`
  points, or an efficiency at (within 1% of) a clamp (`eff_clamp`; not for a target `stretchc calibrate` measured,
  whose peaks are its own fastest kernels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from stretchc.costmodel import CostModel, CostParams, eff_clamp, load_params
from stretchc.costmodel.calibration import Point, load_calibration
from stretchc.costmodel.fit import Fitter, error_pct
from stretchc.costmodel.microbench import PROCESSOR as MEASURED_ON
from stretchc.costmodel.held_out import left_out_predictions, load_held_out, stale
from stretchc.backends import backend
from stretchc.targets import known_targets, load_target

MIN_POINTS = 5


@dataclass(frozen=True)
class PointRow:
    point: Point
    predicted_ms: float
    loo_ms: float | None

    @property
    def error_pct(self) -> float:
        return error_pct(self.predicted_ms, self.point.latency_ms)

    @property
    def loo_error_pct(self) -> float | None:
        return None if self.loo_ms is None else error_pct(self.loo_ms, self.point.latency_ms)


@dataclass(frozen=True)
class GroupRow:
    processor: str
    dtype: str
    kind: str
    points: int  # points of the set that run (part of) their work on this kernel family
    conv: float
    dwconv: float
    mem: float
    op_ms: float
    flags: tuple[str, ...]
    loo_median_pct: float | None  # leave-one-out median |error| of the set's points that use the family

    @property
    def prior_dominated(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class TargetAccuracy:
    target: str
    calibration_set: str
    shared_with: tuple[str, ...]
    rows: tuple[PointRow, ...]
    groups: tuple[GroupRow, ...]
    measured: tuple[Mapping[str, Any], ...] = ()  # a measured target's micro-benchmarks (its `measured.points`)

    def median(self, loo: bool) -> float | None:
        errs = [abs(e) for e in (r.loo_error_pct if loo else r.error_pct for r in self.rows) if e is not None]
        return float(np.median(errs)) if errs else None

    def mean(self, loo: bool) -> float | None:
        errs = [abs(e) for e in (r.loo_error_pct if loo else r.error_pct for r in self.rows) if e is not None]
        return float(np.mean(errs)) if errs else None

    def worst(self, loo: bool) -> float | None:
        errs = [abs(e) for e in (r.loo_error_pct if loo else r.error_pct for r in self.rows) if e is not None]
        return max(errs) if errs else None


def _kinds_of(fitter: Fitter) -> dict[str, list[set[str]]]:
    """Point key -> the kernel families its prediction uses."""
    return {pp.point.key: {r.group[1] for r in pp.regions} for pp in fitter.prepared}  # type: ignore[misc]


def group_rows(
    target: Any, params: CostParams, evidence_of: Callable[[str], tuple[int, list[float]]], *, clamps: bool = True,
) -> list[GroupRow]:
    """Per (processor, dtype) `target` prices: its kernel family's parameters and flags, from `evidence_of(kind)`:
    how many points inform the family and their left-out |errors| (%); with `clamps`, an efficiency at a clamp
    flags it too (not for a measured target: its peaks are its own fastest kernels, so an efficiency at 1 is a
    measurement reaching them, not a prior holding the fit)."""
    cm = CostModel(target, params=params)
    rows = []
    for proc in target.processors:
        for dtype in backend(proc).precisions(target):
            kind = cm.execution(proc, dtype).kind
            g = cm.group(proc, dtype)
            n, loo = evidence_of(kind)
            flags = []
            if n < MIN_POINTS:
                flags.append(f"{n} point{'s' if n != 1 else ''} (< {MIN_POINTS})")
            at = [c for c in ("conv", "dwconv", "mem") if clamps and (g.eff(c) >= 0.99 * eff_clamp(kind, c)[1] or g.eff(c) <= 1.01 * eff_clamp(kind, c)[0])]
            if at:
                flags.append(f"{', '.join(at)} at the clamp ({', '.join(f'{c} {eff_clamp(kind, c)}' for c in at)})")
            rows.append(GroupRow(proc, dtype, kind, n, g.conv, g.dwconv, g.mem, g.op_ms, tuple(flags), float(np.median(loo)) if loo else None))
    return rows


def measured_accuracy(target: Any, params: CostParams) -> TargetAccuracy:
    """A target measured by `stretchc calibrate`: its micro-benchmarks (`measured`, each with its error in the fit and
    left out of it) and the groups they inform (those of the kernel family each ran)."""
    points = tuple(target.raw["measured"]["points"])
    cm = CostModel(target, params=params)
    kind_of = [cm.execution(MEASURED_ON, q["dtype"]).kind for q in points]

    def evidence_of(kind: str) -> tuple[int, list[float]]:
        mine = [q for q, k in zip(points, kind_of) if k == kind]
        return len(mine), [abs(q["left_out_pct"]) for q in mine if "left_out_pct" in q]

    name = f"{target.raw['calibration']} (measured by stretchc calibrate)"
    return TargetAccuracy(target.name, name, (), (), tuple(group_rows(target, params, evidence_of, clamps=False)), points)


def accuracy(targets: list[Any], *, loo: bool = True, progress: Any = None) -> list[TargetAccuracy]:
    """In-sample (with the committed parameters) and leave-one-out errors of every target's calibration set (the
    stored ones of held_out.yaml when it is current, else refitted once per point)."""
    cal = load_calibration()
    params = load_params()
    sets = sorted({t.raw["calibration"] for t in targets})
    fitter = Fitter(cal.points())  # the model is fitted over every set at once
    predicted = fitter.predict_all(params)
    kinds_by_point = _kinds_of(fitter)
    loo_ms: dict[str, float] = {}
    if loo:
        keys = [p.key for p in cal.points(sets)]
        stored = load_held_out()["points"]
        if not stale() and all(k in stored for k in keys):  # the refits bench/fit_cost_model.py stored
            measured = {p.key: p.latency_ms for p in cal.points(sets)}
            loo_ms = {k: measured[k] * (1.0 + stored[k]["left_out"] / 100.0) for k in keys}
        else:
            loo_ms = left_out_predictions(fitter, keys, progress)
    carriers: dict[str, list[str]] = {}
    for name in known_targets():
        carriers.setdefault(load_target(name).raw["calibration"], []).append(name)
    out = []
    for t in targets:
        if t.raw.get("measured"):
            out.append(measured_accuracy(t, params))
            continue
        s = t.raw["calibration"]
        pts = cal.sets.get(s, ())
        rows = tuple(PointRow(p, predicted[p.key], loo_ms.get(p.key)) for p in pts)

        def evidence_of(kind: str, rows: tuple[PointRow, ...] = rows) -> tuple[int, list[float]]:
            mine = [r for r in rows if kind in kinds_by_point[r.point.key]]
            return len(mine), [abs(r.loo_error_pct) for r in mine if r.loo_error_pct is not None]

        out.append(TargetAccuracy(t.name, s, tuple(n for n in carriers.get(s, []) if n != t.name), rows, tuple(group_rows(t, params, evidence_of))))
    return out


def evidence(target: Any) -> dict[str, Any]:
    """What `target`'s predictions rest on (for the compile summary and the placement report): its calibration set
    (the SoC's), how many measured networks it holds and the in-sample median error over them; per processor the
    most points any of its (processor, dtype) kernel families is fitted to and its basis, and the same per
    (processor, dtype) group (`groups`, keyed "processor/dtype"): "measured" when the family has enough points and
    no efficiency at a clamp, "prior-dominated" when it has some, "prior" when none (the prediction rests on
    published peak figures and the priors alone). The held-out errors (`stretchc.costmodel.held_out`): per group
    the median |error| of the set's points that use its family, each predicted by a fit without it
    (`left_out_median_pct`), and over the set's NN-Stretch configurations, each predicted by a fit without its
    whole family (`family_left_out`: points, median and worst |error|; None when the set has none). Computed once
    per target and process."""
    key = (target.name, str(getattr(target, "path", "")), target.raw.get("calibration"), tuple(target.processors))
    if key not in _EVIDENCE:
        _EVIDENCE[key] = _evidence(target)
    return _EVIDENCE[key]


_EVIDENCE: dict[tuple[Any, ...], dict[str, Any]] = {}
_BASES = ("prior", "prior-dominated", "measured")  # weakest first


def _median_abs(errors: list[float]) -> float | None:
    return round(float(np.median(np.abs(errors))), 1) if errors else None


def _evidence(target: Any) -> dict[str, Any]:
    if target.raw.get("calibration") is None:
        groups = {f"{p}/{d}": {"basis": "prior", "points": 0, "left_out_median_pct": None} for p in target.processors for d in backend(p).precisions(target)}
        return {
            "calibration_set": None, "points": 0, "in_sample_median_pct": None,
            "processors": {p: {"basis": "prior", "points": 0} for p in target.processors}, "groups": groups, "family_left_out": None,
        }
    found = accuracy([target], loo=False)[0]
    stored = load_held_out()["points"]
    held = {r.point.key: stored[r.point.key] for r in found.rows if r.point.key in stored}
    per: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {}
    for g in found.groups:
        basis = "measured" if not g.prior_dominated else "prior-dominated" if g.points else "prior"
        if found.measured:  # its own left-out errors
            left = None if g.loo_median_pct is None else round(g.loo_median_pct, 1)
        else:
            left = _median_abs([row["left_out"] for row in held.values() if g.kind in row["kinds"]])
        groups[f"{g.processor}/{g.dtype}"] = {"basis": basis, "points": g.points, "left_out_median_pct": left}
        best = per.get(g.processor)
        if best is None or (_BASES.index(basis), g.points) > (_BASES.index(best["basis"]), best["points"]):
            per[g.processor] = {"basis": basis, "points": g.points}
    family = [row["family_left_out"] for row in held.values() if "family_left_out" in row]
    median = _median_abs([q["error_pct"] for q in found.measured if "error_pct" in q]) if found.measured else found.median(False)
    return {
        "calibration_set": found.calibration_set,
        "points": len(found.measured) or len(found.rows),
        "in_sample_median_pct": None if median is None else round(median, 1),
        "processors": per,
        "groups": groups,
        "family_left_out": {"points": len(family), "median_pct": _median_abs(family), "worst_pct": round(max(abs(e) for e in family), 1)} if family else None,
    }


def evidence_line(cost_model: Mapping[str, Any], used: Iterable[tuple[str, str]]) -> str:
    """What the predictions of the (processor, precision) groups in `used` rest on, in one line (from the report's
    `cost_model`, `evidence`): each group's basis, and the error band the held-out errors give: the largest
    left-out median of the used groups, and the worst error on network families the fit never saw."""
    groups = cost_model.get("groups") or {}
    names = {g: f"{g[0]} {g[1]}" for g in used}
    parts = []
    for basis, what in (
        ("measured", "fitted to measurements of this SoC"),
        ("prior-dominated", "from few measurements of this SoC (prior-dominated)"),
        ("prior", "from published peak figures and priors alone (no measurement of this SoC)"),
    ):
        named = [names[g] for g in sorted(names) if groups.get(f"{g[0]}/{g[1]}", {}).get("basis", "prior") == basis]
        if named:
            parts.append(f"{', '.join(named)} {what}")
    median = cost_model.get("in_sample_median_pct")
    fit = f"; {cost_model['points']} measurements of {cost_model['calibration_set']}, in-sample median error {median:.1f}%" if median is not None else ""
    left = {g: groups.get(f"{g[0]}/{g[1]}", {}).get("left_out_median_pct") for g in names}
    banded = [v for v in left.values() if v is not None]
    family = cost_model.get("family_left_out")
    if banded:
        band = f"typical error +-{max(banded):.0f}% (the median over measurements each left out of the fit)"
        if family:
            band += f", up to {family['worst_pct']:.0f}% on network families the fit never saw ({family['points']} configurations held out by family)"
        unbanded = [names[g] for g in sorted(names) if left[g] is None]
        if unbanded:
            band += f"; none for {', '.join(unbanded)} (no measured network of this SoC runs there)"
    else:
        band = "no error band: no measured network of this SoC runs on these processors, so errors of tens of percent are possible"
    return f"cost model: {'; '.join(parts)}{fit}; {band}; a prediction, not a measurement (stretchc cost-model --report)"
