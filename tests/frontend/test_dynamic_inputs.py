"""Inputs whose dimensions exporters leave dynamic (`-1`, named, unnamed): one `--input-shape` serves the compile,
its calibration and its verification, and `stretchc verify` reads the model at the bundle's shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from stretchc.cli import main


def _model(path: Path, dims: list[int | str | None]) -> Path:
    """Conv 3->8 3x3, Relu, global average pool: input x of `dims` (None: a dimension with neither a value nor a name)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, None)
    shape = x.type.tensor_type.shape
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        elif isinstance(d, str):
            dim.dim_param = d
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 1, 1])
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["y"]),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "dims",
    [[-1, 3, -1, -1], ["N", 3, "H", "W"], [None, 3, None, None]],
    ids=["minus-one", "named", "unnamed"],
)
@pytest.mark.slow  # calibrates with TFLite (about 3.5 s per case)
def test_one_input_shape_serves_compile_calibration_and_verify(tmp_path: Path, capsys, dims: list) -> None:  # type: ignore[no-untyped-def,type-arg]
    model = _model(tmp_path / "m.onnx", dims)
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(1).random((8, 3, 24, 40)).astype(np.float32))
    out = tmp_path / "b.stretch"
    rc = main(["compile", str(model), "-t", "mi9", "--input-shape", "x=1,3,24,40", "--calib", str(calib), "--precision", "int8", "--verify", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    rc = main(["verify", str(out), str(model)])
    assert rc == 0, capsys.readouterr().err


def test_a_dynamic_dimension_without_input_shape_says_how_to_give_it(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = _model(tmp_path / "m.onnx", [-1, 3, -1, -1])
    rc = main(["compile", str(model), "-t", "pixel6", "-o", str(tmp_path / "b.stretch")])
    err = capsys.readouterr().err
    assert rc == 3 and "error[dynamic-shape]" in err and "dimension 2 ('-1') is dynamic; give it with --input-shape x=1,3,N,N" in err


def test_an_input_shape_contradicting_a_static_size_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = _model(tmp_path / "m.onnx", [-1, 3, -1, -1])
    rc = main(["compile", str(model), "-t", "pixel6", "--input-shape", "x=1,4,24,40", "-o", str(tmp_path / "b.stretch")])
    err = capsys.readouterr().err
    assert rc == 2 and "size 4 contradicts the model's static size 3" in err
