"""The work a placement is priced on: per region its op profiles, and the values crossing between regions.

`workload_of(module)` reads it off an IR module whose regions find-branches has set. It is all the cost model
needs of a model, so a network's workload can be stored (JSON, `to_json`/`from_json`) and priced later by
exactly the code that prices a compile: the calibration points of NN-Stretch configurations are such stored
workloads (`stretchc/costmodel/networks/workloads.json`, written by `bench/fit_cost_model.py --refresh-workloads`).

Activations (float32, int8 or uint8 values: what a precision changes) are counted in elements, so they can be
priced at any dtype; other values crossing a boundary (int32 shapes, indices, booleans) in bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from stretchc.costmodel.profile import OpProfile, profile_node
from stretchc.ir import DTYPE_SIZES, Module, Value

ACTIVATION_DTYPES = ("float32", "int8", "uint8")


@dataclass(frozen=True)
class RegionWork:
    name: str
    kind: str  # stem | branch | join | head | main
    stage: int | None
    ops: tuple[OpProfile, ...]
    inputs: int = 0  # elements of the model inputs it reads


@dataclass(frozen=True)
class Crossing:
    """An activation produced in one region and read in others or returned as a model output."""

    producer: str
    elements: int
    consumers: tuple[str, ...]  # the other regions that read it, sorted
    output: bool  # a model output


@dataclass(frozen=True)
class Workload:
    regions: tuple[RegionWork, ...]  # topological order
    values: tuple[Crossing, ...]  # in graph order
    other: tuple[tuple[str, str, int], ...] = ()  # (producer, consumer, bytes) of the non-activations crossing, sorted

    def edges(self) -> list[tuple[str, str, int, int]]:
        """(producer, consumer, activation elements, other bytes) of every pair of regions a value crosses
        between, sorted."""
        out: dict[tuple[str, str], list[int]] = {}
        for v in self.values:
            for d in v.consumers:
                out.setdefault((v.producer, d), [0, 0])[0] += v.elements
        for s, d, nbytes in self.other:
            out.setdefault((s, d), [0, 0])[1] += nbytes
        return [(s, d, e, b) for (s, d), (e, b) in sorted(out.items())]

    def to_json(self) -> dict[str, object]:
        return {
            "regions": [
                {"name": r.name, "kind": r.kind, "stage": r.stage, "inputs": r.inputs, "ops": [_op_json(o) for o in r.ops]}
                for r in self.regions
            ],
            "values": [[v.producer, v.elements, list(v.consumers), v.output] for v in self.values],
            "other": [list(e) for e in self.other],
        }

    @classmethod
    def from_json(cls, d: dict) -> "Workload":  # type: ignore[type-arg]
        regions = tuple(
            RegionWork(r["name"], r["kind"], r["stage"], tuple(_op_of(o) for o in r["ops"]), int(r["inputs"]))
            for r in d["regions"]
        )
        values = tuple(Crossing(str(p), int(n), tuple(str(c) for c in cs), bool(o)) for p, n, cs, o in d["values"])
        return cls(regions, values, tuple((str(a), str(b), int(n)) for a, b, n in d["other"]))

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))


def _op_json(o: OpProfile) -> list[object]:
    """[cls, flops, elems, launches], then the shape class and the weights where there are any (the stored form of
    workloads written before either existed is unchanged)."""
    tail: list[object] = [o.shape_class, o.weights] if o.weights else [o.shape_class] if o.shape_class else []
    return [o.cls, o.flops, o.elems, o.launches, *tail]


def _op_of(o: list) -> OpProfile:  # type: ignore[type-arg]
    return OpProfile(str(o[0]), float(o[1]), float(o[2]), int(o[3]), str(o[4]) if len(o) > 4 else "", float(o[5]) if len(o) > 5 else 0.0)


def single_region(ops: list[OpProfile]) -> Workload:
    """A model run as one partition (a published single-processor latency)."""
    return Workload((RegionWork("main", "main", None, tuple(ops)),), ())


def _elements(v: Value) -> int:
    return int(np.prod(v.shape, dtype=np.int64))


def workload_of(module: Module) -> Workload:
    """Regions (in the module's order) with their nodes' profiles and the model-input elements each reads; every
    activation read outside its region or returned (its readers counted once per region); the bytes of every
    other value crossing regions (once per consumer region)."""
    names = [r.name for r in module.regions]
    ops: dict[str, list[OpProfile]] = {n: [] for n in names}
    inputs: dict[str, int] = {n: 0 for n in names}
    readers: dict[int, set[str]] = {}
    other: dict[tuple[str, str], int] = {}
    graph_inputs = {id(v) for v in module.graph.inputs}
    seen: set[tuple[int, str]] = set()
    for node in module.graph.nodes:
        if node.region not in ops:
            continue
        prof = profile_node(node)
        if prof is not None:
            ops[node.region].append(prof)
        for v in node.inputs:
            if v is None or v.is_const or (id(v), node.region) in seen:
                continue
            seen.add((id(v), node.region))
            if id(v) in graph_inputs and v.dtype in ACTIVATION_DTYPES:
                inputs[node.region] += _elements(v)
            src = v.producer.region if v.producer is not None else None
            if src is None or src == node.region or src not in ops:
                continue
            if v.dtype in ACTIVATION_DTYPES:
                readers.setdefault(id(v), set()).add(node.region)  # type: ignore[arg-type]
            else:
                key = (src, node.region)
                other[key] = other.get(key, 0) + _elements(v) * DTYPE_SIZES[v.dtype]  # type: ignore[index]
    graph_outputs = {id(v) for v in module.graph.outputs}
    values = []
    for node in module.graph.nodes:
        if node.region not in ops:
            continue
        for v in node.outputs:
            out = id(v) in graph_outputs and v.dtype in ACTIVATION_DTYPES
            if id(v) in readers or out:
                values.append(Crossing(node.region, _elements(v), tuple(sorted(readers.get(id(v), ()))), out))  # type: ignore[arg-type]
    regions = tuple(RegionWork(r.name, r.kind, r.stage, tuple(ops[r.name]), inputs[r.name]) for r in module.regions)
    return Workload(regions, tuple(values), tuple((a, b, n) for (a, b), n in sorted(other.items())))
