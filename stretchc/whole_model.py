"""The whole module as one TFLite model: partitions ignored, sync nodes removed, quantized nodes as they are.

Used to run the model as it stands at any point of the pipeline (calibration captures, the numeric bisect),
and to move feeds and results between the ONNX model's layout and the module's.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from stretchc.ir import Graph, Module, TensorInfo
from stretchc.tflite_io import emit_model


def without_sync(graph: Graph) -> tuple[Graph, Callable[[str], str]]:
    """A copy of `graph` (constant data shared, not copied) with every sync node removed and its output
    replaced by its input; and a function from a value name of `graph` to its name in the copy."""
    memo = {id(v.data): v.data for v in graph.values() if v.data is not None}
    g = copy.deepcopy(graph, memo)
    source: dict[str, str] = {}
    for node in [n for n in g.nodes if n.op == "stretch.sync"]:
        src, dst = node.inputs[0], node.outputs[0]
        assert src is not None
        source[dst.name] = src.name
        g.remove(node)
        g.replace_all_uses(dst, src)

    def resolve(name: str) -> str:
        while name in source:
            name = source[name]
        return name

    return g, resolve


def whole_model(module: Module) -> tuple[bytes, list[str]]:
    """The module's TFLite nodes as one model whose inputs are the graph inputs and whose outputs are the
    module's outputs; with the TFLite name of each output, in `module.outputs` order."""
    g, resolve = without_sync(module.graph)
    values = g.value_map()
    outputs = [resolve(o.name) for o in module.graph.outputs]
    nodes = [n for n in g.nodes if n.op.startswith("tfl.")]
    buf = emit_model(nodes, list(g.inputs), [values[n] for n in outputs], description="stretchc whole model")
    by_value = dict(zip([o.name for o in module.graph.outputs], outputs))
    return buf, [by_value[info.value] for info in module.outputs]


def to_module_layout(module: Module, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """An ONNX-layout feed (by ONNX input name) as {graph input value name: array in the module's layout}."""
    values = module.graph.value_map()
    out = {}
    for info in module.inputs:
        arr = feed[info.name]
        if info.layout == "NCHW" and info.perm is not None:
            arr = np.transpose(arr, info.perm)
        out[info.value] = np.ascontiguousarray(arr.reshape(values[info.value].shape), dtype=values[info.value].dtype)
    return out


def to_onnx_layout(info: TensorInfo, arr: np.ndarray) -> np.ndarray:
    """A module output in the ONNX model's layout and shape."""
    if info.layout == "NCHW" and info.perm is not None:
        arr = np.transpose(arr, np.argsort(info.perm))
    return np.ascontiguousarray(arr.reshape(info.shape))
