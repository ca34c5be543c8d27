"""The accuracy guard of `--precision auto`: measure every model output and sync point against the float model,
and demote partitions to float until each keeps its bound.

`Evaluator` runs the model partition by partition, each at the precision a configuration gives it, on held-out
inputs, exactly as the bundle will: a quantized partition reads its inputs quantized with the calibration's
scale (a value's own one where it has one) and its outputs are dequantized with it (the planned conversions), a float32 partition runs its float ops,
an fp16 GPU partition runs them with every weight, input and intermediate rounded to fp16 (an emulation: the
phone's GPU also accumulates in fp16, which may lose a little more). The reference is every partition float32.
The bounds are `verify`'s (stretchc/precision.py, `sync_point_bound`): every output keeps the bound (each part of an
output of parts by itself: stretchc/frontend/parts.py), every sync
point (a value one partition hands another) the smaller of the bound and 20 dB, so a bundle the guard accepts
is one `--verify` accepts. `demote` lowers partitions to float32, most harmful first, until every check keeps its
bound: deterministic. Harm is measured per partition in one pass (`Evaluator.alone`): the partition alone at its
precision, reading the float reference's values, against the reference's outputs. A partition that breaks a bound
by itself is demoted with every other such partition in one step (no other demotion can mend its own error); the
rest follow one at a time, least margin first (ties in partition order). One measurement per step, plus two: a
plan of many partitions is not measured once per partition to rank them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from stretchc.errors import StretchError
from stretchc.ir import Module, Node, Value, boundary
from stretchc.native import NativeError, NativeProcess
from stretchc.precision import QUANTIZED, dequantize_array, quantize_array, sync_point_bound
from stretchc.quantize.rewrite import Forms, Quantized
from stretchc.tflite_io import emit_model

MIN_SQNR_RANDOM_SAMPLES = 20  # inputs the guard (and --min-sqnr) measure on without a calibration data set
MIN_SQNR_RANDOM_SEED = 1_000_003


def sqnr_db(reference: list[np.ndarray], got: list[np.ndarray]) -> float:
    """10 log10(sum ref^2 / sum (got - ref)^2) over all samples (inf when equal)."""
    signal = sum(float(np.sum(np.square(r.astype(np.float64)))) for r in reference)
    noise = sum(float(np.sum(np.square(g.astype(np.float64) - r))) for r, g in zip(reference, got))
    if noise <= 0.0:
        return float("inf")
    return float(10.0 * np.log10(max(signal, 1e-300) / noise))


def fp16_emulation(nodes: list[Node], inputs: list[Value], outputs: list[Value]) -> bytes:
    """A float32 model of `nodes` whose weights, inputs and op outputs are rounded to fp16 (CAST there and back)."""
    copies: dict[int, Value] = {}
    new_nodes: list[Node] = []

    def rounded(v: Value, name: str) -> Value:
        half = Value(f"{name}.f16", v.shape, "float16")
        back = Value(name, v.shape, v.dtype)
        new_nodes.append(Node("tfl.CAST", [v], [half], {"version": 1}))
        new_nodes.append(Node("tfl.CAST", [half], [back], {"version": 1}))
        return back

    def copy(v: Value | None) -> Value | None:
        if v is None:
            return None
        if id(v) not in copies:
            data = v.data
            if data is not None and v.dtype == "float32":
                data = data.astype(np.float16).astype(np.float32)
            copies[id(v)] = Value(v.name, v.shape, v.dtype, quant=v.quant, data=data)
        return copies[id(v)]

    new_inputs = [Value(v.name, v.shape, v.dtype) for v in inputs]
    for v, raw in zip(inputs, new_inputs):
        copies[id(v)] = rounded(raw, f"{v.name}.r") if v.dtype == "float32" else raw
    for n in nodes:
        outs = []
        for v in n.outputs:
            raw = Value(f"{v.name}.f32", v.shape, v.dtype)
            outs.append(raw)
        new_nodes.append(Node(n.op, [copy(v) for v in n.inputs], outs, dict(n.attrs)))
        for v, raw in zip(n.outputs, outs):
            copies[id(v)] = rounded(raw, v.name) if v.dtype == "float32" else raw
    return emit_model(new_nodes, new_inputs, [copies[id(v)] for v in outputs], description="stretchc fp16 emulation")


@dataclass
class _Part:
    name: str
    inputs: list[str]
    outputs: list[str]
    models: dict[str, Callable[[], bytes]]


class PartitionFailed(Exception):
    """TFLite's interpreter cannot run (or crashed running) a partition at a precision."""

    def __init__(self, partition: str, precision: str, why: str) -> None:
        super().__init__(f"partition {partition} ({precision}): {why}")
        self.partition, self.precision, self.why = partition, precision, why


