"""quantize-hexagon: DSP partitions become int8 per the TFLite quantization spec, calibrated on the user's data.

A no-op when no partition is on the DSP. Otherwise, for every DSP partition:
1. calibration inputs (with `ctx.options["calib_holdout"]`, the last N samples of a data set are left out
   and put in `ctx.report["held_out_inputs"]` for `stretchc compile --min-sqnr` to measure on): the whole float model (the IR without its sync nodes) runs on every calibration
   sample (`--calib`, see stretchc/hexagon/calibration.py) and the partition's boundary inputs are captured;
2. the partition's float nodes are emitted as a TFLite model and quantized by TFLite's own calibrator
   (`tensorflow.lite.python.optimize.calibrator.Calibrator`): int8 activations (per-tensor), int8 weights,
   int32 bias; CONV_2D / DEPTHWISE_CONV_2D weights per-channel unless a channel-scale spread above 1024x
   would be distorted by the delegate (then the partition is quantized per-tensor); FULLY_CONNECTED weights
   always per-tensor (the delegate reads scale[0] only); float boundary I/O, so the QUANTIZE / DEQUANTIZE
   ops are inside the partition and the runtime never converts;
3. the quantized model is imported back and spliced in place of the float nodes; the boundary values
   (and so sync points and the buffer plan) stay float;
4. every int8 op is re-checked against the delegate's rules (stretchc/hexagon/eligibility.py), op versions
   included.
Per-partition facts (samples, per-channel or per-tensor, op count) go to ctx.report["quantization"].
`dtype=uint8` (legacy asymmetric, `--hexagon-dtype uint8`): per-tensor weights, then every int8 tensor
shifted by 128 to uint8 (stretchc/hexagon/uint8.py); numerically identical to the per-tensor int8 model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stretchc.errors import StretchError
from stretchc.hexagon.uint8 import int8_to_uint8
from stretchc.ir import Module, Node, Partition, Value
from stretchc.litert import load_interpreter
from stretchc.passmanager import Pass, PassContext, register_pass
from stretchc.tflite_io import emit_model, import_model
from stretchc.whole_model import to_module_layout, without_sync

MAX_SCALE_SPREAD = 1024.0  # kHexagonMinRelativeScale = 1/1024
_IO_OPS = ("QUANTIZE", "DEQUANTIZE")


def model_inputs(module: Module) -> list[tuple[str, tuple[int, ...], str]]:
    return [(i.name, tuple(i.shape), i.dtype) for i in module.inputs]


def capture_boundaries(module: Module, names: list[str], feeds: list[dict[str, np.ndarray]], console: Any) -> dict[str, list[np.ndarray]]:
    """Run the float model (sync nodes removed) on `feeds` and return every named value per sample."""
    g, resolve = without_sync(module.graph)
    values = g.value_map()
    input_names = {v.name for v in g.inputs}
    wanted = sorted({resolve(n) for n in names} - input_names)
    tfl_nodes = [n for n in g.nodes if n.op.startswith("tfl.")]
    buf = emit_model(tfl_nodes, list(g.inputs), [values[n] for n in wanted], description="stretchc calibration capture")
    it = load_interpreter(model_content=buf)
    in_idx = {d["name"]: d["index"] for d in it.get_input_details()}
    out_idx = {d["name"]: d["index"] for d in it.get_output_details()}
    result: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for k, feed in enumerate(feeds):
        bundle_feed = to_module_layout(module, feed)
        for name, arr in bundle_feed.items():
            it.set_tensor(in_idx[name], arr)
        it.invoke()
        got = {n: it.get_tensor(out_idx[n]).copy() for n in wanted}
        for n in names:
            r = resolve(n)
            result[n].append(bundle_feed[r] if r in input_names else got[r])
        console.progress("calibrating DSP partitions", k + 1, len(feeds))
    return result


def _weight_spreads(buf: bytes) -> list[tuple[str, float]]:
    """(op, max/min channel scale) of every per-channel conv weight in a quantized model."""
    g = import_model(buf)
    out = []
    for n in g.nodes:
        if n.kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and n.inputs[1] is not None and n.inputs[1].quant is not None:
            scales = np.array(n.inputs[1].quant.scale, dtype=np.float64)
            if scales.size > 1:
                nz = scales[scales > 0]
                out.append((n.loc or n.name, float(nz.max() / nz.min()) if nz.size else 1.0))
    return out


def quantize_partition(float_buf: bytes, samples: list[list[np.ndarray]], *, per_channel: bool) -> bytes:
    """TFLite's calibrator on a float partition: int8 activations, int32 bias, float I/O, per-tensor FC weights."""
    import tensorflow as tf
    from tensorflow.lite.python.optimize import calibrator

    def gen():  # type: ignore[no-untyped-def]
        for s in samples:
            yield s

    q = calibrator.Calibrator(float_buf)
    return bytes(
        q.calibrate_and_quantize(
            gen,
            tf.float32,
            tf.float32,
            False,
            activations_type=tf.int8,
            bias_type=tf.int32,
            disable_per_channel=not per_channel,
            disable_per_channel_quantization_for_dense_layers=True,
        )
    )


