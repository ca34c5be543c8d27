"""expand-prelu: `PRelu(x, slope)` with a slope that is not one value per channel becomes its definition.

onnx2tf lowers PRelu with a Keras PReLU layer, whose weights it can only shape from a scalar or a
per-channel slope; any other broadcast (ONNX allows every shape that broadcasts to x) fails to convert.
ONNX defines PRelu (its function body, opset 16) as `Where(Less(x, 0), Mul(x, slope), x)`: that is what
replaces it, the last node keeping the name and output of the PRelu.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext, is_default, replace_nodes, tensor_types


def per_channel(x_shape: tuple[int, ...], slope_shape: tuple[int, ...]) -> bool:
    """A slope onnx2tf's PReLU takes: one value, or one per channel (axis 1) of a rank >= 3 input."""
    if int(np.prod(slope_shape)) == 1:
        return True
    if len(x_shape) < 3:
        return False
    channels = x_shape[1]
    trailing = len(x_shape) - 2  # the channel axis, then one broadcast axis per spatial axis
    return slope_shape in ((channels, *(1,) * trailing), (1, channels, *(1,) * trailing))


@dataclass(frozen=True)
class ExpandPrelu(Rewrite):
    """Expands PRelu with a non-per-channel slope into Less, Mul and Where."""

    name = "expand-prelu"
    summary = "PRelu whose slope is not per channel -> Where(Less(x, 0), Mul(x, slope), x)"

    def run(self, model: onnx.ModelProto, ctx: RewriteContext) -> bool:
        if not any(is_default(n, "PRelu") for n in model.graph.node):
            return False
        types = tensor_types(model)
        g = model.graph

        def expand(node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
            if not is_default(node, "PRelu"):
                return None
            x, slope = types.get(node.input[0]), types.get(node.input[1])
            if x is None or slope is None or x.static_shape is None or slope.static_shape is None or per_channel(x.static_shape, slope.static_shape):
                return None
            base = node.name or node.output[0]
            zero, negative, scaled = f"{base}.zero", f"{base}.negative", f"{base}.scaled"
            g.initializer.append(numpy_helper.from_array(np.zeros((), helper.tensor_dtype_to_np_dtype(x.elem_type)), zero))
            return [
                helper.make_node("Less", [node.input[0], zero], [negative], name=f"{base}/less"),
                helper.make_node("Mul", [node.input[0], node.input[1]], [scaled], name=f"{base}/mul"),
                helper.make_node("Where", [negative, scaled, node.input[0]], list(node.output), name=node.name),
            ]

        return replace_nodes(model, expand)
