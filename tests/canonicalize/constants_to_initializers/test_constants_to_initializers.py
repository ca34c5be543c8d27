"""constants-to-initializers: every dense Constant becomes an initializer named after its output."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from stretchc.frontend.canonicalize.constants_to_initializers import ConstantsToInitializers
from tests.canonicalize.helpers import assert_same_outputs, make_model, ops, rewritten


def test_every_spelling_becomes_an_initializer() -> None:
    nodes = [
        helper.make_node("Constant", [], ["alpha"], name="c1", value_float=0.5),
        helper.make_node("Constant", [], ["shift"], name="c2", value_floats=[1.0, 2.0, 3.0]),
        helper.make_node("Constant", [], ["shape"], name="c3", value_ints=[3, 1]),
        helper.make_node("Constant", [], ["bias"], name="c4", value=numpy_helper.from_array(np.full((3,), 0.25, np.float32))),
        helper.make_node("Mul", ["x", "alpha"], ["m"]),
        helper.make_node("Add", ["m", "shift"], ["a"]),
        helper.make_node("Add", ["a", "bias"], ["b"]),
        helper.make_node("Reshape", ["b", "shape"], ["y"]),
    ]
    model = make_model(nodes, [("x", [3])], [("y", [3, 1])])
    changed, out = rewritten(ConstantsToInitializers(), model)
    assert changed
    assert ops(out) == ["Mul", "Add", "Add", "Reshape"]
    inits = {t.name: numpy_helper.to_array(t) for t in out.graph.initializer}
    assert inits["alpha"].dtype == np.float32 and inits["alpha"].shape == ()
    assert inits["shape"].dtype == np.int64 and list(inits["shape"]) == [3, 1]
    assert_same_outputs(model, out, {"x": np.array([1.0, -2.0, 3.0], np.float32)})


def test_string_constants_stay() -> None:
    node = helper.make_node("Constant", [], ["s"], value=helper.make_tensor("t", TensorProto.STRING, [1], [b"hi"]))
    model = helper.make_model(helper.make_graph([node], "g", [], [helper.make_tensor_value_info("s", TensorProto.STRING, [1])]), opset_imports=[helper.make_opsetid("", 18)])
    changed, out = rewritten(ConstantsToInitializers(), model)
    assert not changed and ops(out) == ["Constant"]
