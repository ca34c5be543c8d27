"""expand-prelu: PRelu with a slope onnx2tf cannot shape becomes Where(Less(x, 0), Mul(x, slope), x)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from stretchc.frontend.canonicalize.expand_prelu import ExpandPrelu, per_channel
from tests.canonicalize.helpers import assert_same_outputs, make_model, ops, rewritten


@pytest.mark.parametrize(("x", "slope", "expected"), [((1, 4, 5, 5), (4, 1, 1), True), ((1, 4, 5, 5), (1,), True), ((3, 4, 5), (5,), False), ((3, 4, 5), (3, 4, 5), False)])
def test_per_channel(x: tuple[int, ...], slope: tuple[int, ...], expected: bool) -> None:
    assert per_channel(x, slope) is expected


def test_broadcast_slope_is_expanded_keeping_the_output() -> None:
    slope = numpy_helper.from_array(np.array([0.1, 0.2, 0.3, 0.4, 0.5], np.float32), "slope")
    model = make_model([helper.make_node("PRelu", ["x", "slope"], ["y"], name="act")], [("x", [3, 4, 5])], [("y", [3, 4, 5])], opset=16, initializers=[slope])
    changed, out = rewritten(ExpandPrelu(), model)
    assert changed and ops(out) == ["Less", "Mul", "Where"]
    assert out.graph.node[-1].name == "act" and list(out.graph.node[-1].output) == ["y"]
    assert_same_outputs(model, out, {"x": np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)})


def test_per_channel_slope_stays() -> None:
    slope = numpy_helper.from_array(np.full((4, 1, 1), 0.1, np.float32), "slope")
    model = make_model([helper.make_node("PRelu", ["x", "slope"], ["y"])], [("x", [1, 4, 5, 5])], [("y", [1, 4, 5, 5])], opset=16, initializers=[slope])
    changed, out = rewritten(ExpandPrelu(), model)
    assert not changed and ops(out) == ["PRelu"]
