"""explicit-parameters: kernel_shape, SAME_LOWER and output_shape pads, and empty reduction axes written out."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from stretchc.frontend.canonicalize.explicit_parameters import ExplicitParameters, same_lower_pads
from tests.canonicalize.helpers import assert_same_outputs, make_model, rewritten

RNG = np.random.default_rng(0)


def _attrs(node: object) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}  # type: ignore[attr-defined]


def test_same_lower_pads_put_the_larger_half_first() -> None:
    assert same_lower_pads((7, 8), [3, 2], [2, 2], [1, 1]) == [1, 0, 1, 0]
    assert same_lower_pads((5,), [4], [1], [1]) == [2, 1]


@pytest.mark.parametrize("op", ["Conv", "MaxPool", "AveragePool"])
def test_same_lower_becomes_pads(op: str) -> None:
    w = numpy_helper.from_array(RNG.standard_normal((2, 3, 4, 4)).astype(np.float32), "w")
    inputs, inits, attrs = (["x", "w"], [w], {}) if op == "Conv" else (["x"], [], {"kernel_shape": [4, 4]})
    out_c = 2 if op == "Conv" else 3
    node = helper.make_node(op, inputs, ["y"], name="n", auto_pad="SAME_LOWER", strides=[2, 2], **attrs)
    model = make_model([node], [("x", [1, 3, 7, 8])], [("y", [1, out_c, 4, 4])], initializers=inits)
    changed, out = rewritten(ExplicitParameters(), model)
    assert changed
    attrs_out = _attrs(out.graph.node[0])
    assert "auto_pad" not in attrs_out and attrs_out["pads"] == [2, 1, 1, 1]
    assert_same_outputs(model, out, {"x": RNG.standard_normal((1, 3, 7, 8)).astype(np.float32)})


def test_conv_transpose_gets_kernel_shape_and_output_shape_pads() -> None:
    w = numpy_helper.from_array(RNG.standard_normal((1, 2, 3, 3)).astype(np.float32), "w")
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[3, 2], output_shape=[10, 8])
    model = make_model([node], [("x", [1, 1, 3, 3])], [("y", [1, 2, 10, 8])], initializers=[w])
    changed, out = rewritten(ExplicitParameters(), model)
    assert changed
    attrs = _attrs(out.graph.node[0])
    assert attrs["kernel_shape"] == [3, 3] and "output_shape" not in attrs
    assert attrs["pads"] == [0, 0, 0, 0] and attrs["output_padding"] == [1, 1]
    assert_same_outputs(model, out, {"x": RNG.standard_normal((1, 1, 3, 3)).astype(np.float32)})


def test_empty_reduction_axes_mean_every_axis() -> None:
    empty = numpy_helper.from_array(np.array([], np.int64), "axes")
    model = make_model([helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean", keepdims=1)], [("x", [3, 2, 2])], [("y", [1, 1, 1])], initializers=[empty])
    changed, out = rewritten(ExplicitParameters(), model)
    assert changed
    axes = {t.name: numpy_helper.to_array(t) for t in out.graph.initializer}[out.graph.node[0].input[1]]
    assert list(axes) == [0, 1, 2]
    assert_same_outputs(model, out, {"x": RNG.standard_normal((3, 2, 2)).astype(np.float32)})


def test_explicit_nodes_are_left_alone() -> None:
    w = numpy_helper.from_array(RNG.standard_normal((2, 3, 3, 3)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], auto_pad="SAME_UPPER")
    changed, _ = rewritten(ExplicitParameters(), make_model([node], [("x", [1, 3, 8, 8])], [("y", [1, 2, 8, 8])], initializers=[w]))
    assert not changed
