"""Fit the cost model's parameters to every calibration set at once (`Fitter.fit`, also without some points).

Parameters (all positive, fitted in log space; see `stretchc.costmodel` for the model):
- per kernel family K: `conv` (fraction of peak for dense work), the `dwconv`/`conv` ratio, `mem` (fraction of
  the memory bandwidth), `op_ms` (one kernel launch) — shared by every SoC;
- per calibration set s and family K with points: three factors, on `conv` (and so `dwconv`), on `mem` and on
  the launch speed (the SoC's own compute, memory and launch speed); and where a set has points of both
  statistics (min and mean of runs), a speed factor per statistic on all of them;
- per processor whose backend says so (`fit_dispatch`): the dispatch time of a partition invoke (the CPU's stays
  at its prior: nothing separates it);
- globally: the transfer bandwidth and sync time of a boundary value.

Objective (a maximum a posteriori fit): the sum over points of the squared log error in units of `NOISE`
(relative error, so a 1 ms and a 500 ms point weigh the same), plus a Gaussian prior on every parameter in log
space: families around their priors (scale `PRIOR_SCALE`, `RATIO_SCALE` for the dwconv/conv ratio), set
factors around 1 (`SET_SCALE`), statistic factors around 1 (`STATISTIC_SCALE`), the rest around their priors
(`GLOBAL_SCALE`). The priors are the backends' (`Backend.kernel_priors`, `Backend.dispatch_ms`). Partial pooling: a set or family with few points stays near what the others say. Minimised
with Levenberg-Marquardt (numeric, sparse Jacobian; deterministic), from the prior means. Efficiencies are
clamped to `eff_clamp` inside the model, so the fit sees the clamp.

Every prediction goes through `calibration.predict`'s code path (`CostModel.region_ms` on the same work
features, `placement.simulate` with its conversions), with the features computed once per point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from stretchc.backends import backends, fallback
from stretchc.costmodel import PRIOR_TRANSFER, CostModel, CostParams, Protocol, prior_dispatch_ms, prior_kinds
from stretchc.costmodel.calibration import NETWORK_IO_DTYPE, Point, hardware, network_choices, point_cost_model, point_workload
from stretchc.costmodel.grouping import per_region
from stretchc.costmodel.placement import Choice, RegionGraph, simulate, workload_graph

NOISE = 0.1  # the typical log error of a point (model and measurement): residuals are in units of it
PRIOR_SCALE = 2.0  # e-folds: a family's parameters (vague)
RATIO_SCALE = 1.0  # e-folds: a family's dwconv/conv efficiency ratio (depthwise runs at a fraction of dense)
SET_SCALE = 0.5  # a SoC's factors against the pooled family
SET_FACTORS = ("speed", "memory", "launch")  # per set and family: conv (and dwconv), mem, 1 / op_ms
STATISTIC_SCALE = 0.2  # a protocol statistic's factor (min vs mean of runs)
GLOBAL_SCALE = 2.0  # dispatch, transfer (vague)


def fitted_dispatch() -> tuple[str, ...]:
    """The processors whose dispatch time is fitted (`Backend.fit_dispatch`)."""
    return tuple(b.name for b in backends() if b.fit_dispatch)


@dataclass
class _Region:
    name: str
    choice: Choice
    group: tuple[str, str, str]  # (set, kind, statistic)
    features: np.ndarray


@dataclass
class _Prepared:
    point: Point
    regions: list[_Region]
    rg: RegionGraph | None  # networks only: the graph simulate() runs on
    placement: dict[str, Choice]
    hw: Mapping[str, Any]
    conversion_kinds: frozenset[str]  # networks only: the kernel families a conversion may run on


def _prepare(point: Point, hw: Mapping[str, Any]) -> _Prepared:
    cm = point_cost_model(point, CostParams.prior(), hw)
    work, procs = point_workload(point)
    placement = network_choices(point, procs) if point.network else {"main": Choice(procs["main"], point.dtype)}
    regions = []
    for r in work.regions:
        c = placement[r.name]
        kind = cm.execution(c.processor, c.precision).kind
        regions.append(_Region(r.name, c, (point.set, kind, point.protocol.statistic), cm.features(r.ops, c.processor, c.precision, threads=point.threads)))
    if not point.network:
        return _Prepared(point, regions, None, placement, hw, frozenset())
    # A conversion runs in the 8-bit family of a region's processor, or of the CPU (CostModel.conversion_ms).
    kinds = frozenset(cm.execution(p, "int8").kind for p in {fallback().name, *(c.processor for c in placement.values())})
    return _Prepared(point, regions, workload_graph(work, NETWORK_IO_DTYPE), placement, hw, kinds)


@dataclass
class Layout:
    """Where each parameter sits in the vector the optimiser moves."""

    kinds: list[str]
    set_kinds: list[tuple[str, str]]
    set_stats: list[tuple[str, str, str]]
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.names = (
            [f"{k}.{p}" for k in self.kinds for p in ("conv", "dwconv_ratio", "mem", "op_ms")]
            + [f"{s}.{k}.{p}" for s, k in self.set_kinds for p in SET_FACTORS]
            + [f"{s}.{k}.{st}" for s, k, st in self.set_stats]
            + [f"dispatch.{p}" for p in fitted_dispatch()]
            + ["transfer.gbps", "transfer.sync_ms"]
        )

    def moves(self, j: int, pp: "_Prepared") -> bool:
        """Whether parameter `j` may enter the prediction of the prepared point `pp` (its regions' groups, and the
        families its conversions may run on)."""
        groups = {r.group for r in pp.regions} | {(pp.point.set, k, pp.point.protocol.statistic) for k in pp.conversion_kinds}
        i = j
        if i < 4 * len(self.kinds):
            return any(g[1] == self.kinds[i // 4] for g in groups)
        i -= 4 * len(self.kinds)
        if i < len(SET_FACTORS) * len(self.set_kinds):
            return any(g[:2] == self.set_kinds[i // len(SET_FACTORS)] for g in groups)
        i -= len(SET_FACTORS) * len(self.set_kinds)
        if i < len(self.set_stats):
            return self.set_stats[i] in groups
        i -= len(self.set_stats)
        dispatch = fitted_dispatch()
        if i < len(dispatch):
            return any(r.choice.processor == dispatch[i] for r in pp.regions)
        return pp.rg is not None  # transfer: only multi-region networks

    def prior(self) -> tuple[np.ndarray, np.ndarray]:
        """Prior means and scales (log space)."""
        mean, scale = [], []
        for k in self.kinds:
            pk = prior_kinds()[k]
            mean += [math.log(pk["conv"]), math.log(pk["dwconv"] / pk["conv"]), math.log(pk["mem"]), math.log(pk["op_ms"])]
            scale += [PRIOR_SCALE, RATIO_SCALE, PRIOR_SCALE, PRIOR_SCALE]
        mean += [0.0] * (len(SET_FACTORS) * len(self.set_kinds))
        scale += [SET_SCALE] * (len(SET_FACTORS) * len(self.set_kinds))
        mean += [0.0] * len(self.set_stats)
        scale += [STATISTIC_SCALE] * len(self.set_stats)
        dispatch = fitted_dispatch()
        mean += [math.log(prior_dispatch_ms()[p]) for p in dispatch]
        mean += [math.log(PRIOR_TRANSFER["gbps"]), math.log(PRIOR_TRANSFER["sync_ms"])]
        scale += [GLOBAL_SCALE] * (len(dispatch) + 2)
        return np.array(mean), np.array(scale)

    def params(self, theta: np.ndarray, *, rounded: bool = True) -> CostParams:
        """The CostParams a parameter vector stands for; `rounded` as the fitted file stores them (the optimiser
        works unrounded: it needs smooth changes)."""
        _r = _round4 if rounded else float
        e = np.exp(theta)
        i = 0
        kinds: dict[str, dict[str, float]] = {}
        for k in self.kinds:
            conv = e[i]
            kinds[k] = {"conv": _r(conv), "dwconv": _r(conv * e[i + 1]), "mem": _r(e[i + 2]), "op_ms": _r(e[i + 3])}
            i += 4
        sets: dict[str, dict[str, dict[str, Any]]] = {}
        for s, k in self.set_kinds:
            sets.setdefault(s, {})[k] = {"conv": _r(kinds[k]["conv"] * e[i]), "mem": _r(kinds[k]["mem"] * e[i + 1]), "op_ms": _r(kinds[k]["op_ms"] / e[i + 2])}
            i += len(SET_FACTORS)
        for s, k, st in self.set_stats:
            sets[s][k].setdefault("statistic", {})[st] = _r(e[i])
            i += 1
        dispatch = prior_dispatch_ms()
        for p in fitted_dispatch():
            dispatch[p] = _r(e[i])
            i += 1
        transfer = {"gbps": _r(e[i]), "sync_ms": _r(e[i + 1])}
        return CostParams({**prior_kinds(), **kinds}, sets, dispatch, transfer)


def _round4(x: float) -> float:
    """Four significant digits: the fitted file is read by people and must reproduce bit for bit."""
    return float(f"{float(x):.4g}")


def layout_for(points: Iterable[_Prepared]) -> Layout:
    kinds, set_kinds, set_stats = set(), set(), set()
    for pp in points:
        for r in pp.regions:
            s, k, st = r.group
            kinds.add(k)
            set_kinds.add((s, k))
            set_stats.add((s, k, st))
    # A statistic factor is only separable from the set's speed when the set has points of both statistics.
    multi = {(s, k) for s, k in set_kinds if sum(1 for q in set_stats if q[:2] == (s, k)) > 1}
    return Layout(sorted(kinds), sorted(set_kinds), sorted(q for q in set_stats if q[:2] in multi))


def _predict(pp: _Prepared, params: CostParams, inverse: dict[tuple[str, str, str], np.ndarray], cms: dict[tuple[str, Protocol], CostModel]) -> float:
    """`calibration.predict` on prepared features: dispatch + features @ group inverse, simulated for networks."""
    cost: dict[str, dict[Choice, float]] = {}
    for r in pp.regions:
        if r.group not in inverse:
            inverse[r.group] = params.group(r.group[1], r.group[0], r.group[2]).inverse()
        cost[r.name] = {r.choice: params.dispatch_ms[r.choice.processor] + float(r.features @ inverse[r.group])}
    if pp.rg is None:
        return cost[pp.regions[0].name][pp.regions[0].choice]
    key = (pp.point.set, pp.point.protocol)
    if key not in cms:
        cms[key] = point_cost_model(pp.point, params, pp.hw)
    pp.rg.cost = cost
    return simulate(pp.rg, cms[key], pp.placement, per_region(pp.rg, pp.placement))[0]


@dataclass
class FitResult:
    params: CostParams
    layout: Layout
    theta: np.ndarray
    predictions: dict[str, float]  # point key -> predicted ms


class Fitter:
    """Prepares every point once; `fit(exclude=...)` refits without some points (leave-one-out, held-out)."""

    def __init__(self, points: list[Point], hw_of: Callable[[str], Mapping[str, Any]] = hardware) -> None:
        hws: dict[str, Mapping[str, Any]] = {}
        self.prepared = []
        for p in points:
            if p.set not in hws:
                hws[p.set] = hw_of(p.set)
            self.prepared.append(_prepare(p, hws[p.set]))
        self.layout = layout_for(self.prepared)
        self.mean, self.scale = self.layout.prior()
        self.logm = np.array([math.log(pp.point.latency_ms) for pp in self.prepared])
        # Which points each parameter moves (the Jacobian is sparse: a set's factor moves only that set's
        # points), so each Jacobian column recomputes only those.
        self.affects = [np.array([i for i, pp in enumerate(self.prepared) if self.layout.moves(j, pp)], dtype=int) for j in range(self.mean.size)]

    def _predictions(self, theta: np.ndarray, idx: Iterable[int]) -> np.ndarray:
        params = self.layout.params(theta, rounded=False)
        inverse: dict[tuple[str, str, str], np.ndarray] = {}
        cms: dict[tuple[str, Protocol], CostModel] = {}
        return np.array([_predict(self.prepared[i], params, inverse, cms) for i in idx])

    def predict_all(self, params: CostParams) -> dict[str, float]:
        cms: dict[tuple[str, Protocol], CostModel] = {}
        return {pp.point.key: _predict(pp, params, {}, cms) for pp in self.prepared}

    def fit(self, exclude: Iterable[str] = (), start: np.ndarray | None = None, iterations: int = 100) -> FitResult:
        """The MAP fit without the points keyed in `exclude` (see the module docstring)."""
        skip = set(exclude)
        use = np.array([i for i, pp in enumerate(self.prepared) if pp.point.key not in skip])
        row = {int(i): k for k, i in enumerate(use)}
        logm = self.logm[use]

        def residuals(theta: np.ndarray) -> np.ndarray:
            return np.concatenate([(np.log(self._predictions(theta, use)) - logm) / NOISE, (theta - self.mean) / self.scale])

        def jacobian(theta: np.ndarray, r: np.ndarray, h: float) -> np.ndarray:
            jac = np.zeros((r.size, theta.size))
            for j in range(theta.size):
                rows = [i for i in self.affects[j] if int(i) in row]
                moved = theta.copy()
                moved[j] += h
                if rows:
                    at = [row[int(i)] for i in rows]
                    jac[at, j] = ((np.log(self._predictions(moved, rows)) - logm[at]) / NOISE - r[at]) / h
                jac[use.size + j, j] = 1.0 / self.scale[j]
            return jac

        theta = self.mean.copy() if start is None else start.copy()
        theta = _levenberg_marquardt(residuals, jacobian, theta, iterations)
        params = self.layout.params(theta)
        return FitResult(params, self.layout, theta, self.predict_all(params))


def _levenberg_marquardt(
    f: Callable[[np.ndarray], np.ndarray], jac: Callable[[np.ndarray, np.ndarray, float], np.ndarray], x: np.ndarray, iterations: int
) -> np.ndarray:
    r = f(x)
    cost = float(r @ r)
    mu = 1e-2
    for _ in range(iterations):
        jm = jac(x, r, 1e-5)
        jtj, jtr = jm.T @ jm, jm.T @ r
        improved = False
        while mu < 1e8:
            step = np.linalg.solve(jtj + mu * np.diag(np.diag(jtj) + 1e-12), -jtr)
            x2 = x + step
            r2 = f(x2)
            c2 = float(r2 @ r2)
            if c2 < cost:
                improved = cost - c2 > 1e-9 * cost
                x, r, cost = x2, r2, c2
                mu = max(mu / 3.0, 1e-9)
                break
            mu *= 4.0
        if not improved:
            break
    return x


def params_close(a: Any, b: Any, rel: float = 0.01) -> bool:
    """Whether two `CostParams.to_raw()` trees hold the same keys and numbers within `rel` (a refit on another
    machine may differ in the last digits: linear algebra is not bit-reproducible across BLAS builds)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(params_close(a[k], b[k], rel) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)
    return bool(a == b)


def error_pct(predicted: float, measured: float) -> float:
    return 100.0 * (predicted - measured) / measured


__all__ = ["Fitter", "FitResult", "Layout", "error_pct", "params_close"]
