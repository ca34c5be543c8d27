"""One calibration of the whole float model, quantized by TFLite's own quantizer in the variants partitions need.

`WholeModel(module, samples, native)` emits the module's float graph as one TFLite model (tensors named by IR
value names) and runs TFLite's calibrator on it once (the min/max of every tensor over the calibration samples).
`variant(weights)` then quantizes that calibrated model with TFLite's converter quantizer (`mlir_quantize`,
full integer: int8 activations per tensor, int8 weights, int32 bias) with the weights quantized per channel,
per channel except fully connected layers, or per tensor. Activation scales come from the calibration alone,
so every variant gives every tensor the same scale and zero point: partitions quantized from different
variants still agree at their boundaries. A variant is read back as an IR graph whose values carry the float
model's value names (constants excepted), so each quantized op is found by the name of its output.

The calibrator and the quantizer run in the compile's `NativeProcess` (stretchc/native.py): when either fails
or crashes, that is StretchError("native-crash") naming the step, not a dead compiler.
"""

from __future__ import annotations

import numpy as np

from stretchc.errors import StretchError
from stretchc.ir import Graph, Module
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
        self.float_model = emit_model(g.nodes, list(g.inputs), list(g.outputs), description="stretchc whole float model")
        self._producers = {v.name: n for n in g.nodes for v in n.outputs}
        self._native = native
        try:
            self.calibrated: bytes = native.calibrate(self.float_model, samples)
        except NativeError as exc:
            raise _failed(exc, f"TFLite's calibrator, calibrating the whole model on {len(samples)} samples") from None
        self._variants: dict[str, Graph] = {}
        self._buffers: dict[str, bytes] = {}

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


def _failed(exc: NativeError, step: str) -> StretchError:
    """The error of a native step that failed or crashed: the step, what happened, and what to check."""
    hint = "; look for extreme values in the calibration data" if exc.crashed else ""
    return StretchError("native-crash", f"{step}: {exc}{hint}")
