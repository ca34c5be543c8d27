"""resize-to-matmul: a Resize onnx2tf lowers wrongly becomes one MatMul per resized axis.

onnx2tf 1.28.8 lowers Resize correctly only in a few configurations (`native`, measured on single-node
models against ONNX Runtime): linear with half_pixel / pytorch_half_pixel coordinates, and nearest
upsampling by whole factors with half_pixel + round_prefer_floor or asymmetric + floor. Everything else
(cubic, antialias, align_corners, asymmetric linear, downsampling nearest, tf_crop_and_resize, sizes with
keep_aspect_ratio_policy, ...) it converts to a model that computes something else, or to TensorFlow ops
TFLite lacks.

Resize is separable and affine: along each resized axis k, out = M_k @ in + b_k, with M_k (o_k x n_k)
depending only on the attributes, the scales / sizes / roi and the shapes. M_k and b_k are measured with
ONNX's reference implementation (onnx.reference) on a probe that holds, along an axis Resize leaves alone,
the zero vector (giving b_k), the ones vector (locating a position that no other axis extrapolates) and
the n_k basis vectors (giving the columns of M_k). The Resize then becomes, per resized axis, a 2-D
`MatMul` by M_k^T (plus `Add(b_k)` where tf_crop_and_resize extrapolates) between Transposes and Reshapes
(`_matmuls`). The last node keeps the Resize's name and output.

Cost: o_k * n_k multiply-adds per output row instead of a few, so only Resize nodes outside `native`
are rewritten. Needed: a float input with a static shape, constant roi / scales / sizes, and an axis that
is not resized to hold the probe; otherwise the node is left to onnx2tf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext, TensorType, constant_values, is_default, replace_nodes, tensor_types
from stretchc.frontend.validate import default_opset


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    out = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        out[a.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _operand(node: onnx.NodeProto, index: int, constants: dict[str, np.ndarray]) -> np.ndarray | None | bool:
    """A constant operand's value, None when omitted, False when given but not constant."""
    if len(node.input) <= index or not node.input[index]:
        return None
    value = constants.get(node.input[index])
    return False if value is None else value


def native(attrs: dict[str, object], in_shape: tuple[int, ...], out_shape: tuple[int, ...], scales: np.ndarray | None) -> bool:
    """Whether onnx2tf 1.28.8 lowers this Resize correctly (see the module docstring).

    onnx2tf resizes by output size: a scale that is not exactly out / in moves the sample points.
    """
    if len(in_shape) != 4 or in_shape[:2] != out_shape[:2] or attrs.get("antialias", 0) or "axes" in attrs:
        return False
    if scales is not None and scales.size and not all(float(s) * i == o for s, i, o in zip(scales, in_shape, out_shape)):
        return False
    if attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        return False
    mode = attrs.get("mode", "nearest")
    coords = attrs.get("coordinate_transformation_mode", "half_pixel")
    if coords == "pytorch_half_pixel" and min(out_shape[2:]) <= 1:
        return False  # pytorch_half_pixel differs from half_pixel exactly there
    if mode == "linear":
        return coords in ("half_pixel", "pytorch_half_pixel")
    whole = all(o % i == 0 and o >= i for i, o in zip(in_shape[2:], out_shape[2:]))
    nearest = attrs.get("nearest_mode", "round_prefer_floor")
    pairs = {("half_pixel", "round_prefer_floor"), ("pytorch_half_pixel", "round_prefer_floor"), ("asymmetric", "floor")}
    return mode == "nearest" and whole and (coords, nearest) in pairs


def _untouched(axis: int, rank: int, in_shape: tuple[int, ...], out_shape: tuple[int, ...], attrs: dict[str, object], scales: np.ndarray | None, roi: np.ndarray | None) -> bool:
    """Whether Resize leaves `axis` as it is (same size, scale 1, no crop)."""
    listed = list(attrs.get("axes", range(rank)))  # type: ignore[call-overload]
    if axis not in [a % rank for a in listed]:
        return True
    k = [a % rank for a in listed].index(axis)
    if in_shape[axis] != out_shape[axis] or (scales is not None and scales.size and not np.isclose(scales[k], 1.0)):
        return False
    if attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch" and scales is None:
        return in_shape[axis] == 1  # one common scale for every listed axis: a longer one changes too
    if attrs.get("coordinate_transformation_mode") == "tf_crop_and_resize" and roi is not None and roi.size:
        return bool(np.isclose(roi[k], 0.0) and np.isclose(roi[len(listed) + k], 1.0))
    return True


