"""The base of ONNX-level rewrites (stretchc/frontend/canonicalize) and the context they run in.

A rewrite is a small frozen dataclass with a kebab-case `name`; `run(model, ctx)` edits the model in place
and says whether it changed anything. One concept, one spelling: module `canonicalize/cast_like_to_cast.py`,
class `CastLikeToCast`, name `cast-like-to-cast`, tests in `tests/canonicalize/cast_like_to_cast/`, dump
`onnx-NN-after-cast-like-to-cast.onnx`. A rewrite keeps every ONNX tensor name it can (node outputs it
replaces keep their names), so sync points can still be matched to the user's tensors.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np
import onnx
from onnx import numpy_helper



@dataclass
class RewriteContext:
    """What rewrites may read besides the model: where it came from and the user's compile-time values."""

    file: str
    const_inputs: dict[str, np.ndarray] = field(default_factory=dict)  # --const-input NAME=FILE.npy
    const_input_files: dict[str, str] = field(default_factory=dict)  # NAME -> FILE, for messages


@dataclass(frozen=True)
class Rewrite(abc.ABC):
    """Base of all ONNX rewrites."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    @abc.abstractmethod
    def run(self, model: onnx.ModelProto, ctx: RewriteContext) -> bool:
        """Rewrite `model` in place; return whether anything changed."""


@dataclass(frozen=True)
class TensorType:
    """A tensor's element type and shape (None when unknown; a dimension is None when not static)."""

    elem_type: int
    shape: tuple[int | None, ...] | None

    @property
    def static_shape(self) -> tuple[int, ...] | None:
        return None if self.shape is None or None in self.shape else tuple(int(d) for d in self.shape)  # type: ignore[misc]


def tensor_types(model: onnx.ModelProto) -> dict[str, TensorType]:
    """The type of every tensor whose type is known: inputs, initializers, Constants, inferred values, outputs."""
    g = onnx.shape_inference.infer_shapes(model, strict_mode=False).graph
    types: dict[str, TensorType] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.elem_type != onnx.TensorProto.UNDEFINED:
            dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim) if tt.HasField("shape") else None
            types[vi.name] = TensorType(tt.elem_type, dims)
    for t in g.initializer:
        types[t.name] = TensorType(t.data_type, tuple(int(d) for d in t.dims))
    for node in g.node:
        if is_default(node, "Constant"):
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = TensorType(attr.t.data_type, tuple(int(d) for d in attr.t.dims))
    return types


def constant_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The value of every initializer."""
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def replace_nodes(model: onnx.ModelProto, replacement: Callable[[onnx.NodeProto], list[onnx.NodeProto] | None]) -> bool:
    """Replace every main-graph node for which `replacement` returns nodes (None keeps it); whether any was.

    `replacement` may add initializers to the graph; node order is kept, so the graph stays topological
    when a replacement computes its node's outputs from its node's inputs.
    """
    out: list[onnx.NodeProto] = []
    changed = False
    for node in list(model.graph.node):
        new = replacement(node)
        out.extend([node] if new is None else new)
        changed = changed or new is not None
    if changed:
        del model.graph.node[:]
        model.graph.node.extend(out)
        read = {name for n in out for name in n.input} | {o.name for o in model.graph.output}
        unread = [t for t in model.graph.initializer if t.name not in read]
        for t in unread:  # operands only the replaced nodes read
            model.graph.initializer.remove(t)
    return changed


def is_default(node: onnx.NodeProto, op_type: str) -> bool:
    """Whether `node` is the ONNX (default-domain) op `op_type`."""
    return node.op_type == op_type and node.domain in ("", "ai.onnx")
