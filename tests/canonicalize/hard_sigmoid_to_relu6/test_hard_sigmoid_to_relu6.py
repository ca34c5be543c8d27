"""hard-sigmoid-to-relu6: HardSigmoid becomes Mul, Add, Clip(0, 6), Mul, and lowers to RELU6, not RELU_0_TO_1."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from stretchc.frontend.canonicalize import RewriteContext, canonicalize
from stretchc.frontend.canonicalize.hard_sigmoid_to_relu6 import HardSigmoidToRelu6
from tests.canonicalize.helpers import assert_same_outputs, make_model, ops, rewritten

# both saturations and the linear part, for every (alpha, beta) below
X = {"x": np.linspace(-8.0, 8.0, 2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)}


@pytest.mark.parametrize("attrs", [{}, {"alpha": 1.0 / 6.0, "beta": 0.5}, {"alpha": 0.3, "beta": 0.1}])
def test_hard_sigmoid_becomes_a_scaled_clip_with_its_name_and_output(attrs: dict[str, float]) -> None:
    model = make_model([helper.make_node("HardSigmoid", ["x"], ["y"], name="gate@0", **attrs)], [("x", [2, 3, 4, 5])], [("y", [2, 3, 4, 5])])
    changed, out = rewritten(HardSigmoidToRelu6(), model)
    assert changed and ops(out) == ["Mul", "Add", "Clip", "Mul"]
    last = out.graph.node[-1]
    assert (last.name, list(last.output)) == ("gate@0", ["y"])
    assert_same_outputs(model, out, X, tol=1e-6)


def test_before_opset_11_the_clip_bounds_are_attributes() -> None:
    model = make_model([helper.make_node("HardSigmoid", ["x"], ["y"])], [("x", [2, 3, 4, 5])], [("y", [2, 3, 4, 5])], opset=10)
    changed, out = rewritten(HardSigmoidToRelu6(), model)
    (clip,) = [n for n in out.graph.node if n.op_type == "Clip"]
    assert changed and list(clip.input) == ["y.shifted"] and {a.name for a in clip.attribute} == {"min", "max"}
    assert_same_outputs(model, out, X, tol=1e-6)


def test_the_gate_lowers_to_relu6_which_the_dsp_and_the_quantizer_take() -> None:
    from stretchc.frontend.lower import lower_to_tflite
    from stretchc.tflite_io import import_model

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((3, 3, 1, 1)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("HardSigmoid", ["c"], ["g"]), helper.make_node("Mul", ["x", "g"], ["y"])]
    model = make_model(nodes, [("x", [1, 3, 8, 8])], [("y", [1, 3, 8, 8])], opset=13, initializers=[w])
    lowered = import_model(lower_to_tflite(canonicalize(model, RewriteContext(file="m.onnx")), file="m.onnx"))
    # the converter folds the multiply-add into the conv and fuses the clip as its activation
    assert [(n.op, n.attrs.get("fusedActivationFunction")) for n in lowered.nodes] == [("tfl.CONV_2D", "RELU6"), ("tfl.MUL", "NONE"), ("tfl.MUL", "NONE")]