def _topo_sort(nodes: list[Node], graph_inputs: list[Value]) -> list[Node]:
    """A topological order that keeps the given order wherever it is already valid."""
    producer = {id(v): n for n in nodes for v in n.outputs}
    done: set[int] = set()
    order: list[Node] = []

    def visit(n: Node) -> None:
        stack = [(n, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in done:
                continue
            if expanded:
                done.add(id(node))
                order.append(node)
                continue
            stack.append((node, True))
            for v in reversed(node.inputs):
                if v is not None and id(v) in producer and id(producer[id(v)]) not in done:
                    stack.append((producer[id(v)], False))

    for n in nodes:
        visit(n)
    return order


def splice(module: Module, p: Partition, qbuf: bytes) -> list[Node]:
    """Replace partition `p`'s float nodes by the quantized model's nodes; boundary values are kept."""
    g = module.graph
    values = g.value_map()
    qg = import_model(qbuf)
    if len(qg.inputs) != len(p.inputs) or len(qg.outputs) != len(p.outputs):
        raise StretchError("internal", f"partition {p.name}: the quantized model's inputs/outputs do not match the partition's")
    old = [n for n in g.nodes if n.partition == p.name]
    region_of = {v.name: n.region for n in old for v in n.outputs}
    loc_of = {v.name: n.loc for n in old for v in n.outputs}
    first = g.nodes.index(old[0])
    for n in old:
        n.detach()
    old_ids = {id(n) for n in old}
    g.nodes = [n for n in g.nodes if id(n) not in old_ids]
    boundary_in = {id(q): values[name] for q, name in zip(qg.inputs, p.inputs)}
    boundary_out = {id(q): values[name] for q, name in zip(qg.outputs, p.outputs)}
    prefix = "q." + re.sub(r"[^\w.\-]", "_", p.name) + "."
    for v in qg.values():
        if id(v) not in boundary_in and id(v) not in boundary_out:
            v.name = prefix + v.name
    new: list[Node] = []
    for n in qg.nodes:
        for i, v in enumerate(list(n.inputs)):
            if v is not None and id(v) in boundary_in:
                n.set_input(i, boundary_in[id(v)])
            elif v is not None and id(v) in boundary_out:
                n.set_input(i, boundary_out[id(v)])
        for k, v in enumerate(list(n.outputs)):
            if id(v) in boundary_out:
                target = boundary_out[id(v)]
                v.producer = None
                n.outputs[k] = target
                target.producer = n
        tensor = n.loc or ""
        n.region = region_of.get(tensor, p.regions[0])
        # The quantizer names a tensor's int8 twin `<tensor>_int8`: it comes from the same ONNX tensor.
        n.loc = loc_of[tensor] if tensor in loc_of else loc_of.get(re.sub(r"_u?int8$", "", tensor))
        n.processor = "dsp"
        n.partition = p.name
        new.append(n)
    g.nodes[first:first] = new
    g.nodes = _topo_sort(g.nodes, g.inputs)
    return new


@register_pass
@dataclass(frozen=True)
class QuantizeHexagon(Pass):
    """Calibrates and quantizes every DSP partition to int8 (TFLite's calibrator), keeping float boundaries."""

    name = "quantize-hexagon"
    summary = "DSP partitions become int8 (TFLite quantization spec), calibrated on --calib data"
    dtype: str = field(default="int8", metadata={"choices": ("int8", "uint8")})

    def run(self, module: Module, ctx: PassContext) -> bool:
        dsp = [p for p in module.partitions if p.processor == "dsp"]
        if not dsp:
            return False
        if any(n.op.startswith("tfl.") and n.partition in {p.name for p in dsp} and n.outputs and n.outputs[0].dtype in ("int8", "uint8") for n in module.graph.nodes):
            return False  # already quantized
        from stretchc.hexagon.calibration import load_calibration
        from stretchc.hexagon.eligibility import MAX_PARTITIONS, MIN_NODES, check_node, describe

        if len(dsp) > MAX_PARTITIONS:  # placements made after the assign-delegates hook (e.g. by the cost model)
            raise StretchError("ineligible-op", f"{len(dsp)} DSP partitions; the Hexagon delegate runs at most {MAX_PARTITIONS} (rule max-partitions)")
        for p in dsp:
            count = sum(1 for n in module.graph.nodes if n.partition == p.name and n.op.startswith("tfl."))
            if count < MIN_NODES:
                raise StretchError("ineligible-op", f"DSP partition {p.name} has {count} op(s); the Hexagon delegate needs at least {MIN_NODES} (rule min-nodes)", branch=p.name)

        console = ctx.console
        calib = ctx.options.get("calib")
        cal = load_calibration(
            str(calib) if calib is not None else None,
            model_inputs(module),
            preprocess=ctx.options.get("preprocess", ctx.options.get("preprocessing")),
        )
        if cal.random:
            console.warn("random-calibration", "--calib random: DSP partitions are calibrated on uniform noise; accuracy will suffer")
        samples = cal.samples
        held_out = 0
        if not cal.random and "calib_holdout" in ctx.options:
            # the last N samples are kept out of calibration for the --min-sqnr check before install
            from stretchc.hexagon.calibration import holdout_count, split_holdout

            held_out = holdout_count(len(samples), ctx.options["calib_holdout"], source=cal.source)
            samples, ctx.report["held_out_inputs"] = split_holdout(samples, held_out)
        limit = int(ctx.options.get("calib_samples") or 0)
        samples = samples[:limit] if limit > 0 else samples
        names = sorted({i for p in dsp for i in p.inputs})
        captured = capture_boundaries(module, names, samples, console)
        report: dict[str, Any] = {"samples": len(samples), "held_out": held_out, "source": cal.source, "partitions": {}}
        mode = str(ctx.options.get("on_ineligible") or "error")
        for p in dsp:
            values = module.graph.value_map()
            nodes = [n for n in module.graph.nodes if n.partition == p.name]
            float_buf = emit_model(nodes, [values[i] for i in p.inputs], [values[o] for o in p.outputs], description=f"stretchc partition {p.name}")
            per_part = [[captured[i][k] for i in p.inputs] for k in range(len(samples))]
            with console.step(f"quantizing DSP partition {p.name} (TFLite calibrator, {len(samples)} samples)"):
                qbuf = quantize_partition(float_buf, per_part, per_channel=self.dtype == "int8")
                spreads = [s for s in _weight_spreads(qbuf) if s[1] > MAX_SCALE_SPREAD]
                per_channel = self.dtype == "int8" and not spreads
                if spreads:
                    console.note(
                        "per-tensor",
                        f"partition {p.name}: {spreads[0][0]} has a channel-scale spread of {spreads[0][1]:.0f}x > {MAX_SCALE_SPREAD:.0f}x; weights quantized per-tensor",
                    )
                    qbuf = quantize_partition(float_buf, per_part, per_channel=False)
                if self.dtype == "uint8":  # legacy asymmetric uint8: the per-tensor int8 model shifted by 128
                    qbuf = int8_to_uint8(qbuf, partition=p.name)
            bad = []
            for n in import_model(qbuf).nodes:
                if n.kind in _IO_OPS and (n.inputs[0].dtype == "float32" or n.outputs[0].dtype == "float32"):  # type: ignore[union-attr]
                    continue  # boundary conversions: the delegate leaves float<->int8 ops on the CPU
                v = check_node(n, quantized=True)
                if v is not None:
                    bad.append((n, v))
            if bad:
                n, v = bad[0]
                if mode == "error":
                    raise StretchError("ineligible-op", "after quantization: " + describe(n, p.name, v), branch=p.name, node=n.loc)
                for n, v in bad:
                    console.warn("ineligible-op", "after quantization: " + describe(n, p.name, v) + f"; partition {p.name} stays float on the CPU", branch=p.name)
                p.processor = "cpu"
                for n in nodes:
                    n.processor = "cpu"
                report["partitions"][p.name] = {"moved_to_cpu": True}
                continue
            new = splice(module, p, qbuf)
            report["partitions"][p.name] = {
                "ops": sum(1 for n in new if n.kind not in _IO_OPS),
                "weights": "per-channel" if per_channel else "per-tensor",
                "dtype": self.dtype,
                "bytes": len(qbuf),
            }
        ctx.report["quantization"] = report
        return True