class Evaluator:
    """Runs the module at any per-partition precision on fixed inputs (see the module docstring), each partition's
    interpreter in `native` (stretchc/native.py). A partition that TFLite cannot run at a precision (its
    interpreter raises or crashes) is recorded in `failed`; a configuration using it measures -inf dB on every
    output, so `demote` removes it first. With `groups` (ranges of feed indices) every check holds on each
    group by itself. Raises StretchError("native-crash") when the float32 reference fails."""

    def __init__(
        self, module: Module, quantized: dict[str, Quantized], forms: Forms, feeds: list[list[np.ndarray]], native: NativeProcess,
        groups: list[range] | None = None,
    ) -> None:
        values = module.graph.value_map()
        self.input_names = [v.name for v in module.graph.inputs]
        self.output_names = [v.name for v in module.graph.outputs]
        # An output of parts (stretchc/frontend/parts.py) is measured as a whole and part by part, each part under
        # the name `verify` gives it (NAME[start:stop]@axis, ONNX layout).
        self.output_parts: dict[str, list[tuple[str, tuple[slice, ...]]]] = {}
        for info in module.outputs:
            parts = info.part_cuts(bundle=True)
            shape = values[info.value].shape
            axis = len(parts[0][1]) - 1 if parts else 0
            if parts and len(shape) > axis and shape[axis] == sum(info.parts):  # the lowered output has the parts' layout
                self.output_parts[info.value] = parts
        self.feeds = feeds
        # Feed index ranges each check holds on by itself (its SQNR over each range; the worst counts): the
        # guard's own inputs, and the ones `verify` runs by default, so that a bundle the guard accepts passes it.
        self.groups = groups or [range(len(feeds))]
        self.forms = forms
        self.native = native
        self.failed: dict[tuple[str, str], str] = {}
        self.parts: list[_Part] = []
        for p in module.partitions:
            ins, outs = boundary(module, p.name)
            nodes = [n for n in module.graph.nodes if n.partition == p.name]
            models: dict[str, Callable[[], bytes]] = {
                "float32": lambda nodes=nodes, ins=ins, outs=outs: emit_model(nodes, [values[i] for i in ins], [values[o] for o in outs]),
                "float16": lambda nodes=nodes, ins=ins, outs=outs: fp16_emulation(nodes, [values[i] for i in ins], [values[o] for o in outs]),
            }
            q = quantized.get(p.name)
            if q is not None:
                models[q.dtype] = lambda q=q, ins=ins, outs=outs: emit_model(
                    q.nodes, [forms.boundary(i, q.dtype) for i in ins], [forms.boundary(o, q.dtype) for o in outs]
                )
            self.parts.append(_Part(p.name, ins, outs, models))
        produced = [o for part in self.parts for o in part.outputs]
        consumed = {i for part in self.parts for i in part.inputs}
        # The sync points: values one partition hands another (model outputs are checked as outputs).
        self.sync_names = [v for v in produced if v in consumed and v not in self.output_names]
        self._keys = native.namespace()
        try:
            self.reference = self.run({p.name: "float32" for p in self.parts})
        except PartitionFailed as exc:
            raise StretchError("native-crash", f"measuring accuracy, {exc}") from None

    def close(self) -> None:
        """Release the partitions' interpreters."""
        self.native.drop(self._keys)

    def run(self, config: dict[str, str]) -> list[dict[str, np.ndarray]]:
        """The model outputs and sync points (bundle layout) on every feed with partition -> precision `config`;
        PartitionFailed when a partition cannot run at its precision. A sync point a quantized partition reads is
        also given as that partition reads it, quantized to its form and back, under `view(name, partition)`
        (the bundle may hold it in that form)."""
        envs = [dict(zip(self.input_names, feed)) for feed in self.feeds]
        views: list[dict[str, np.ndarray]] = [{} for _ in envs]
        for part in self.parts:
            self._step(part, config[part.name], envs, views)
        return [{**{name: env[name] for name in [*self.output_names, *self.sync_names]}, **seen} for env, seen in zip(envs, views)]

    def _step(self, part: _Part, precision: str, envs: list[dict[str, np.ndarray]], views: list[dict[str, np.ndarray]]) -> None:
        """Run `part` at `precision` on the values in `envs` (one per feed), adding its outputs to them and its
        quantized readings of sync points to `views`."""
        syncs = set(self.sync_names)
        # A quantized partition reads and writes the calibration's int8 forms (named apart from the float values),
        # a value with an own scale in its own-scale form (stretchc/quantize/rewrite.py).
        form = (lambda name: self.forms.boundary(name, precision)) if precision in QUANTIZED else None
        ins = {name: form(name) if form else None for name in part.inputs}
        outs = {name: form(name) if form else None for name in part.outputs}
        feeds = [{(f.name if f else name): _quantized(env[name], f, precision) for name, f in ins.items()} for env in envs]
        for seen, feed in zip(views, feeds):
            for name, f in ins.items():
                if f is not None and name in syncs:
                    seen[view(name, part.name)] = _dequantized(feed[f.name], f)
        got = self._invoke(part, precision, feeds, [f.name if f else name for name, f in outs.items()])
        for env, result in zip(envs, got):
            for name, f in outs.items():
                env[name] = _dequantized(result[f.name], f) if f else result[name]

    def alone(self, config: dict[str, str], names: list[str], bound: float) -> dict[str, float]:
        """Per partition of `names`: the margin (dB) by which its own outputs and its quantized readings keep their
        bounds (`bound` for a model output, `sync_point_bound(bound)` for a sync point) when it alone runs at its
        precision in `config`, reading the float reference's values; -inf when it cannot run at that precision."""
        sync_bound = sync_point_bound(bound)
        out: dict[str, float] = {}
        for part in self.parts:
            if part.name not in names:
                continue
            envs = [dict(zip(self.input_names, feed)) | ref for feed, ref in zip(self.feeds, self.reference)]
            views: list[dict[str, np.ndarray]] = [{} for _ in envs]
            try:
                self._step(part, config[part.name], envs, views)
            except PartitionFailed:
                out[part.name] = float("-inf")
                continue
            margins = [min(self._parts_sqnr(envs, o).values()) - bound if o in self.output_names else self._sqnr(envs, o, o) - sync_bound for o in part.outputs]
            margins += [self._sqnr(views, view(i, part.name), i) - sync_bound for i in part.inputs if view(i, part.name) in views[0]]
            out[part.name] = min(margins, default=float("inf"))
        return out

    def _sqnr(self, got: list[dict[str, np.ndarray]], key: str, name: str, cut: tuple[object, ...] = (Ellipsis,)) -> float:
        """SQNR (dB) of `got[...][key][cut]` against the reference value `name`'s: the worst over the feed groups."""
        return min(sqnr_db([self.reference[k][name][cut] for k in group], [got[k][key][cut] for k in group]) for group in self.groups)

    def _parts_sqnr(self, got: list[dict[str, np.ndarray]], name: str) -> dict[str, float]:
        """Model output `name`'s SQNR as a whole, and of each of its parts (by their names) when it has parts."""
        return {name: self._sqnr(got, name, name), **{label: self._sqnr(got, name, name, cut) for label, cut in self.output_parts.get(name, [])}}

    def _invoke(self, part: _Part, precision: str, feeds: list[dict[str, np.ndarray]], outputs: list[str]) -> list[dict[str, np.ndarray]]:
        key = (part.name, precision)
        if key in self.failed:
            raise PartitionFailed(part.name, precision, self.failed[key])
        try:
            return self.native.invoke(f"{self._keys}{part.name}@{precision}", part.models[precision], feeds, outputs)
        except NativeError as exc:
            self.failed[key] = f"TFLite's interpreter {'crashed running' if exc.crashed else 'cannot run'} it ({exc})"
            raise PartitionFailed(part.name, precision, self.failed[key]) from None

    def measure(self, config: dict[str, str], bound: float) -> "Measurement":
        """Every output's (and output part's) and sync point's SQNR (dB) with `config` against every partition
        float32 (-inf when a partition of `config` cannot run), held to `bound` (outputs) and `sync_point_bound(bound)`."""
        names = [*self.output_names, *self.sync_names]
        try:
            got = self.run(config)
            sqnr = {k: v for name in self.output_names for k, v in self._parts_sqnr(got, name).items()}
            for name in self.sync_names:  # the worst of the value and every quantized reading of it
                keys = [name, *(k for k in got[0] if k.startswith(view(name, "")))]
                sqnr[name] = min(self._sqnr(got, k, name) for k in keys)
        except PartitionFailed:
            sqnr = {name: float("-inf") for name in names}
        syncs = set(self.sync_names)
        return Measurement(
            {name: v for name, v in sqnr.items() if name not in syncs}, {name: sqnr[name] for name in self.sync_names}, bound, sync_point_bound(bound)
        )


