"""convert-opset: models outside onnx2tf's opsets 9-21 are converted (or relabelled) or refused naming the op."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from stretchc.errors import StretchError
from stretchc.frontend.canonicalize.convert_opset import LOWERING_OPSETS, ConvertOpset
from stretchc.frontend.validate import default_opset
from tests.canonicalize.helpers import assert_same_outputs, make_model, rewritten

X = {"x": np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)}


def _cnn(opset: int) -> object:
    w = numpy_helper.from_array(np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["y"], name="gap"),
    ]
    return make_model(nodes, [("x", [1, 3, 8, 8])], [("y", [1, 4, 1, 1])], opset=opset, initializers=[w])


@pytest.mark.parametrize("opset", [22, 23, 25, 28])
def test_newer_opsets_come_down_to_21_with_names_kept(opset: int) -> None:
    model = _cnn(opset)
    changed, out = rewritten(ConvertOpset(), model)
    assert changed and default_opset(out) == LOWERING_OPSETS[1]
    assert [n.name for n in out.graph.node] == ["conv", "relu", "pool", "gap"]
    assert [o for n in out.graph.node for o in n.output] == ["c", "r", "p", "y"]
    assert_same_outputs(model, out, X)


def test_older_opsets_go_up_to_9() -> None:
    model = _cnn(7)
    changed, out = rewritten(ConvertOpset(), model)
    assert changed and default_opset(out) == LOWERING_OPSETS[0]
    assert_same_outputs(model, out, X)


def test_in_range_is_left_alone() -> None:
    changed, out = rewritten(ConvertOpset(), _cnn(13))
    assert not changed and default_opset(out) == 13


def test_a_bump_the_converter_has_no_adapter_for_is_relabelled() -> None:
    # onnx has no 22 -> 21 adapter for GlobalMaxPool; opset 22 only added bfloat16 to it.
    model = make_model([helper.make_node("GlobalMaxPool", ["x"], ["y"], name="gmp")], [("x", [1, 3, 8, 8])], [("y", [1, 3, 1, 1])], opset=22)
    changed, out = rewritten(ConvertOpset(), model)
    assert changed and default_opset(out) == 21
    assert_same_outputs(model, out, X)


def test_an_op_newer_than_the_lowering_is_refused_naming_it() -> None:
    model = make_model([helper.make_node("Swish", ["x"], ["y"], name="act")], [("x", [1, 3, 8, 8])], [("y", [1, 3, 8, 8])], opset=24)
    with pytest.raises(StretchError) as err:
        rewritten(ConvertOpset(), model)
    assert err.value.code == "unsupported-opset" and err.value.location.node == "act"
    for word in ("Swish", "'act'", "opset 21", "opset 24"):
        assert word in err.value.message
