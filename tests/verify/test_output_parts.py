"""An output an ONNX Concat writes is held to the accuracy bound part by part (stretchc/frontend/parts.py): a
detector head that concatenates pixel-scale boxes with [0, 1] class scores (as YOLOv8's exporter writes it) has
one int8 scale for both, set by the boxes, which rounds every score to zero while the whole output's SQNR, made by
the boxes, stays high. `verify` checks each part beside the whole, and the accuracy guard of `--precision auto`
measures each part, so a default compile keeps the scores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from stretchc.console import Console, set_console
from stretchc.driver import CompileOptions, compile_model
from stretchc.frontend.parts import concat_parts
from stretchc.verify import verify_bundle

from tests.conftest import settings_with

# slow (not in `scripts/test.sh --fast`): lowers a model and compiles it twice with TFLite's calibrator
pytestmark = pytest.mark.slow

BOXES, CLASSES, SIZE, WIDTH = 4, 6, 48, 32


def detector_head() -> onnx.ModelProto:
    """Two 3 x 3 convolutions, then boxes (a 1 x 1 convolution times 300: pixel coordinates) and class scores (a sigmoid), each
    flattened to [1, C, anchors] and concatenated along the channels: [1, 4 + classes, anchors]."""
    rng = np.random.default_rng(0)

    def weight(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * (2.0 / np.prod(shape[1:])) ** 0.5).astype(np.float32), name)

    anchors = SIZE * SIZE
    inits = [
        weight("w_stem", (WIDTH, 3, 3, 3)), weight("w_mid", (WIDTH, WIDTH, 3, 3)),
        weight("w_box", (BOXES, WIDTH, 1, 1)), weight("w_cls", (CLASSES, WIDTH, 1, 1)),
        numpy_helper.from_array(np.array(300.0, np.float32), "pixels"),
        numpy_helper.from_array(np.array([1, BOXES, anchors], np.int64), "box_shape"),
        numpy_helper.from_array(np.array([1, CLASSES, anchors], np.int64), "cls_shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w_stem"], ["stem"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["stem"], ["stem_act"]),
        helper.make_node("Conv", ["stem_act", "w_mid"], ["mid"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["mid"], ["feat"]),
        helper.make_node("Conv", ["feat", "w_box"], ["box_raw"]),
        helper.make_node("Mul", ["box_raw", "pixels"], ["box_px"]),
        helper.make_node("Reshape", ["box_px", "box_shape"], ["boxes"]),
        helper.make_node("Conv", ["feat", "w_cls"], ["cls_raw"]),
        helper.make_node("Sigmoid", ["cls_raw"], ["cls_sig"]),
        helper.make_node("Reshape", ["cls_sig", "cls_shape"], ["scores"]),
        helper.make_node("Concat", ["boxes", "scores"], ["out"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "detector_head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, BOXES + CLASSES, anchors])], inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parts") / "head.onnx"
    onnx.save(detector_head(), str(path))
    set_console(Console(quiet=True, stream=sys.stderr))
    return path


def test_the_concatenated_output_has_its_parts() -> None:
    assert concat_parts(detector_head()) == {"out": (1, (BOXES, CLASSES))}


def test_verify_refuses_an_int8_head_whose_scores_are_lost(model: Path, tmp_path: Path) -> None:
    result = compile_model(model, tmp_path / "int8.stretch", CompileOptions(target="mi9", settings=settings_with("int8", calib="random")))
    assert {p["precision"] for p in result.manifest["partitions"]} == {"int8"}
    info = result.module.outputs[0]
    assert (info.parts, info.part_axis) == ((BOXES, CLASSES), 1)
    report = verify_bundle(result.output, model, samples=3, seed=0)
    checks = {c.name: c for c in report.checks if c.kind == "output"}
    whole, boxes, scores = checks["out"], checks[f"out[0:{BOXES}]@1"], checks[f"out[{BOXES}:{BOXES + CLASSES}]@1"]
    assert whole.ok and boxes.ok, report.table()  # the boxes make the whole output's SQNR
    assert not scores.ok and scores.sqnr_db is not None and scores.sqnr_db < whole.sqnr_db - 20, report.table()
    assert not report.ok


def test_auto_keeps_every_part_and_verifies(model: Path, tmp_path: Path) -> None:
    result = compile_model(model, tmp_path / "auto.stretch", CompileOptions(target="mi9", settings=settings_with("auto", calib="random", min_sqnr=30.0)))
    report = verify_bundle(result.output, model, samples=3, seed=0)
    assert report.ok, report.table()
    scores = next(c for c in report.checks if c.name == f"out[{BOXES}:{BOXES + CLASSES}]@1")
    assert scores.sqnr_db is not None and scores.sqnr_db >= 20.0, report.table()
