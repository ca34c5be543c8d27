"""quantize-partitions: a sync point whose shared scale a same-scale op imposes (a concatenation of a tiny branch
with a large one) crosses in its own calibrated scale, and the partition that reads it requantizes it into the
shared scale, so that partition computes what the whole int8 model computes (stretchc/quantize/rewrite.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from stretchc.driver import CompileOptions, compile_model
from stretchc.quantize.calibrate import int8_range
from stretchc.quantize.rewrite import OWN_SCALE_RATIO
from stretchc.runtime.host import HostRuntime
from stretchc.tflite_io import import_model
from stretchc.verify import verify_bundle

from tests.conftest import settings_with

# slow (not in `scripts/test.sh --fast`): lowers and calibrates a small model with TFLite, compiles it twice (about 15 s)
pytestmark = pytest.mark.slow

SHAPE = (1, 3, 16, 16)
# b1 (tiny values) on the GPU, everything else on the CPU: b1's output crosses to the join's partition.
SPLIT = {"stem": "cpu", "s1.b0": "cpu", "s1.b1": "gpu", "s1.join": "cpu", "head": "cpu"}


def _model(path: Path) -> None:
    """stem conv -> two branches (conv + relu; b1's weights 300x smaller) -> concat -> head conv."""
    rng = np.random.default_rng(0)

    def weight(name: str, out: int, inp: int, scale: float) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal((out, inp, 3, 3)) * scale).astype(np.float32), name)

    def bias(name: str, out: int) -> onnx.TensorProto:
        return numpy_helper.from_array(np.zeros(out, np.float32), name)

    inits = [weight("w0", 8, 3, 0.3), bias("b0", 8), weight("wa", 8, 8, 0.3), bias("ba", 8), weight("wb", 8, 8, 0.001), bias("bb", 8)]
    inits += [weight("wh", 4, 16, 0.2), bias("bh", 4)]
    pads = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["s"], **pads), helper.make_node("Relu", ["s"], ["r"]),
        helper.make_node("Conv", ["r", "wa", "ba"], ["a"], **pads), helper.make_node("Relu", ["a"], ["big"]),
        helper.make_node("Conv", ["r", "wb", "bb"], ["b"], **pads), helper.make_node("Relu", ["b"], ["tiny"]),
        helper.make_node("Concat", ["big", "tiny"], ["c"], axis=1),
        helper.make_node("Conv", ["c", "wh", "bh"], ["y"], **pads),
    ]
    graph = helper.make_graph(
        nodes, "tiny-beside-large", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("own-scale")
    _model(d / "m.onnx")
    np.save(d / "calib.npy", np.random.default_rng(1).random((8, *SHAPE[1:])).astype(np.float32))
    out = {}
    for name, place in (("split", SPLIT), ("whole", {})):
        options = CompileOptions(target="mi9", place=place, settings=settings_with("int8", calib=d / "calib.npy"))
        out[name] = compile_model(d / "m.onnx", d / name, options)
    return d, out


def test_the_tiny_branch_crosses_in_its_own_scale_and_is_requantized_where_it_is_read(bundles) -> None:  # type: ignore[no-untyped-def]
    d, res = bundles
    m = res["split"].manifest
    assert [(p["name"], p["processor"], p["precision"]) for p in m["partitions"]] == [
        ("stem", "cpu", "int8"), ("s1.b0", "cpu", "int8"), ("s1.b1", "gpu", "int8"), ("s1.join+head", "cpu", "int8")
    ]
    sync = {s["onnx_tensor"]: s for s in m["sync_points"] if "onnx_tensor" in s}
    tiny, big = sync["tiny"], sync["big"]
    # the large branch keeps the concatenation's scale; the tiny one crosses in a scale at least 16x finer
    assert big["quant"]["scale"][0] >= OWN_SCALE_RATIO * tiny["quant"]["scale"][0]
    assert not big["conversions"]
    assert tiny["conversions"] == [{"partition": "s1.join+head", "op": "QUANTIZE", "from_dtype": "int8", "to_dtype": "int8"}]
    # the join's partition requantizes it into the concatenation's scale right where it reads it
    g = import_model((d / "split" / "partitions" / "s1.join+head.tflite").read_bytes(), tensor_names=True)
    requant = [n for n in g.nodes if n.kind == "QUANTIZE"]
    assert len(requant) == 1 and requant[0].inputs[0].quant.scale == tuple(np.float32(tiny["quant"]["scale"]))
    concat = next(n for n in g.nodes if n.kind == "CONCATENATION")
    assert requant[0].outputs[0] in concat.inputs and requant[0].outputs[0].quant == concat.outputs[0].quant


def test_own_scale_is_tflites_scale_of_the_tensors_range() -> None:
    q = int8_range(-1.0, 3.0)  # scale 4/255, zero point -128 + 1/scale rounded
    assert q.scale[0] == pytest.approx(4 / 255) and q.zero_point == (-64,)
    assert int8_range(0.0, 0.0).scale == (1.0,)


def test_verify_passes_and_outputs_match_the_one_partition_model(bundles) -> None:  # type: ignore[no-untyped-def]
    d, res = bundles
    report = verify_bundle(d / "split", d / "m.onnx", samples=4)
    assert report.ok and not report.unmatched, report.table()
    # every sync point keeps the 20 dB bound with a margin (the tiny branch shared the concat's scale: 3.5 dB)
    rows = {c.onnx_tensor: c for c in report.checks if c.kind == "sync"}
    assert rows["tiny"].sqnr_db >= 40.0, report.table()
    # the split bundle computes what the one-partition int8 model computes
    feeds = [{"x": np.random.default_rng(seed).random(SHAPE).astype(np.float32)} for seed in range(4)]
    split, whole = HostRuntime(d / "split"), HostRuntime(d / "whole")
    for feed in feeds:
        a, b = split.run(feed)["y"], whole.run(feed)["y"]
        scale = res["whole"].manifest["outputs"][0]["quant"]["scale"][0]
        assert np.max(np.abs(a - b)) <= 2 * scale  # within two steps of the output's int8 scale (double rounding)
