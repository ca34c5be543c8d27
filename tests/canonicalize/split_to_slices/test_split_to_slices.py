"""split-to-slices: an uneven Split becomes one Slice per output, same names; even ones stay."""

from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from stretchc.frontend.canonicalize.split_to_slices import SplitToSlices
from tests.canonicalize.helpers import assert_same_outputs, make_model, ops, rewritten

X = {"x": np.arange(14, dtype=np.float32).reshape(2, 7)}


def test_uneven_num_outputs_becomes_slices() -> None:
    node = helper.make_node("Split", ["x"], ["a", "b", "c"], name="split", axis=1, num_outputs=3)
    model = make_model([node], [("x", [2, 7])], [("a", [2, 3]), ("b", [2, 3]), ("c", [2, 1])])
    changed, out = rewritten(SplitToSlices(), model)
    assert changed and ops(out) == ["Slice"] * 3
    assert [n.output[0] for n in out.graph.node] == ["a", "b", "c"]
    assert_same_outputs(model, out, X)


def test_explicit_sizes_become_slices() -> None:
    sizes = numpy_helper.from_array(np.array([2, 5], np.int64), "sizes")
    model = make_model([helper.make_node("Split", ["x", "sizes"], ["a", "b"], axis=-1)], [("x", [2, 7])], [("a", [2, 2]), ("b", [2, 5])], initializers=[sizes])
    changed, out = rewritten(SplitToSlices(), model)
    assert changed and ops(out) == ["Slice", "Slice"]
    assert "sizes" not in {t.name for t in out.graph.initializer}  # read only by the Split it replaced
    assert_same_outputs(model, out, X)


def test_even_split_stays() -> None:
    node = helper.make_node("Split", ["x"], ["a", "b"], axis=0, num_outputs=2)
    changed, out = rewritten(SplitToSlices(), make_model([node], [("x", [2, 7])], [("a", [1, 7]), ("b", [1, 7])]))
    assert not changed and ops(out) == ["Split"]
