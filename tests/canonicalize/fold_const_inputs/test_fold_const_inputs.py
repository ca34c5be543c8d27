"""fold-const-inputs: --const-input values become initializers of the same name; bad values are refused."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from stretchc.errors import StretchError
from stretchc.frontend.canonicalize.fold_const_inputs import FoldConstInputs
from tests.canonicalize.helpers import make_model, outputs, rewritten

SHAPE = np.array([2, 6], np.int64)


def _reshape() -> object:
    from onnx import TensorProto

    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4]), helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def test_input_becomes_initializer_of_the_same_name() -> None:
    model = _reshape()
    changed, out = rewritten(FoldConstInputs(), model, const_inputs={"shape": SHAPE})
    assert changed
    assert [i.name for i in out.graph.input] == ["x"]
    assert [t.name for t in out.graph.initializer] == ["shape"]
    assert list(out.graph.node[0].input) == ["x", "shape"]
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    (y,) = outputs(out, {"x": x})
    np.testing.assert_array_equal(y, x.reshape(2, 6))
    assert [d.dim_value for d in out.graph.output[0].type.tensor_type.shape.dim] == [2, 6]  # now inferable


def test_nothing_given_nothing_changed() -> None:
    changed, _ = rewritten(FoldConstInputs(), make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [2])], [("y", [2])]))
    assert not changed


@pytest.mark.parametrize(
    ("values", "code", "words"),
    [
        ({"nope": SHAPE}, "usage", ["nope", "shape, x"]),
        ({"shape": SHAPE.astype(np.int32)}, "bad-input-data", ["int32", "int64"]),
        ({"shape": np.array([2, 3, 2], np.int64)}, "bad-input-data", ["[3]", "[2]"]),
    ],
)
def test_bad_values_are_refused(values: dict[str, np.ndarray], code: str, words: list[str]) -> None:
    with pytest.raises(StretchError) as err:
        rewritten(FoldConstInputs(), _reshape(), const_inputs=values)
    assert err.value.code == code
    for w in words:
        assert w in err.value.message
