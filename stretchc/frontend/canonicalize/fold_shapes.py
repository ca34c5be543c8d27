"""fold-shapes: shape computations become initializers, so every tensor shape is static before the lowering.

Exporters (PaddlePaddle's paddle2onnx, torch.onnx with dynamic axes) compute Reshape targets at run time:
`Shape(x) -> Slice -> Cast -> Concat -> Reshape`. ONNX shape inference does not evaluate those, so the
shapes after the first such Reshape, the model outputs' included, stay unknown even once `--input-shape`
has fixed the inputs; the front end then took the output of PP-OCR's recogniser, [1, 40, 6625], for
[1, 1, 6625] (an unknown dimension read as 1) and refused a correct lowering.

With static input shapes these values are constants. Repeatedly, until nothing changes: shapes are
inferred; `Shape` and `Size` of a tensor whose shape is static, and every node all of whose inputs are
constant, are evaluated (onnx.reference, at the model's opset) and their outputs become initializers of
the same names; inference then reaches past the Reshapes they feed, which makes more Shapes foldable.

Left alone: nodes with subgraphs, random ops, nodes producing a model output (an output must stay computed
by a node), outputs of more than `MAX_BYTES` (weights transformed by constant ops: onnxsim folds those during
the lowering; folding them here would copy them into the canonical model for no gain; shape values and the
anchor grids detectors compute from shapes, 2 x 8400 floats for YOLOv8 at 640 x 640, are far smaller), and any
node the reference implementation cannot evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext, TensorType, replace_nodes, tensor_types
from stretchc.frontend.validate import default_opset

MAX_BYTES = 1 << 20
_RANDOM = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}


def _foldable(node: onnx.NodeProto, outputs: set[str]) -> bool:
    """Whether the node may be folded at all (whatever its inputs): see the module docstring."""
    return (
        node.domain in ("", "ai.onnx")
        and node.op_type not in _RANDOM
        and len(node.input) > 0
        and not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
        and not any(o in outputs for o in node.output)
    )


def _too_big(t: TensorType | None) -> bool:
    """Whether an inferred type says the tensor holds more than `MAX_BYTES` (unknown: not known to)."""
    shape = t.static_shape if t is not None else None
    if shape is None:
        return False
    return int(np.prod(shape, dtype=np.int64)) * onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).itemsize > MAX_BYTES  # type: ignore[union-attr]


def _typed_as(t: TensorType | None, value: np.ndarray) -> bool:
    """Whether `value` has the element type inference gave its tensor (a reference result of another type would
    change the model's types: the node is left to the lowering instead)."""
    return t is None or onnx.helper.np_dtype_to_tensor_dtype(value.dtype) == t.elem_type


def _evaluate(node: onnx.NodeProto, feeds: dict[str, np.ndarray], opset: int) -> list[np.ndarray] | None:
    """The node's outputs for constant inputs, or None when onnx.reference cannot compute them."""
    from onnx.reference import ReferenceEvaluator  # lazy: 0.1 s to import; only a node to fold needs it

    try:
        return [np.asarray(v) for v in ReferenceEvaluator(node, opsets={"": opset}).run(None, feeds)]
    except Exception:  # an op or configuration the reference implementation lacks: the lowering gets the node
        return None


def _fold_once(model: onnx.ModelProto, opset: int) -> bool:
    """One pass in node order (a folded value feeds the nodes after it); whether anything was folded."""
    constants = {t.name for t in model.graph.initializer}
    if not any(n.op_type in ("Shape", "Size") or all(i in constants for i in n.input if i) for n in model.graph.node):
        return False  # nothing can start a fold: spare the shape inference (a copy of the whole model)
    types = tensor_types(model)
    initializers = {t.name: t for t in model.graph.initializer}
    known: dict[str, np.ndarray] = {}
    outputs = {o.name for o in model.graph.output}

    def value(name: str) -> np.ndarray | None:
        if name not in known and name in initializers:
            known[name] = numpy_helper.to_array(initializers[name])
        return known.get(name)

    def fold(node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
        if not _foldable(node, outputs):
            return None
        if any(_too_big(types.get(o)) for o in node.output):
            return None  # known to be too big before evaluating it (evaluating a weight transform is slow too)
        if node.op_type in ("Shape", "Size"):
            t = types.get(node.input[0])
            shape = t.static_shape if t is not None else None
            if shape is None:
                return None
            # Only the shape is read: a zero-strided view stands in for the tensor without allocating it.
            feeds = {node.input[0]: np.broadcast_to(np.zeros((), np.float32), shape)}
        else:
            given = {name: value(name) for name in node.input if name}
            if any(v is None for v in given.values()):
                return None
            feeds = given  # type: ignore[assignment]
        results = _evaluate(node, feeds, opset)
        if results is None or any(r.nbytes > MAX_BYTES or not _typed_as(types.get(o), r) for o, r in zip(node.output, results)):
            return None
        for name, result in zip(node.output, results):
            if name:
                known[name] = result
                model.graph.initializer.append(numpy_helper.from_array(result, name))
        return []

    return replace_nodes(model, fold)


@dataclass(frozen=True)
class FoldShapes(Rewrite):
    """Evaluates shape computations (and small constant subexpressions) into initializers."""

    name = "fold-shapes"
    summary = "Shape/Size of static shapes and nodes of constant inputs -> initializers, until every shape is static"

    def run(self, model: onnx.ModelProto, ctx: RewriteContext) -> bool:
        opset = default_opset(model) or 1
        changed = False
        while _fold_once(model, opset):
            changed = True
        return changed
