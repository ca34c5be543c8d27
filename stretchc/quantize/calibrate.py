"""One calibration of the whole float model, quantized by TFLite's own quantizer in the variants partitions need.

`WholeModel(module, samples, native)` emits the module's float graph as one TFLite model (tensors named by IR
value names) and runs TFLite's calibrator on it once (the min/max of every tensor over the calibration samples).
`variant(weights)` then quantizes that calibrated model with TFLite's converter quantizer (`mlir_quantize`,
full integer: int8 activations per tensor, int8 weights, int32 bias) with the weights quantized per channel,
per channel except fully connected layers, or per tensor. Activation scales come from the calibration alone,
so every variant gives every tensor the same scale and zero point: partitions quantized from different
variants still agree at their boundaries. A variant is read back as an IR graph whose values carry the float
model's value names (constants excepted), so each quantized op is found by the name of its output.

The quantizer gives the inputs of a same-scale op (CONCATENATION, MAX_POOL_2D, RESHAPE, ...) that op's scale,
so a tensor may carry a coarser scale than its own range needs. `own_quant()` gives every activation the int8
scale and zero point of its own calibrated range, as the quantizer computes them before unifying scales
(stretchc/quantize/rewrite.py lets a tensor that crosses a partition boundary keep it).

TFLite's calibrator logs every op's inputs again after the op has run (for LSTM state), and TFLite's arena
planner lets an op that may run in place (ADD, for one) write its output over an input that nothing else reads:
that input's range would then take in the op's output too (a small residual added to a large one gets the sum's
range, hundreds of times wider than its own). The model calibrated therefore also outputs every float value that
is read once by a node whose output has its size (`in_place_inputs`, TFLite's own condition for sharing,
whatever the op), which keeps it in a buffer of its own; those extra outputs are dropped from the calibrated
model (`_drop_outputs`), so the quantizer sees the float model as it is.

The calibrator and the quantizer run in the compile's `NativeProcess` (stretchc/native.py): when either fails
or crashes, that is StretchError("native-crash") naming the step, not a dead compiler.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as S

from stretchc.errors import StretchError
from stretchc.ir import Graph, Module, Node, QuantParams, Value
from stretchc.native import NativeError, NativeProcess
from stretchc.tflite_io import TFLiteImportError, emit_model, import_model

# Weight quantization of a variant: conv and fully connected layers per channel; conv per channel and fully
# connected per tensor; everything per tensor.
WEIGHTS = ("per-channel", "per-channel-conv", "per-tensor")


class WholeModel:
    """The module's float graph, calibrated once; quantized variants on demand (see the module docstring)."""

    def __init__(self, module: Module, samples: list[list[np.ndarray]], native: NativeProcess) -> None:
        g = module.graph
        if any(not n.op.startswith("tfl.") for n in g.nodes):
            raise StretchError("ir-invalid", "quantize-partitions runs on the float graph, before insert-sync-points")
        # every value an in-place op could overwrite is an output too while calibrating (see the module docstring)
        exposed = in_place_inputs(g)
        float_model = emit_model(g.nodes, list(g.inputs), [*g.outputs, *exposed], description="stretchc whole float model")
        self._producers = {v.name: n for n in g.nodes for v in n.outputs}
        self._native = native
        try:
            calibrated = native.calibrate(float_model, samples)
        except NativeError as exc:
            raise _failed(exc, f"TFLite's calibrator, calibrating the whole model on {len(samples)} samples") from None
        self.calibrated: bytes = _drop_outputs(calibrated, len(g.outputs)) if exposed else calibrated
        self._variants: dict[str, Graph] = {}
        self._buffers: dict[str, bytes] = {}
        self._own: dict[str, QuantParams] | None = None

    def own_quant(self) -> dict[str, QuantParams]:
        """Every calibrated float tensor's own int8 quantization (by IR value name): its min/max over the
        calibration samples, widened to hold 0, on int8's 256 levels with the zero point rounded into range, as
        TFLite's quantizer derives an activation's scale from its range (`GetUniformQuantizedTypeForRange`)."""
        if self._own is None:
            model = S.ModelT.InitFromPackedBuf(self.calibrated, 0)
            own: dict[str, QuantParams] = {}
            for t in model.subgraphs[0].tensors:
                q = t.quantization
                if t.type != S.TensorType.FLOAT32 or q is None or q.min is None or q.max is None or len(q.min) != 1:
                    continue
                own[t.name.decode() if isinstance(t.name, bytes) else t.name] = int8_range(float(q.min[0]), float(q.max[0]))
            self._own = own
        return self._own

    def variant(self, weights: str) -> Graph:
        """The whole model quantized with `weights` (one of WEIGHTS), read back with IR value names (one graph per
        `weights` until `reset`: the quantizer's ops are adopted into the module from it)."""
        if weights not in self._variants:
            if weights not in self._buffers:
                try:
                    self._buffers[weights] = self._native.quantize(
                        self.calibrated, per_channel=weights != "per-tensor", per_channel_dense=weights == "per-channel"
                    )
                except NativeError as exc:
                    raise _failed(exc, f"TFLite's quantizer, quantizing the whole model ({weights} weights)") from None
            try:
                graph = import_model(self._buffers[weights], tensor_names=True)
            except TFLiteImportError as exc:
                raise StretchError("internal", f"cannot read back the quantized model: {exc}") from None
            self._align_names(graph)
            self._variants[weights] = graph
        return self._variants[weights]

    def reset(self) -> None:
        """Forget the variants' graphs (their ops were adopted, and then dropped, by a plan decided again); the
        quantized models are kept, so the next `variant` only reads one back."""
        self._variants = {}

    def _align_names(self, graph: Graph) -> None:
        """The quantizer renames the outputs of a multi-output op (`a;b;c`, `a;b;c1`, ...): give them back the
        float op's output names, by position."""
        for n in graph.nodes:
            if all(v.name in self._producers for v in n.outputs):
                continue
            parts = [p for v in n.outputs for p in v.name.split(";")]
            float_node = next((self._producers[p] for p in parts if p in self._producers), None)
            if float_node is not None and len(float_node.outputs) == len(n.outputs) and float_node.kind == n.kind:
                for v, f in zip(n.outputs, float_node.outputs):
                    v.name = f.name


