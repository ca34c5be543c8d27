"""How real exporters write models: node names TensorFlow refuses (paddle2onnx's `Softmax@0`), `-1` and named
dynamic dimensions, and Reshape targets computed from Shape (issue 20, item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from stretchc.cli import main
from stretchc.frontend.lower import tf_node_names


def _cli(capsys, args: list[str]) -> tuple[int, str, list[dict[str, str]]]:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    rc = main([*args, "--diagnostics=json"])
    cap = capsys.readouterr()
    return rc, cap.out, [json.loads(line) for line in cap.err.splitlines() if line.startswith("{")]


def _paddle_style(clip_bounds: bool = True) -> onnx.ModelProto:
    """A small classifier written as paddle2onnx writes one: input [-1, 3, ?, ?] (batch -1, spatial dims named
    "?"), node names with `@`, the Reshape target computed from the Shape of its input, output [-1, 4]."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3, "conv.w"),
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
        numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv.w"], ["conv_out"], name="Conv@0", pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["conv_out", "lo", "hi"] if clip_bounds else ["conv_out"], ["act"], name="Clip@0"),
        helper.make_node("GlobalAveragePool", ["act"], ["pooled"], name="_pool"),
        helper.make_node("Shape", ["pooled"], ["pooled_shape"], name="Shape@0"),
        helper.make_node("Slice", ["pooled_shape", "zero", "one"], ["batch"], name="Slice@0"),
        helper.make_node("Concat", ["batch", "minus_one"], ["target"], name="Concat@0", axis=0),
        helper.make_node("Reshape", ["pooled", "target"], ["flat"], name="Reshape@0"),
        helper.make_node("Softmax", ["flat"], ["prob"], name="Softmax@0", axis=1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, "?", "?"])
    y = helper.make_tensor_value_info("prob", TensorProto.FLOAT, [-1, 4])
    model = helper.make_model(helper.make_graph(nodes, "paddle", [x], [y], inits), opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    return model


def test_tf_node_names_makes_refused_names_acceptable_and_keeps_the_rest() -> None:
    model = _paddle_style()
    safe = tf_node_names(model)
    assert [n.name for n in safe.graph.node] == ["Conv_0", "Clip_0", "n_pool", "Shape_0", "Slice_0", "Concat_0", "Reshape_0", "Softmax_0"]
    assert model.graph.node[0].name == "Conv@0"  # a copy: the canonical model keeps the exporter's names
    kept = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="block.1/relu>0")], "g", [], []))
    assert tf_node_names(kept).graph.node[0].name == "block.1/relu>0"


def test_a_paddle_style_export_compiles_and_verifies_at_the_given_shape(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "m.onnx"
    onnx.save(_paddle_style(), str(path))
    rc, out, diags = _cli(capsys, ["compile", str(path), "-t", "pixel6", "--input-shape", "x=1,3,8,16", "-o", str(tmp_path / "b"), "--verify"])
    assert rc == 0, diags
    assert "PASS" in out
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    # the output's shape is the one the computed Reshape makes, not its declared [-1, 4] read with 1s
    assert [(o["name"], o["shape"]) for o in manifest["outputs"]] == [("prob", [1, 4])]
    assert [i["shape"] for i in manifest["inputs"]] == [[1, 3, 8, 16]]


def test_a_lowering_error_names_the_node_as_the_exporter_wrote_it(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # onnx2tf's Clip converter fails without bounds; the node is named as in the user's file, not as TF saw it.
    path = tmp_path / "m.onnx"
    onnx.save(_paddle_style(clip_bounds=False), str(path))
    rc, _, diags = _cli(capsys, ["compile", str(path), "--input-shape", "x=1,3,8,16", "-o", str(tmp_path / "b")])
    (err,) = [d for d in diags if d["severity"] == "error"]
    assert rc == 4 and err["code"] == "unsupported-op", err
    assert "'Clip@0'" in err["message"], err


def test_an_output_shape_inference_cannot_work_out_is_refused_saying_so() -> None:
    # What fold-shapes cannot fold (a size that depends on the data) stays unknown; the refusal says which
    # dimensions, rather than reading them as 1 and blaming the lowering.
    import pytest

    from stretchc.errors import StretchError
    from stretchc.frontend.module import _check_unknown_output_dims

    node = helper.make_node("NonZero", ["x"], ["idx"], name="nz")
    y = helper.make_tensor_value_info("idx", TensorProto.INT64, [2, "n"])
    model = helper.make_model(helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])], [y]))
    with pytest.raises(StretchError) as err:
        _check_unknown_output_dims(model, [[2, 4]], [[]], "m.onnx")
    assert err.value.code == "unsupported-op"
    for words in ("'idx'", "NonZero", "'nz'", "[2, '?']", "dimension(s) 1", "[2, 4]"):
        assert words in err.value.message, err.value.message
    _check_unknown_output_dims(model, [[2, 4]], [[("reshape", None)]], "m.onnx")  # a layout fits: nothing to say
