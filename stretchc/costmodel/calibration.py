"""Calibration sets: the measured latencies the cost model is fitted to, and how each one is predicted.

`stretchc/targets/data/costmodel/calibration.yaml` (schemas/calibration.schema.json; read and validated with the
target database, `stretchc.targets.read_calibration_sets`) holds one set of points per SoC; a target names its
set (`calibration:`), so phones with the same SoC share one set and a number measured once counts once. A point
is either a published reference network (`model`, `stretchc.costmodel.refnets`) run whole on one processor, or
an NN-Stretch configuration (`network`) priced with its own placement through the placement model
(`stretchc.costmodel.placement`): its workload is stored in `networks/workloads.json`, taken from the IR the
compiler places (`stretchc.driver.compute_network_workload`; `bench/fit_cost_model.py --refresh-workloads`
rebuilds it from the stored configurations in `networks/*.yaml`).

`predict(point, params)` is the prediction the fit minimises the error of and the report shows: for a network,
the same `CostModel.region_ms`, conversions and `placement.simulate` that price a compile of it with
`--place-from-model --precision int8` (model inputs and outputs float32, so one conversion at each).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from stretchc.backends import backends
from stretchc.costmodel import CostModel, CostParams, Protocol
from stretchc.costmodel.grouping import per_region
from stretchc.costmodel.placement import Choice, price, simulate, workload_graph
from stretchc.costmodel.refnets import reference_net
from stretchc.costmodel.workload import Workload, single_region
from stretchc.errors import StretchError
from stretchc.precision import choices
from stretchc.targets import CALIBRATION_PATH, Target, known_targets, load_target, read_calibration_sets

NETWORKS_DIR = Path(__file__).with_name("networks")
WORKLOADS_PATH = NETWORKS_DIR / "workloads.json"
NETWORK_IMAGE_SIZE = 224  # the prototype timed every configuration at 224 px
NETWORK_SEED = 0
NETWORK_IO_DTYPE = "float32"  # a network point is priced as `stretchc compile` bundles it by default


@dataclass(frozen=True)
class Point:
    set: str
    label: str  # the reference model or the network
    network: bool
    dtype: str
    processor: str | None  # None for a network (its placement decides)
    threads: int | None
    protocol_name: str
    protocol: Protocol
    latency_ms: float
    source: str

    @property
    def key(self) -> str:
        """Unique within its set."""
        where = "placement" if self.network else f"{self.processor}{'' if self.threads is None else f'x{self.threads}'}"
        return f"{self.set}:{self.label}:{self.dtype}:{where}:{self.protocol_name}"


@dataclass(frozen=True)
class Calibration:
    protocols: Mapping[str, Protocol]
    sets: Mapping[str, tuple[Point, ...]]
    descriptions: Mapping[str, str]

    def points(self, sets: list[str] | None = None) -> list[Point]:
        return [p for s in sorted(self.sets) if sets is None or s in sets for p in self.sets[s]]


@lru_cache(maxsize=2)
def load_calibration(path: str = str(CALIBRATION_PATH)) -> Calibration:
    """The calibration sets, validated; every point's protocol and reference model must exist."""
    p = Path(path)
    raw = read_calibration_sets(path)
    protocols = {name: Protocol.from_raw(d) for name, d in raw["protocols"].items()}
    sets: dict[str, tuple[Point, ...]] = {}
    for name, s in raw["sets"].items():
        pts = []
        for i, d in enumerate(s["points"]):
            where = f"sets.{name}.points.{i}"
            if d["protocol"] not in protocols:
                raise StretchError("bad-target-file", f"{where}: unknown protocol {d['protocol']!r}", file=str(p))
            label = d.get("network") or d["model"]
            if "model" in d:
                try:
                    reference_net(label)
                except KeyError as exc:
                    raise StretchError("bad-target-file", f"{where}: {exc.args[0]}", file=str(p)) from None
            pts.append(Point(
                name, label, "network" in d, d["dtype"], d.get("processor"), d.get("threads"), d["protocol"],
                protocols[d["protocol"]], float(d["latency_ms"]), d["source"],
            ))
        keys = [q.key for q in pts]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise StretchError("bad-target-file", f"sets.{name}: duplicated calibration point {dup[0]}", file=str(p))
        sets[name] = tuple(pts)
    return Calibration(protocols, sets, {name: s["description"] for name, s in raw["sets"].items()})


