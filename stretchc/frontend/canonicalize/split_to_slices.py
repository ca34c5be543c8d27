"""split-to-slices: a Split into unequal (or empty) parts becomes one Slice per output.

onnx2tf lowers Split with TensorFlow's even split and fails when the parts differ in size (opset-18
`num_outputs` that does not divide the axis, explicit sizes with an empty part). Each output becomes a
`Slice(x, [start], [end], [axis])` of the same name; a Split into equal parts is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext, constant_values, is_default, replace_nodes, tensor_types


def split_sizes(node: onnx.NodeProto, length: int, constants: dict[str, np.ndarray]) -> list[int] | None:
    """The size of every part of a Split over an axis of `length`, or None when not known statically."""
    explicit = next((list(helper.get_attribute_value(a)) for a in node.attribute if a.name == "split"), None)
    if explicit is None and len(node.input) > 1 and node.input[1]:
        if node.input[1] not in constants:
            return None
        explicit = [int(v) for v in constants[node.input[1]].reshape(-1)]
    if explicit is not None:
        return [int(v) for v in explicit]
    parts = len(node.output)
    chunk = -(-length // parts)  # opset 18: every part ceil(length / n), the last one what remains
    return [min(chunk, max(0, length - k * chunk)) for k in range(parts)]


def _ints(name: str, value: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array([value], np.int64), name)


@dataclass(frozen=True)
class SplitToSlices(Rewrite):
    """Replaces an uneven Split by Slices."""

    name = "split-to-slices"
    summary = "Split into unequal or empty parts -> one Slice per output"

    def run(self, model: onnx.ModelProto, ctx: RewriteContext) -> bool:
        if not any(is_default(n, "Split") for n in model.graph.node):
            return False
        types, constants = tensor_types(model), constant_values(model)
        g = model.graph

        def slices(node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
            x = types.get(node.input[0]) if is_default(node, "Split") else None
            shape = x.static_shape if x is not None else None
            if shape is None:
                return None
            axis = next((int(helper.get_attribute_value(a)) for a in node.attribute if a.name == "axis"), 0) % len(shape)
            sizes = split_sizes(node, shape[axis], constants)
            if sizes is None or len(set(sizes)) == 1:
                return None
            base = node.name or node.output[0]
            axes = f"{base}.axes"
            g.initializer.append(_ints(axes, axis))
            parts, start = [], 0
            for k, (name, size) in enumerate(zip(node.output, sizes)):
                if name:  # an omitted output
                    begin, end = f"{base}.start{k}", f"{base}.end{k}"
                    g.initializer.extend([_ints(begin, start), _ints(end, start + size)])
                    parts.append(helper.make_node("Slice", [node.input[0], begin, end, axes], [name], name=f"{base}/part{k}"))
                start += size
            return parts

        return replace_nodes(model, slices)
