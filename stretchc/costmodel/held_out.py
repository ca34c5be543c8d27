"""The cost model's held-out errors: every calibration point predicted by a fit that never saw it, stored.

They take a refit per point (a few minutes in all), so `bench/fit_cost_model.py` computes them when it fits and
writes `stretchc/targets/data/costmodel/held_out.yaml`; a compile reads that file to say how far its prediction
can be trusted (`stretchc.costmodel.accuracy.evidence`, the summary's error band).

Per point (signed percent, (predicted - measured) / measured):
- `left_out`: predicted by a fit over every other point (its network may still be known from points of other
  processors or SoCs);
- `family_left_out` (NN-Stretch configurations only): predicted by a fit without every configuration of its
  family (`family`: the configuration's name without its placement suffix, e.g. R-50 of R-50-CG), a network
  family the fit has never seen;
- `kinds`: the kernel families its prediction uses, so a compile can pick the points that speak for the
  (processor, precision) groups its plan uses without preparing the points again.

`inputs` is the SHA-256 of what the errors follow from (the contents of the calibration points, the fitted
parameters, the stored workloads): the file is stale when it differs (`stale`), which a test checks.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from stretchc.costmodel import PARAMS_PATH
from stretchc.costmodel.calibration import CALIBRATION_PATH, WORKLOADS_PATH
from stretchc.costmodel.fit import Fitter, error_pct
from stretchc.errors import StretchError

HELD_OUT_PATH = PARAMS_PATH.with_name("held_out.yaml")
HEADER = "# Held-out errors of the cost model: written by bench/fit_cost_model.py (do not edit by hand); see stretchc/costmodel/held_out.py.\n"


def family(label: str) -> str:
    """The NN-Stretch family of a configuration's name: the name without its placement suffix (R-50-CG -> R-50)."""
    return label.rsplit("-", 1)[0]


def inputs_digest() -> str:
    """SHA-256 over the contents of the files the held-out errors follow from (as parsed: a comment does not
    change it)."""
    data = {path.name: yaml.safe_load(path.read_text()) for path in (CALIBRATION_PATH, PARAMS_PATH, WORKLOADS_PATH)}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def left_out_predictions(fitter: Fitter, keys: list[str], progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Point key -> its latency (ms) predicted by a fit over every point of `fitter` but that one."""
    out = {}
    for i, key in enumerate(keys):
        if progress is not None:
            progress(i, len(keys))
        out[key] = fitter.fit(exclude=[key]).predictions[key]
    return out


def family_left_out_predictions(fitter: Fitter) -> dict[str, float]:
    """Network point key -> its latency (ms) predicted by a fit without every configuration of its family."""
    by_family: dict[tuple[str, str], list[str]] = {}
    for pp in fitter.prepared:
        if pp.point.network:
            by_family.setdefault((pp.point.set, family(pp.point.label)), []).append(pp.point.key)
    out = {}
    for _, keys in sorted(by_family.items()):
        predictions = fitter.fit(exclude=keys).predictions
        out.update({k: predictions[k] for k in keys})
    return out


def compute(fitter: Fitter, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The contents of held_out.yaml for the points of `fitter` (see the module docstring)."""
    points = {pp.point.key: pp for pp in fitter.prepared}
    left = left_out_predictions(fitter, sorted(points), progress)
    fam = family_left_out_predictions(fitter)
    rows: dict[str, dict[str, Any]] = {}
    for key, pp in sorted(points.items()):
        row: dict[str, Any] = {
            "kinds": sorted({r.group[1] for r in pp.regions}),
            "left_out": round(error_pct(left[key], pp.point.latency_ms), 2),
        }
        if key in fam:
            row["family"] = family(pp.point.label)
            row["family_left_out"] = round(error_pct(fam[key], pp.point.latency_ms), 2)
        rows[key] = row
    return {"inputs": inputs_digest(), "points": rows}


def write(data: Mapping[str, Any], path: Path = HELD_OUT_PATH) -> None:
    path.write_text(HEADER + yaml.safe_dump(dict(data), sort_keys=True, default_flow_style=None, width=140))
    load_held_out.cache_clear()


@lru_cache(maxsize=2)
def load_held_out(path: str = str(HELD_OUT_PATH)) -> Mapping[str, Any]:
    """The stored held-out errors ({"inputs": digest, "points": {key: row}}; no points when the file is missing)."""
    p = Path(path)
    if not p.is_file():
        return {"inputs": None, "points": {}}
    try:
        data = yaml.safe_load(p.read_text()) or {}
        return {"inputs": data.get("inputs"), "points": dict(data.get("points") or {})}
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError) as exc:
        raise StretchError("bad-target-file", f"held-out errors of the cost model: {exc}", file=str(p)) from None


def stale() -> bool:
    """Whether held_out.yaml does not follow from the present calibration points, parameters and workloads."""
    return load_held_out().get("inputs") != inputs_digest()
