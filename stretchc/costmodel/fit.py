"""Fit a target's per-processor, per-dtype, per-op-class efficiencies to its calibration points.

Procedure (deterministic, no dependencies beyond numpy):
1. Group the calibration points by (processor, dtype). For each point, build its reference network's op
   list (`refnets`) and sum its work per op class: FLOPs of conv / dwconv / fc divided by the processor's
   peak at that point's thread count, bytes of `mem` ops divided by the memory bandwidth, and its op count.
2. The predicted time is linear in the unknowns x = (1/eff_conv, 1/eff_dwconv, 1/eff_fc, 1/eff_mem, op_ms):
   t = dispatch + A x. Minimise the squared *relative* error sum_i ((A x)_i / (t_i - dispatch) - 1)^2
   (least squares in log space to first order, so a 1 ms and a 300 ms model weigh the same) plus a weak
   ridge term lam * sum_k (x_k / prior_k - 1)^2 towards the priors (`PRIORS`), which keeps classes a
   group's points cannot separate near a sensible value. x >= 0 is enforced exactly by enumerating the
   active sets (5 unknowns: 32 small least-squares solves) and keeping the best feasible one.
3. Efficiencies are clamped to (0.005, 1.0] and written to the target file's `cost.efficiency`.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from stretchc.costmodel import DEFAULT_DISPATCH_MS, PRIORS, CostModel, Params, processor_peak
from stretchc.costmodel.profile import CLASSES
from stretchc.costmodel.refnets import reference_net

LAMBDA = 0.05


def features(raw: dict[str, Any], point: dict[str, Any]) -> np.ndarray:
    ops = reference_net(point["model"], point["dtype"])
    proc, dtype = point["processor"], point["dtype"]
    peak = processor_peak(raw, proc, dtype, threads=point.get("threads"), affinity=[] if point.get("threads") else None)
    mem = float(raw["memory"]["peak_gbps"])
    row = np.zeros(5)
    for o in ops:
        k = CLASSES.index(o.cls)
        row[k] += (o.bytes / (mem * 1e6)) if o.cls == "mem" else (o.flops / (peak * 1e6))
        row[4] += 1.0
    return row


def _nnls_enum(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = A.shape[1]
    best, best_err = np.zeros(n), float(np.sum(b**2))
    for r in range(1, n + 1):
        for subset in itertools.combinations(range(n), r):
            cols = list(subset)
            sol, *_ = np.linalg.lstsq(A[:, cols], b, rcond=None)
            if np.any(sol < 0):
                continue
            x = np.zeros(n)
            x[cols] = sol
            err = float(np.sum((A @ x - b) ** 2))
            if err < best_err - 1e-15:
                best, best_err = x, err
    return best


def fit_group(raw: dict[str, Any], points: list[dict[str, Any]], processor: str) -> Params:
    prior = PRIORS[processor]
    px = np.array([1 / prior.conv, 1 / prior.dwconv, 1 / prior.fc, 1 / prior.mem, prior.op_ms])
    dispatch = float(((raw.get("cost") or {}).get("dispatch_ms") or {}).get(processor, DEFAULT_DISPATCH_MS[processor]))
    rows, rhs = [], []
    for pt in points:
        t = max(float(pt["latency_ms"]) - dispatch, 1e-3)
        rows.append(features(raw, pt) / t)
        rhs.append(1.0)
    lam = np.sqrt(LAMBDA)
    for k in range(5):
        e = np.zeros(5)
        e[k] = lam / px[k]
        rows.append(e)
        rhs.append(lam)
    x = _nnls_enum(np.array(rows), np.array(rhs))
    eff = [float(np.clip(1.0 / v, 0.005, 1.0)) if v > 0 else 1.0 for v in x[:4]]
    return Params(conv=eff[0], dwconv=eff[1], fc=eff[2], mem=eff[3], op_ms=float(x[4]))


def fit_target(raw: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """The `cost.efficiency` mapping fitted to `raw["calibration"]`: {processor: {dtype: {class: eff, op_ms}}}."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for pt in raw.get("calibration") or []:
        groups.setdefault((pt["processor"], pt["dtype"]), []).append(pt)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (proc, dtype), pts in sorted(groups.items()):
        p = fit_group(raw, pts, proc)
        out.setdefault(proc, {})[dtype] = {
            "conv": round(p.conv, 4), "dwconv": round(p.dwconv, 4), "fc": round(p.fc, 4), "mem": round(p.mem, 4), "op_ms": round(p.op_ms, 5)
        }
    return out


def mape(rows: list[dict[str, Any]]) -> float:
    """Median absolute percentage error of calibration rows (see `calibration_table`)."""
    return float(np.median([abs(r["error_pct"]) for r in rows])) if rows else 0.0


__all__ = ["fit_target", "fit_group", "features", "mape", "CostModel"]