def in_place_inputs(g: Graph) -> list[Value]:
    """The float values TFLite's arena planner may let their reader overwrite in place: produced by a node, not
    a graph output, read exactly once (a value read twice, or by two nodes, is kept), by a node whose first output
    has as many bytes. TFLite shares such a buffer only when the op allows it; the op is not asked, so a kernel
    that starts running in place later is covered too."""
    outputs = {id(v) for v in g.outputs}
    reads: dict[int, int] = {}
    reader: dict[int, Node] = {}
    for n in g.nodes:
        for v in n.inputs:
            if v is not None and not v.is_const:
                reads[id(v)] = reads.get(id(v), 0) + 1
                reader[id(v)] = n
    return [
        v for n in g.nodes for v in n.outputs
        if v.dtype == "float32" and id(v) not in outputs and reads.get(id(v)) == 1
        and reader[id(v)].outputs and reader[id(v)].outputs[0].nbytes == v.nbytes
    ]


def _drop_outputs(model: bytes, keep: int) -> bytes:
    """`model` with only its first `keep` outputs (subgraph 0 and its signature): the calibrated model without
    the outputs added for calibration, its tensors and their min/max untouched."""
    m = S.ModelT.InitFromPackedBuf(model, 0)
    sg = m.subgraphs[0]
    sg.outputs = sg.outputs[:keep]
    kept = {int(t) for t in sg.outputs}
    for sig in m.signatureDefs or []:
        if sig.subgraphIndex == 0:  # a signature lists outputs in its own order: keep those of the kept tensors
            sig.outputs = [o for o in sig.outputs or [] if o.tensorIndex in kept]
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def int8_range(lo: float, hi: float) -> QuantParams:
    """The int8 quantization TFLite's quantizer gives an activation whose calibrated range is [lo, hi]."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:  # a constant zero tensor: any scale represents it exactly
        return QuantParams(scale=(1.0,), zero_point=(0,))
    scale = (hi - lo) / 255.0
    zero = -128.0 - lo / scale
    # round half away from zero (std::round), clamped into int8
    zp = -128 if zero < -128 else 127 if zero > 127 else int(np.sign(zero) * np.floor(abs(zero) + 0.5))
    return QuantParams(scale=(scale,), zero_point=(zp,))


def _failed(exc: NativeError, step: str) -> StretchError:
    """The error of a native step that failed or crashed: the step, what happened, and what to check."""
    hint = "; look for extreme values in the calibration data" if exc.crashed else ""
    return StretchError("native-crash", f"{step}: {exc}{hint}")
