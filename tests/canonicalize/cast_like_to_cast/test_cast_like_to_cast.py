"""cast-like-to-cast: CastLike(x, like) becomes Cast(x, to=type of like), keeping the node's name and output."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from stretchc.frontend.canonicalize.cast_like_to_cast import CastLikeToCast
from tests.canonicalize.helpers import assert_same_outputs, make_model, ops, rewritten


def test_castlike_becomes_cast_to_the_type_of_like() -> None:
    alpha = numpy_helper.from_array(np.array(0.5, np.float64), "alpha")
    nodes = [
        helper.make_node("CastLike", ["alpha", "x"], ["alpha_cast"], name="AlphaCast", saturate=1),
        helper.make_node("Mul", ["x", "alpha_cast"], ["y"], name="mul"),
    ]
    model = make_model(nodes, [("x", [4])], [("y", [4])], opset=19, initializers=[alpha])
    changed, out = rewritten(CastLikeToCast(), model)
    assert changed and ops(out) == ["Cast", "Mul"]
    cast = out.graph.node[0]
    assert cast.name == "AlphaCast" and list(cast.input) == ["alpha"] and list(cast.output) == ["alpha_cast"]
    assert {a.name: helper.get_attribute_value(a) for a in cast.attribute} == {"to": TensorProto.FLOAT, "saturate": 1}
    assert_same_outputs(model, out, {"x": np.arange(4, dtype=np.float32)})


def test_a_model_without_castlike_is_unchanged() -> None:
    changed, _ = rewritten(CastLikeToCast(), make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [2])], [("y", [2])]))
    assert not changed
