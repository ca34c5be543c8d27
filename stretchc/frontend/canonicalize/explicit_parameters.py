"""explicit-parameters: spell out parameters ONNX lets a node leave implicit, which onnx2tf needs written.

- `kernel_shape` of Conv and ConvTranspose: the spatial dimensions of the weights W;
- `pads` for `auto_pad=SAME_LOWER` (Conv, AveragePool, MaxPool, LpPool): per spatial axis,
  total = max(0, (ceil(in / stride) - 1) * stride + (kernel - 1) * dilation + 1 - in), the larger half at the
  beginning (onnx2tf rejects SAME_LOWER; SAME_UPPER is TensorFlow's SAME and is left alone);
- `pads` for ConvTranspose's `output_shape`, or for its `auto_pad=SAME_*` (output_shape = in * stride):
  total = stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - output_shape, split as ONNX
  specifies (the larger half at the end for SAME_UPPER, else at the beginning); a negative end pad (the
  output grows at its end) becomes `output_padding`;
- the `axes` of a reduction (opset 18 on; ReduceSum from 13) given as nothing or as an empty constant, with
  `noop_with_empty_axes=0`: every axis.
Only nodes with static input shapes are rewritten; every node keeps its name, inputs and outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext, TensorType, constant_values, tensor_types
from stretchc.frontend.validate import default_opset

_SAME_LOWER_OPS = {"Conv", "AveragePool", "MaxPool", "LpPool"}
_REDUCE_OPS = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    value = next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)
    return value.decode() if isinstance(value, bytes) else value


def _set(node: onnx.NodeProto, drop: tuple[str, ...], **attrs: object) -> None:
    kept = [a for a in node.attribute if a.name not in drop and a.name not in attrs]
    del node.attribute[:]
    node.attribute.extend([*kept, *(helper.make_attribute(k, v) for k, v in attrs.items())])


def same_lower_pads(spatial: tuple[int, ...], kernel: list[int], strides: list[int], dilations: list[int]) -> list[int]:
    """ONNX's SAME_LOWER pads (begins, then ends) for the given spatial input shape."""
    begins, ends = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        total = max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
        begins.append(total - total // 2)
        ends.append(total // 2)
    return begins + ends


def output_shape_pads(spatial: tuple[int, ...], node: onnx.NodeProto, kernel: list[int]) -> tuple[list[int], list[int]] | None:
    """(pads, output_padding) that give a ConvTranspose its `output_shape` (or SAME output), or None."""
    n = len(spatial)
    strides = list(_attr(node, "strides", [1] * n))  # type: ignore[call-overload]
    out = list(_attr(node, "output_shape", [])) or [i * s for i, s in zip(spatial, strides)]  # type: ignore[call-overload]
    dilations = list(_attr(node, "dilations", [1] * n))  # type: ignore[call-overload]
    extra = list(_attr(node, "output_padding", [0] * n))  # type: ignore[call-overload]
    totals = [s * (i - 1) + p + (k - 1) * d + 1 - o for i, s, p, k, d, o in zip(spatial, strides, extra, kernel, dilations, out[-n:])]
    if _attr(node, "auto_pad", "NOTSET") == "SAME_UPPER":
        begins, ends = [t // 2 for t in totals], [t - t // 2 for t in totals]
    else:
        begins, ends = [t - t // 2 for t in totals], [t // 2 for t in totals]
    if any(b < 0 for b in begins):
        return None
    return begins + [max(e, 0) for e in ends], [p + max(-e, 0) for p, e in zip(extra, ends)]


def _conv_like(node: onnx.NodeProto, types: dict[str, TensorType]) -> bool:
    shape = types[node.input[0]].static_shape if node.input[0] in types else None
    if shape is None:
        return False
    spatial = shape[2:]
    changed = False
    kernel = list(_attr(node, "kernel_shape", []))  # type: ignore[call-overload]
    if node.op_type in ("Conv", "ConvTranspose") and not kernel:
        weights = types[node.input[1]].static_shape if node.input[1] in types else None
        if weights is None:
            return False
        kernel = list(weights[2:])
        _set(node, (), kernel_shape=kernel)
        changed = True
    if node.op_type in _SAME_LOWER_OPS and _attr(node, "auto_pad", "NOTSET") == "SAME_LOWER" and len(kernel) == len(spatial):
        n = len(spatial)
        strides = list(_attr(node, "strides", [1] * n))  # type: ignore[call-overload]
        dilations = list(_attr(node, "dilations", [1] * n))  # type: ignore[call-overload]
        _set(node, ("auto_pad",), pads=same_lower_pads(spatial, kernel, strides, dilations))
        changed = True
    sized = _attr(node, "output_shape", None) is not None or _attr(node, "auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER")
    if node.op_type == "ConvTranspose" and sized and len(kernel) == len(spatial):
        found = output_shape_pads(spatial, node, kernel)
        if found is not None:
            _set(node, ("output_shape", "auto_pad"), pads=found[0], output_padding=found[1])
            changed = True
    return changed


def _reduce_axes(node: onnx.NodeProto, model: onnx.ModelProto, types: dict[str, TensorType], constants: dict[str, np.ndarray]) -> bool:
    """Give a reduction with no or empty axes (meaning: every axis) its axes explicitly."""
    axes_is_input = default_opset(model) >= (13 if node.op_type == "ReduceSum" else 18)  # type: ignore[operator]
    if not axes_is_input or _attr(node, "noop_with_empty_axes", 0) or node.input[0] not in types:
        return False
    given = node.input[1] if len(node.input) > 1 else ""
    if given and (given not in constants or constants[given].size):
        return False
    shape = types[node.input[0]].shape
    if shape is None:
        return False
    name = f"{node.name or node.output[0]}.axes"
    model.graph.initializer.append(numpy_helper.from_array(np.arange(len(shape), dtype=np.int64), name))
    del node.input[1:]
    node.input.append(name)
    return True


@dataclass(frozen=True)
class ExplicitParameters(Rewrite):
    """Writes out kernel shapes, SAME_LOWER and output_shape pads, and reduction axes."""

    name = "explicit-parameters"
    summary = "spell out implicit kernel_shape, pads (SAME_LOWER, ConvTranspose output_shape) and reduction axes"

    def run(self, model: onnx.ModelProto, ctx: RewriteContext) -> bool:
        ops = {n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")}
        if not ops & (_SAME_LOWER_OPS | _REDUCE_OPS | {"ConvTranspose"}):
            return False
        types, constants = tensor_types(model), constant_values(model)
        changed = False
        for node in model.graph.node:
            if node.domain not in ("", "ai.onnx"):
                continue
            if node.op_type in _SAME_LOWER_OPS | {"ConvTranspose"}:
                changed = _conv_like(node, types) or changed
            elif node.op_type in _REDUCE_OPS:
                changed = _reduce_axes(node, model, types, constants) or changed
        return changed