def _probe_model(node: onnx.NodeProto, opset: int, shape: list[int], operands: dict[int, np.ndarray]) -> onnx.ModelProto:
    """The node alone, on a float64 input of `shape`, with its constant operands (index -> value)."""
    names = ["X"] + [f"in{i}" if i in operands else "" for i in (1, 2, 3)]
    while not names[-1]:
        names.pop()
    probe = helper.make_node("Resize", names, ["Y"], **{a.name: helper.get_attribute_value(a) for a in node.attribute})
    inits = [numpy_helper.from_array(np.asarray(v), f"in{i}") for i, v in sorted(operands.items())]
    x = helper.make_tensor_value_info("X", onnx.TensorProto.DOUBLE, shape)
    y = helper.make_tensor_value_info("Y", onnx.TensorProto.DOUBLE, None)
    return helper.make_model(helper.make_graph([probe], "probe", [x], [y], inits), opset_imports=[helper.make_opsetid("", opset)])


def axis_maps(
    node: onnx.NodeProto, opset: int, in_shape: tuple[int, ...], out_shape: tuple[int, ...], constants: dict[str, np.ndarray]
) -> dict[int, tuple[np.ndarray, np.ndarray]] | None:
    """Per resized axis k: (M_k, b_k), measured with onnx.reference; None when the node cannot be probed."""
    from onnx.reference import ReferenceEvaluator  # lazy: 0.1 s to import; only a Resize to rewrite needs it

    attrs = _attrs(node)
    rank = len(in_shape)
    roi, scales, sizes = (_operand(node, i, constants) for i in (1, 2, 3))
    if any(v is False for v in (roi, scales, sizes)):
        return None
    listed = [int(a) % rank for a in attrs.get("axes", range(rank))]  # type: ignore[attr-defined]
    untouched = [a for a in range(rank) if _untouched(a, rank, in_shape, out_shape, attrs, scales, roi)]  # type: ignore[arg-type]
    resized = [a for a in range(rank) if a not in untouched]
    # The axis holding the probe vectors (zeros, ones, the basis of axis k) changes length in the probe: with
    # keep_aspect_ratio_policy, a listed axis would be scaled by the common scale, so it must be unlisted.
    holders = [a for a in untouched if a not in listed or attrs.get("keep_aspect_ratio_policy", "stretch") == "stretch"]
    if not resized or not holders:
        return None
    holder = holders[0]
    maps = {}
    for k in resized:
        n = in_shape[k]
        shape = [1 if a in untouched else in_shape[a] for a in range(rank)]
        shape[holder] = n + 2
        probe = np.zeros(shape, np.float64)
        at: list[object] = [slice(None)] * rank
        at[holder] = 1
        probe[tuple(at)] = 1.0
        for i in range(n):
            at[holder], at[k] = 2 + i, i
            probe[tuple(at)] = 1.0
        operands = {i: v for i, v in ((1, roi), (2, scales), (3, sizes)) if v is not None}
        if sizes is not None:  # the probe's untouched axes changed size: so must their requested sizes
            operands[3] = np.array([shape[a] if a in untouched else int(v) for a, v in zip(listed, sizes)], np.int64)  # type: ignore[arg-type]
        try:
            (response,) = ReferenceEvaluator(_probe_model(node, opset, shape, operands)).run(None, {"X": probe})
        except Exception:  # the reference implementation refuses this configuration: onnx2tf gets the node
            return None
        flat = np.moveaxis(response, [holder, k], [0, 1]).reshape(n + 2, out_shape[k], -1)
        inside = np.max(flat[1] - flat[0], axis=0)  # 1 where no other axis extrapolates
        q = int(np.argmin(np.abs(inside - 1.0)))
        bias = flat[0, :, q]
        maps[k] = ((flat[2:, :, q] - bias).T, bias)
    return maps


