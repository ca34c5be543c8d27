"""Shared by the rewrite tests: run one rewrite on a model, compare two models' outputs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from stretchc.frontend.canonicalize import canonicalize
from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext


def make_model(nodes: list[onnx.NodeProto], inputs: list[tuple[str, list[int]]], outputs: list[tuple[str, list[int] | None]], *, opset: int = 18, initializers: list[onnx.TensorProto] | None = None, elem: int = TensorProto.FLOAT) -> onnx.ModelProto:
    """A checked single-graph model (float inputs and outputs unless `elem` says otherwise)."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, elem, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, elem, s) for n, s in outputs],
        initializers or [],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def rewritten(rewrite: Rewrite, model: onnx.ModelProto, **ctx: object) -> tuple[bool, onnx.ModelProto]:
    """Whether `rewrite` changed a copy of `model`, and the copy (checked, types re-inferred, like canonicalize)."""
    before = model.SerializeToString()
    changed = False

    class Probe(Rewrite):
        name = rewrite.name

        def run(self, m: onnx.ModelProto, c: RewriteContext) -> bool:
            nonlocal changed
            changed = rewrite.run(m, c)
            return changed

    out = canonicalize(model, RewriteContext(file="model.onnx", **ctx), rewrites=(Probe(),))  # type: ignore[arg-type]
    assert model.SerializeToString() == before, "canonicalize must not modify its argument"
    return changed, out


def outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return list(session.run(None, feeds))


def assert_same_outputs(a: onnx.ModelProto, b: onnx.ModelProto, feeds: dict[str, np.ndarray], tol: float = 1e-5) -> None:
    for x, y in zip(outputs(a, feeds), outputs(b, feeds)):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)


def ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]