def set_targets(calibration_set: str) -> list[Target]:
    """The known targets that carry `calibration_set`, sorted by name."""
    return [t for t in (load_target(n) for n in known_targets()) if t.raw.get("calibration") == calibration_set]


def hardware(calibration_set: str) -> dict[str, Any]:
    """The hardware description of a set's SoC: the backends' sections and the memory of the targets carrying it
    (the first carrier's, in name order: they share the SoC)."""
    carriers = set_targets(calibration_set)
    if not carriers:
        raise StretchError("bad-target-file", f"no target carries the calibration set {calibration_set!r}", file=str(CALIBRATION_PATH))
    return {k: carriers[0].raw.get(k) for k in (*(b.name for b in backends()), "memory")}


# ----------------------------------------------------------------------------------------------------------
# Stored NN-Stretch workloads


def config_digest(name: str) -> str:
    return hashlib.sha256((NETWORKS_DIR / f"{name}.yaml").read_bytes()).hexdigest()


@lru_cache(maxsize=2)
def load_workloads(path: str = str(WORKLOADS_PATH)) -> dict[str, dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        return {}
    return json.loads(p.read_text())


def network_workload(name: str) -> tuple[Workload, dict[str, str]]:
    """The stored workload of an NN-Stretch configuration and its own placement."""
    stored = load_workloads().get(name)
    if stored is None:
        raise StretchError("bad-target-file", f"no stored workload for network {name!r} (run bench/fit_cost_model.py --refresh-workloads)", file=str(WORKLOADS_PATH))
    return Workload.from_json(stored["workload"]), dict(stored["placement"])


# ----------------------------------------------------------------------------------------------------------
# Predicting a point


def point_cost_model(point: Point, params: CostParams, hw: Mapping[str, Any] | None = None) -> CostModel:
    """The cost model a point is priced with: its set's hardware and parameters, its own protocol."""
    return CostModel(dict(hw or hardware(point.set)), params=params, protocol=point.protocol, calibration_set=point.set)


def point_workload(point: Point) -> tuple[Workload, dict[str, str]]:
    if point.network:
        return network_workload(point.label)
    assert point.processor is not None
    return single_region(reference_net(point.label)), {"main": point.processor}


def network_choices(point: Point, placement: Mapping[str, str]) -> dict[str, Choice]:
    """Every region of a network point at the precision its dtype's policy gives its processor (`int8`: every
    region int8, as the prototype's one full-int8 model; `float32`: float, the DSP int8): a `Choice` per region,
    as `--precision` gives a compile."""
    policy = "int8" if point.dtype == "int8" else "float"
    return {r: Choice(p, choices(policy, p, calibrated=True)[0]) for r, p in placement.items()}


def predict(point: Point, params: CostParams, hw: Mapping[str, Any] | None = None) -> float:
    """The predicted latency of `point` under `params` (ms). A network is priced as a compile prices it with its
    own placement and `--precision` of its dtype, model inputs and outputs float32 (no `--io-dtype`), each region
    its own partition as the prototype's runtime cut it (`stretchc.costmodel.grouping.per_region`)."""
    cm = point_cost_model(point, params, hw)
    work, placement = point_workload(point)
    if not point.network:
        return cm.region_ms(work.regions[0].ops, placement["main"], point.dtype, threads=point.threads)
    rg = workload_graph(work, NETWORK_IO_DTYPE)
    chosen = network_choices(point, placement)
    price(rg, cm, {r: [c] for r, c in chosen.items()})
    return simulate(rg, cm, chosen, per_region(rg, chosen))[0]  # the prototype ran every region as its own partition
