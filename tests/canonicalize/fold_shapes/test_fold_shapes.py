"""fold-shapes: shape computations become initializers, so shapes past a computed Reshape are static."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from stretchc.frontend.canonicalize.fold_shapes import MAX_BYTES, FoldShapes
from tests.canonicalize.helpers import assert_same_outputs, make_model, ops, rewritten


def _ints(name: str, values: list[int]) -> object:
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _dims(model: object, name: str) -> list[int | str]:
    (vi,) = [v for v in [*model.graph.output, *model.graph.value_info] if v.name == name]  # type: ignore[attr-defined]
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim]


def _flatten_then_split_rows() -> object:
    """paddle2onnx's spelling of two Reshapes: each target is computed from the Shape of the tensor before it.

    x [1, 4, 6] -> Reshape to [1, 24] (Shape[:1] ++ [-1]) -> Reshape to [1, 2, 12] (Shape[:1] ++ [2, -1]);
    the second Shape reads the first Reshape's output, whose shape inference only knows once the first
    target is folded (two rounds).
    """
    nodes = [
        helper.make_node("Shape", ["x"], ["s0"], name="shape@0"),
        helper.make_node("Slice", ["s0", "zero", "one"], ["batch0"], name="slice@0"),
        helper.make_node("Cast", ["batch0"], ["batch0_i32"], name="cast@0", to=TensorProto.INT32),
        helper.make_node("Cast", ["batch0_i32"], ["batch0_i64"], name="cast@1", to=TensorProto.INT64),
        helper.make_node("Concat", ["batch0_i64", "minus_one"], ["target0"], name="concat@0", axis=0),
        helper.make_node("Reshape", ["x", "target0"], ["flat"], name="reshape@0"),
        helper.make_node("Shape", ["flat"], ["s1"], name="shape@1"),
        helper.make_node("Slice", ["s1", "zero", "one"], ["batch1"], name="slice@1"),
        helper.make_node("Concat", ["batch1", "two_rest"], ["target1"], name="concat@1", axis=0),
        helper.make_node("Reshape", ["flat", "target1"], ["rows"], name="reshape@1"),
        helper.make_node("Relu", ["rows"], ["y"], name="relu"),
    ]
    inits = [_ints("zero", [0]), _ints("one", [1]), _ints("minus_one", [-1]), _ints("two_rest", [2, -1])]
    return make_model(nodes, [("x", [1, 4, 6])], [("y", ["n", "rows", "cols"])], opset=13, initializers=inits)


def test_computed_reshape_targets_fold_until_every_shape_is_static() -> None:
    model = _flatten_then_split_rows()
    changed, out = rewritten(FoldShapes(), model)
    assert changed and ops(out) == ["Reshape", "Reshape", "Relu"]
    targets = {t.name: numpy_helper.to_array(t).tolist() for t in out.graph.initializer}
    assert targets == {"target0": [1, -1], "target1": [1, 2, -1]}  # named as the tensors they replace
    assert _dims(out, "y") == [1, 2, 12]
    assert_same_outputs(model, out, {"x": np.arange(24, dtype=np.float32).reshape(1, 4, 6) - 10})


def test_an_anchor_grid_computed_from_shapes_folds() -> None:
    # YOLO-style: Range over the width read from Shape; 2100 anchors' worth of floats is well below MAX_BYTES.
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "last"], ["w"], axis=0),
        helper.make_node("Cast", ["w"], ["wf"], to=TensorProto.FLOAT),
        helper.make_node("Range", ["start", "wf", "step"], ["grid"]),
        helper.make_node("Add", ["x", "grid"], ["y"]),
    ]
    scalars = {"last": np.array(3, np.int64), "start": np.array(0.5, np.float32), "step": np.array(1.0, np.float32)}
    inits = [numpy_helper.from_array(v, k) for k, v in scalars.items()]
    model = make_model(nodes, [("x", [1, 2, 3, 2100])], [("y", ["n", "c", "h", "w"])], opset=13, initializers=inits)
    changed, out = rewritten(FoldShapes(), model)
    assert changed and ops(out) == ["Add"]
    assert _dims(out, "y") == [1, 2, 3, 2100]
    assert_same_outputs(model, out, {"x": np.zeros((1, 2, 3, 2100), np.float32)})


def test_what_must_stay_computed_stays() -> None:
    big = int(np.sqrt(MAX_BYTES // 4)) + 1
    nodes = [
        # a model output stays computed by a node, even when its inputs are constant
        helper.make_node("Shape", ["x"], ["shape_out"]),
        # too big to copy into the model: a weight transform onnxsim folds anyway
        helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
        helper.make_node("ReduceSum", ["wt"], ["wsum"], keepdims=0),
        # random values are not constants
        helper.make_node("RandomNormalLike", ["x"], ["noise"]),
        helper.make_node("Add", ["x", "noise"], ["y"]),
    ]
    w = numpy_helper.from_array(np.ones((big, big), np.float32), "w")
    outputs = [("shape_out", TensorProto.INT64, [2]), ("wsum", TensorProto.FLOAT, []), ("y", TensorProto.FLOAT, [2, 3])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])], [helper.make_tensor_value_info(*o) for o in outputs], [w]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    changed, out = rewritten(FoldShapes(), model)
    assert not changed and ops(out) == ops(model)


def test_nothing_to_fold_nothing_changed() -> None:
    changed, _ = rewritten(FoldShapes(), make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [2])], [("y", [2])]))
    assert not changed
