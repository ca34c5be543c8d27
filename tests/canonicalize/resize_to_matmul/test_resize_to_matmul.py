"""resize-to-matmul: Resize configurations onnx2tf lowers wrongly become exact per-axis MatMuls."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from stretchc.frontend.canonicalize.resize_to_matmul import ResizeToMatmul, native
from tests.canonicalize.helpers import make_model, ops, outputs, rewritten

X = np.random.default_rng(0).standard_normal((1, 2, 5, 6)).astype(np.float32)


def _resize(out_shape: list[int], *, scales: list[float] | None = None, sizes: list[int] | None = None, roi: list[float] | None = None, **attrs: object) -> object:
    inits, names = [], ["x", "", "", ""]
    for k, (name, value, dtype) in enumerate((("roi", roi, np.float32), ("scales", scales, np.float32), ("sizes", sizes, np.int64)), start=1):
        if value is not None:
            inits.append(numpy_helper.from_array(np.array(value, dtype), name))
            names[k] = name
    while not names[-1]:
        names.pop()
    return make_model([helper.make_node("Resize", names, ["y"], name="resize", **attrs)], [("x", [1, 2, 5, 6])], [("y", out_shape)], opset=19, initializers=inits)


CASES = {
    "cubic": dict(out_shape=[1, 2, 10, 12], scales=[1, 1, 2, 2], mode="cubic"),
    "cubic-antialias-down": dict(out_shape=[1, 2, 3, 3], scales=[1, 1, 0.6, 0.5], mode="cubic", antialias=1),
    "linear-align-corners": dict(out_shape=[1, 2, 9, 13], sizes=[1, 2, 9, 13], mode="linear", coordinate_transformation_mode="align_corners"),
    "nearest-ceil-half-pixel": dict(out_shape=[1, 2, 7, 9], sizes=[1, 2, 7, 9], mode="nearest", nearest_mode="ceil"),
    "crop-and-resize-extrapolated": dict(
        out_shape=[1, 2, 4, 4], sizes=[4, 4], roi=[0.4, 0.6, 1.3, 1.2], axes=[2, 3], mode="linear",
        coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=10.0,
    ),
    "keep-aspect-not-smaller": dict(out_shape=[1, 2, 4, 5], sizes=[4, 4], axes=[2, 3], mode="nearest", keep_aspect_ratio_policy="not_smaller"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rewritten_resize_matches_the_reference(name: str) -> None:
    model = _resize(**CASES[name])  # type: ignore[arg-type]
    changed, out = rewritten(ResizeToMatmul(), model)
    assert changed and "Resize" not in ops(out) and "MatMul" in ops(out)
    assert out.graph.node[-1].output[0] == "y"
    (want,) = ReferenceEvaluator(model).run(None, {"x": X})
    (got,) = outputs(out, {"x": X})
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_configurations_onnx2tf_lowers_right_stay() -> None:
    model = _resize([1, 2, 10, 12], scales=[1, 1, 2, 2], mode="nearest")
    changed, out = rewritten(ResizeToMatmul(), model)
    assert not changed and ops(out) == ["Resize"]


def test_native_needs_the_scale_to_be_the_size_ratio() -> None:
    linear = {"mode": "linear"}
    assert native(linear, (1, 1, 2, 4), (1, 1, 4, 8), np.array([1, 1, 2, 2], np.float32))
    assert not native(linear, (1, 1, 2, 4), (1, 1, 1, 2), np.array([1, 1, 0.6, 0.6], np.float32))
