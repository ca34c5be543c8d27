"""The whole module as one TFLite model: partitions ignored, sync nodes removed, quantized nodes as they are.

Used to run the model as it stands at any point of the pipeline (calibration captures, the numeric bisect),
and to move feeds and results between the ONNX model's layout and the module's.
"""

from __future__ import annotations

import numpy as np

from stretchc.ir import Module, QuantParams, TensorInfo, Value
from stretchc.precision import QUANTIZED, dequantize_array, quantize_array
from stretchc.tflite_io import emit_model


def whole_model(module: Module) -> tuple[bytes, list[str]]:
    """The module's TFLite nodes as one model whose inputs are the graph inputs and whose outputs are the
    module's outputs (sync nodes skipped: their readers read the synced value); with the TFLite name of each
    output, in `module.outputs` order. Nothing is copied and nothing recurses over the graph's depth."""
    source: dict[int, Value] = {}
    for node in module.graph.nodes:
        if node.op == "stretch.sync" and node.inputs[0] is not None:
            source[id(node.outputs[0])] = node.inputs[0]

    def resolve(v: Value) -> Value:
        while id(v) in source:
            v = source[id(v)]
        return v

    g = module.graph
    nodes = [n for n in g.nodes if n.op.startswith("tfl.")]
    outputs = {o.name: resolve(o) for o in g.outputs}
    buf = emit_model(nodes, list(g.inputs), list(outputs.values()), description="stretchc whole model", resolve=resolve)
    return buf, [outputs[info.value].name for info in module.outputs]


def to_module_layout(module: Module, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """An ONNX-layout feed (by ONNX input name) as {graph input value name: array in the module's layout},
    quantized with the graph input's scale when the module holds it in 8 bits."""
    values = module.graph.value_map()
    out = {}
    for info in module.inputs:
        arr = feed[info.name]
        if info.layout == "NCHW" and info.perm is not None:
            arr = np.transpose(arr, info.perm)
        v = values[info.value]
        q = v.quant
        if v.dtype in QUANTIZED and q is not None and arr.dtype != np.dtype(v.dtype):
            arr = quantize_array(arr, q.scale[0], q.zero_point[0], v.dtype)
        out[info.value] = np.ascontiguousarray(arr.reshape(v.shape), dtype=v.dtype)
    return out


def graph_inputs(module: Module, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """An ONNX-layout feed as the arrays of the module's graph inputs, in their order (module layout)."""
    by_value = to_module_layout(module, feed)
    return [by_value[v.name] for v in module.graph.inputs]


def to_onnx_layout(info: TensorInfo, arr: np.ndarray, quant: QuantParams | None = None) -> np.ndarray:
    """A module output in the ONNX model's layout and shape (dequantized with `quant` when it is 8-bit)."""
    if quant is not None and arr.dtype in (np.int8, np.uint8):
        arr = dequantize_array(arr, quant.scale[0], quant.zero_point[0])
    if info.layout == "NCHW" and info.perm is not None:
        arr = np.transpose(arr, np.argsort(info.perm))
    return np.ascontiguousarray(arr.reshape(info.shape))