def view(name: str, partition: str) -> str:
    """The key under which `Evaluator.run` gives sync point `name` as quantized partition `partition` reads it."""
    return f"{name}\0{partition}"


@dataclass(frozen=True)
class Measurement:
    """One configuration measured: SQNR (dB) per model output (and part of one, `NAME[start:stop]@axis`) and per sync
    point, and the bounds they keep."""

    outputs: dict[str, float]
    syncs: dict[str, float]
    bound: float
    sync_bound: float

    @property
    def margin(self) -> float:
        """dB by which the check furthest below (or least above) its bound clears it: >= 0 when all keep theirs."""
        return min(self._margins(), default=float("inf"))

    @property
    def kept(self) -> bool:
        return self.margin >= 0

    def worst(self) -> str:
        """The check furthest below its bound, e.g. "output y: 12.3 dB < --min-sqnr 30 dB"."""
        margins = self._margins()
        checks = [
            *(("output", n, v, self.bound, "--min-sqnr ") for n, v in self.outputs.items()),
            *(("sync point", n, v, self.sync_bound, "") for n, v in self.syncs.items()),
        ]
        kind, name, value, bound, label = checks[margins.index(min(margins))]
        return f"{kind} {name}: {value:.1f} dB {'<' if value < bound else '>='} {label}{bound:g} dB"

    def _margins(self) -> list[float]:
        return [*(v - self.bound for v in self.outputs.values()), *(v - self.sync_bound for v in self.syncs.values())]


