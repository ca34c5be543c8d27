"""inline-functions: calls of model-local functions become their bodies; caller tensor names stay."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from stretchc.frontend.canonicalize.inline_functions import InlineFunctions
from tests.canonicalize.helpers import assert_same_outputs, ops, rewritten


def _model_with_function() -> onnx.ModelProto:
    body = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Relu", ["s"], ["r"])]
    block = helper.make_function("local", "AddRelu", ["a", "b"], ["r"], body, [helper.make_opsetid("", 18)])
    nodes = [
        helper.make_node("AddRelu", ["x", "y"], ["first"], domain="local", name="call1"),
        helper.make_node("AddRelu", ["first", "y"], ["out"], domain="local", name="call2"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in "xy"], [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("local", 1)], functions=[block])
    model.ir_version = 8
    return model


def test_calls_become_bodies_and_caller_names_stay() -> None:
    model = _model_with_function()
    changed, out = rewritten(InlineFunctions(), model)
    assert changed
    assert not out.functions and {o.domain for o in out.opset_import} == {""}
    assert ops(out) == ["Add", "Relu", "Add", "Relu"]
    assert "first" in {t for n in out.graph.node for t in n.output}  # the caller's tensor between the calls
    feeds = {"x": np.linspace(-1, 1, 4, dtype=np.float32).reshape(1, 4), "y": np.full((1, 4), 0.25, np.float32)}
    assert_same_outputs(model, out, feeds)


def test_a_model_without_functions_is_unchanged() -> None:
    model = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])]),
        opset_imports=[helper.make_opsetid("", 18)],
    )
    changed, out = rewritten(InlineFunctions(), model)
    assert not changed and ops(out) == ["Relu"]
