"""The accuracy guard of `--precision auto`: measure every model output against the float model, and demote
partitions to float until each keeps the bound.

`Evaluator` runs the model partition by partition, each at the precision a configuration gives it, on held-out
inputs, exactly as the bundle will: a quantized partition reads its inputs quantized with the calibration's
scale and its outputs are dequantized with it (the planned conversions), a float32 partition runs its float ops,
an fp16 GPU partition runs them with every weight, input and intermediate rounded to fp16 (an emulation: the
phone's GPU also accumulates in fp16, which may lose a little more). The reference is every partition float32.
`demote` lowers partitions to float32 one at a time, most harmful first (the one whose demotion alone raises the
worst output SQNR most; ties in partition order), until every output keeps the bound: deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from stretchc.ir import Module, Node, Value
from stretchc.litert import load_interpreter
from stretchc.passes.outline_partitions import boundary
from stretchc.precision import QUANTIZED, dequantize_array, quantize_array
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


class Evaluator:
    """Runs the module at any per-partition precision on fixed inputs (see the module docstring)."""

    def __init__(self, module: Module, quantized: dict[str, Quantized], forms: Forms, feeds: list[list[np.ndarray]]) -> None:
        values = module.graph.value_map()
        self.input_names = [v.name for v in module.graph.inputs]
        self.output_names = [v.name for v in module.graph.outputs]
        self.feeds = feeds
        self.forms = forms
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
                    q.nodes, [forms.get(i, q.dtype) for i in ins], [forms.get(o, q.dtype) for o in outs]
                )
            self.parts.append(_Part(p.name, ins, outs, models))
        self._interpreters: dict[tuple[str, str], object] = {}
        self.reference = self.run({p.name: "float32" for p in self.parts})

    def _interpreter(self, part: _Part, precision: str):  # type: ignore[no-untyped-def]
        key = (part.name, precision)
        if key not in self._interpreters:
            self._interpreters[key] = load_interpreter(model_content=part.models[precision]())
        return self._interpreters[key]

    def run(self, config: dict[str, str]) -> list[dict[str, np.ndarray]]:
        """The model outputs (bundle layout) on every feed with partition -> precision `config`."""
        results = []
        for feed in self.feeds:
            env = dict(zip(self.input_names, feed))
            for part in self.parts:
                precision = config[part.name]
                it = self._interpreter(part, precision)
                index = {d["name"]: d["index"] for d in it.get_input_details()}
                for name in part.inputs:
                    x = env[name]
                    if precision in QUANTIZED:
                        form = self.forms.get(name, precision)
                        q = form.quant
                        assert q is not None
                        it.set_tensor(index[form.name], quantize_array(x, q.scale[0], q.zero_point[0], precision))
                    else:
                        it.set_tensor(index[name], x)
                it.invoke()
                out_index = {d["name"]: d["index"] for d in it.get_output_details()}
                for name in part.outputs:
                    if precision in QUANTIZED:
                        form = self.forms.get(name, precision)
                        q = form.quant
                        assert q is not None
                        env[name] = dequantize_array(it.get_tensor(out_index[form.name]), q.scale[0], q.zero_point[0])
                    else:
                        env[name] = it.get_tensor(out_index[name]).copy()
            results.append({name: env[name] for name in self.output_names})
        return results

    def sqnr(self, config: dict[str, str]) -> dict[str, float]:
        """Per model output, the SQNR (dB) of `config` against every partition float32."""
        got = self.run(config)
        return {name: sqnr_db([r[name] for r in self.reference], [g[name] for g in got]) for name in self.output_names}


@dataclass
class Demotion:
    partition: str
    worst_before: float  # worst output SQNR before this step
    worst_after: float


def demote(evaluator: Evaluator, config: dict[str, str], candidates: list[str], bound: float) -> tuple[dict[str, str], dict[str, float], list[Demotion]]:
    """Demote `candidates` (partition names, in partition order) to float32 until every output keeps `bound` dB
    (see the module docstring). Returns the final configuration, its per-output SQNR and the steps taken."""
    config = dict(config)
    current = evaluator.sqnr(config)
    steps: list[Demotion] = []
    if min(current.values()) >= bound or not candidates:
        return config, current, steps
    gain = {p: min(evaluator.sqnr({**config, p: "float32"}).values()) for p in candidates}
    order = sorted(candidates, key=lambda p: (-gain[p], candidates.index(p)))
    for p in order:
        before = min(current.values())
        config[p] = "float32"
        current = evaluator.sqnr(config)
        steps.append(Demotion(p, before, min(current.values())))
        if min(current.values()) >= bound:
            break
    return config, current, steps