def _quantized(x: np.ndarray, form: Value | None, precision: str) -> np.ndarray:
    """`x` in `form`'s quantization (unchanged without a form)."""
    if form is None:
        return x
    q = form.quant
    assert q is not None
    return quantize_array(x, q.scale[0], q.zero_point[0], precision)


def _dequantized(y: np.ndarray, form: Value) -> np.ndarray:
    q = form.quant
    assert q is not None
    return dequantize_array(y, q.scale[0], q.zero_point[0])


@dataclass
class Demotion:
    partition: str
    before: str  # the check furthest below its bound before this step (Measurement.worst)
    after: str  # the same after it
    failure: str = ""  # why TFLite could not run the partition at its precision, when that was the reason
    with_: list[str] = field(default_factory=list)  # the partitions demoted in the same step


def demote(evaluator: Evaluator, config: dict[str, str], candidates: list[str], bound: float) -> tuple[dict[str, str], Measurement, list[Demotion]]:
    """Demote `candidates` (partition names, in partition order) to float32 until every output keeps `bound` dB
    and every sync point `sync_point_bound(bound)` (see the module docstring). Returns the final configuration,
    its measurement and the steps taken."""
    config = dict(config)
    current = evaluator.measure(config, bound)
    steps: list[Demotion] = []
    if current.kept or not candidates:
        return config, current, steps
    margin = evaluator.alone(config, candidates, bound)
    order = sorted(candidates, key=lambda p: (margin[p], candidates.index(p)))
    broken = [p for p in order if margin[p] < 0]
    batches = [broken] * bool(broken) + [[p] for p in order if p not in broken]
    for batch in batches:
        before = current.worst()
        failures = {p: evaluator.failed.get((p, config[p]), "") for p in batch}
        config.update(dict.fromkeys(batch, "float32"))
        current = evaluator.measure(config, bound)
        steps += [Demotion(p, before, current.worst(), failures[p], [q for q in batch if q != p]) for p in batch]
        if current.kept:
            break
    return config, current, steps