def _matmuls(
    node: onnx.NodeProto, maps: dict[int, tuple[np.ndarray, np.ndarray]], in_shape: tuple[int, ...], dtype: np.dtype, graph: onnx.GraphProto
) -> list[onnx.NodeProto]:
    """The nodes computing the Resize from its per-axis maps, axis by axis.

    For axis k: Transpose k last, Reshape to 2-D [rows, n_k], MatMul by M_k^T, Add b_k if any, Reshape
    back, Transpose back. The 2-D MatMul (a TFLite FULLY_CONNECTED) keeps onnx2tf's channel-last layout
    changes away from the arithmetic: on 4-D operands it mixes up the axes.
    """
    base = node.name or node.output[0]
    rank = len(in_shape)
    nodes: list[onnx.NodeProto] = []
    shape = list(in_shape)
    current = node.input[0]
    last = max(maps)

    def const(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def add(op: str, inputs: list[str], output: str, **attrs: object) -> str:
        label = output[len(base) + 1 :] if output.startswith(f"{base}.") else "out"
        nodes.append(helper.make_node(op, inputs, [output], name=f"{base}/{label}", **attrs))
        return output

    for k, (m, bias) in sorted(maps.items()):
        stem = f"{base}.axis{k}"
        perm = [a for a in range(rank) if a != k] + [k]
        moved = [shape[a] for a in perm]
        x = current if k == rank - 1 else add("Transpose", [current], f"{stem}.moved", perm=perm)
        rows = add("Reshape", [x, const(f"{stem}.rows_shape", np.array([-1, shape[k]], np.int64))], f"{stem}.rows")
        y = add("MatMul", [rows, const(f"{stem}.weights", np.ascontiguousarray(m.T).astype(dtype))], f"{stem}.product")
        if bias.any():
            y = add("Add", [y, const(f"{stem}.bias", bias.astype(dtype))], f"{stem}.biased")
        moved[-1] = m.shape[0]
        final = node.output[0] if k == last and k == rank - 1 else f"{stem}.grid"
        y = add("Reshape", [y, const(f"{stem}.grid_shape", np.array(moved, np.int64))], final)
        if k != rank - 1:
            y = add("Transpose", [y], node.output[0] if k == last else f"{stem}.out", perm=[int(i) for i in np.argsort(perm)])
        shape[k] = m.shape[0]
        current = y
    nodes[-1].name = node.name or nodes[-1].name
    return nodes


@dataclass(frozen=True)
class ResizeToMatmul(Rewrite):
    """Replaces Resize nodes onnx2tf would lower wrongly by per-axis MatMuls."""

    name = "resize-to-matmul"
    summary = "Resize outside the configurations onnx2tf lowers correctly -> one MatMul per resized axis"

    def run(self, model: onnx.ModelProto, ctx: RewriteContext) -> bool:
        if not any(is_default(n, "Resize") for n in model.graph.node):
            return False
        types, constants = tensor_types(model), constant_values(model)
        opset = default_opset(model) or 1

        def rewrite(node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
            if not is_default(node, "Resize") or opset < 11:  # Resize-10 has no roi operand: left to onnx2tf
                return None
            x, y = types.get(node.input[0]), types.get(node.output[0])
            in_shape = x.static_shape if x is not None else None
            out_shape = y.static_shape if y is not None else None
            scales = _operand(node, 2, constants)
            if in_shape is None or out_shape is None or not _is_float(x) or scales is False:
                return None
            if native(_attrs(node), in_shape, out_shape, scales):  # type: ignore[arg-type]
                return None
            maps = axis_maps(node, opset, in_shape, out_shape, constants)
            if maps is None:
                return None
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(x.elem_type))  # type: ignore[union-attr]
            return _matmuls(node, maps, in_shape, dtype, model.graph)

        return replace_nodes(model, rewrite)


def _is_float(t: TensorType | None) -> bool:
    return t is not None and t.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)
