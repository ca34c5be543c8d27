"""How well the cost model predicts: per target, its calibration points predicted in-sample and left out.

- Points are counted once per SoC: a target's points are those of its calibration set, shared with every other
  target carrying the same SoC.
- Leave-one-out: every point is predicted by a fit over all the others (from the priors, not warm-started
  from the full fit, so the left-out point cannot leak in).
- Per (processor, dtype) the target prices (its protocol decides the kernel family): the parameters used, how
  many points of the set inform them, and a flag when they are prior-dominated: fewer than `MIN_POINTS`
  points, or an efficiency at (within 1% of) a clamp (`eff_clamp`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from stretchc.costmodel import CostModel, CostParams, eff_clamp, load_params
from stretchc.costmodel.calibration import Point, load_calibration
from stretchc.costmodel.fit import Fitter, error_pct
from stretchc.backends import backend

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


def group_rows(target: Any, params: CostParams, kinds_by_point: dict[str, Any], rows_in: Iterable[PointRow]) -> list[GroupRow]:
    cm = CostModel(target, params=params)
    rows = []
    point_rows = list(rows_in)
    pts = [r.point for r in point_rows]
    for proc in target.processors:
        for dtype in backend(proc).precisions(target):
            kind = cm.execution(proc, dtype).kind
            g = cm.group(proc, dtype)
            n = sum(1 for p in pts if kind in kinds_by_point[p.key])
            flags = []
            if n < MIN_POINTS:
                flags.append(f"{n} point{'s' if n != 1 else ''} (< {MIN_POINTS})")
            at = [c for c in ("conv", "dwconv", "mem") if g.eff(c) >= 0.99 * eff_clamp(kind, c)[1] or g.eff(c) <= 1.01 * eff_clamp(kind, c)[0]]
            if at:
                flags.append(f"{', '.join(at)} at the clamp ({', '.join(f'{c} {eff_clamp(kind, c)}' for c in at)})")
            loo = [abs(r.loo_error_pct) for r in point_rows if r.loo_error_pct is not None and kind in kinds_by_point[r.point.key]]
            rows.append(GroupRow(proc, dtype, kind, n, g.conv, g.dwconv, g.mem, g.op_ms, tuple(flags), float(np.median(loo)) if loo else None))
    return rows


def accuracy(targets: list[Any], *, loo: bool = True, progress: Any = None) -> list[TargetAccuracy]:
    """In-sample (with the committed parameters) and leave-one-out errors of every target's calibration set."""
    cal = load_calibration()
    params = load_params()
    sets = sorted({t.raw["calibration"] for t in targets})
    fitter = Fitter(cal.points())  # the model is fitted over every set at once
    predicted = fitter.predict_all(params)
    kinds_by_point = _kinds_of(fitter)
    loo_ms: dict[str, float] = {}
    if loo:
        keys = [p.key for p in cal.points(sets)]
        for i, key in enumerate(keys):
            if progress is not None:
                progress(i, len(keys))
            loo_ms[key] = fitter.fit(exclude=[key]).predictions[key]
    from stretchc.targets import known_targets, load_target

    carriers: dict[str, list[str]] = {}
    for name in known_targets():
        carriers.setdefault(load_target(name).raw["calibration"], []).append(name)
    out = []
    for t in targets:
        s = t.raw["calibration"]
        pts = cal.sets.get(s, ())
        rows = tuple(PointRow(p, predicted[p.key], loo_ms.get(p.key)) for p in pts)
        out.append(TargetAccuracy(t.name, s, tuple(n for n in carriers.get(s, []) if n != t.name), rows, tuple(group_rows(t, params, kinds_by_point, rows))))
    return out


def evidence(target: Any) -> dict[str, Any]:
    """What `target`'s predictions rest on (for the compile summary and the placement report): its calibration set
    (the SoC's), how many measured networks it holds and the in-sample median error over them, and per processor
    the most points any of its (processor, dtype) kernel families is fitted to and its basis: "measured" when a
    family has enough points and no efficiency at a clamp, "prior-dominated" when it has some, "prior" when none
    (the prediction rests on published peak figures and the priors alone). Computed once per target and process."""
    key = (target.name, target.raw.get("calibration"), tuple(target.processors))
    if key not in _EVIDENCE:
        _EVIDENCE[key] = _evidence(target)
    return _EVIDENCE[key]


_EVIDENCE: dict[tuple[Any, ...], dict[str, Any]] = {}
_BASES = ("prior", "prior-dominated", "measured")  # weakest first


def _evidence(target: Any) -> dict[str, Any]:
    if target.raw.get("calibration") is None:
        return {"calibration_set": None, "points": 0, "in_sample_median_pct": None, "processors": {p: {"basis": "prior", "points": 0} for p in target.processors}}
    found = accuracy([target], loo=False)[0]
    per: dict[str, dict[str, Any]] = {}
    for g in found.groups:
        basis = "measured" if not g.prior_dominated else "prior-dominated" if g.points else "prior"
        best = per.get(g.processor)
        if best is None or (_BASES.index(basis), g.points) > (_BASES.index(best["basis"]), best["points"]):
            per[g.processor] = {"basis": basis, "points": g.points}
    median = found.median(False)
    return {
        "calibration_set": found.calibration_set,
        "points": len(found.rows),
        "in_sample_median_pct": None if median is None else round(median, 1),
        "processors": per,
    }
