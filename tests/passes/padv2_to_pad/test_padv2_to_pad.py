"""padv2-to-pad: a padded max-pool of a RELU output gets zero PAD (exact), and nothing else is touched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from stretchc.compile_settings import CompileSettings
from stretchc.driver import CompileOptions, compile_model
from stretchc.errors import StretchError
from stretchc.passes import DEFAULT_PIPELINE
from stretchc.runtime.host import HostRuntime
from stretchc.verify import verify_bundle

C, H = 8, 32


def stem_model(path: Path, *, relu: bool = True) -> Path:
    """Conv 3x3 (-> Relu) -> MaxPool 3x3 / stride 2 / pads 1 (a ResNet stem), then a 1x1 conv."""
    rng = np.random.default_rng(0)
    pooled_in = "r1" if relu else "c1"
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        *([helper.make_node("Relu", ["c1"], ["r1"])] if relu else []),
        helper.make_node("MaxPool", [pooled_in], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["output"], kernel_shape=[1, 1]),
    ]
    inits = [
        numpy_helper.from_array((rng.standard_normal((C, 3, 3, 3)) * 0.3).astype(np.float32), "w1"),
        numpy_helper.from_array((rng.standard_normal(C) * 0.3).astype(np.float32), "b1"),
        numpy_helper.from_array((rng.standard_normal((C, C, 1, 1)) * 0.3).astype(np.float32), "w2"),
        numpy_helper.from_array((rng.standard_normal(C) * 0.3).astype(np.float32), "b2"),
    ]
    graph = helper.make_graph(
        nodes, "stem",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, H, H])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, C, H // 2, H // 2])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="stretchc-tests")
    onnx.checker.check_model(model)
    out = path / ("stem.onnx" if relu else "stem_norelu.onnx")
    onnx.save(model, str(out))
    return out


def _kinds(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [n.kind for n in result.module.graph.nodes]


def test_relu_stem_pads_with_zero_and_matches_onnx_runtime(tmp_path: Path) -> None:
    model = stem_model(tmp_path)
    new = compile_model(model, tmp_path / "new.stretch", CompileOptions(target="mi9", use_cache=False))
    assert "PADV2" not in _kinds(new) and "PAD" in _kinds(new)
    pad = next(n for n in new.module.graph.nodes if n.kind == "PAD")
    assert len(pad.inputs) == 2 and pad.outputs[0].users[0].kind == "MAX_POOL_2D"
    old = compile_model(model, tmp_path / "old.stretch", CompileOptions(target="mi9", pipeline=DEFAULT_PIPELINE.replace("padv2-to-pad,", "")))
    assert "PADV2" in _kinds(old)
    # identical numerics to the PADV2 lowering (on inputs with negative values too), and to ONNX Runtime
    rng = np.random.default_rng(3)
    a, b = HostRuntime(tmp_path / "new.stretch"), HostRuntime(tmp_path / "old.stretch")
    for _ in range(3):
        x = {"input": (rng.standard_normal((1, 3, H, H)) * 2).astype(np.float32)}
        np.testing.assert_array_equal(a.run(x)["output"], b.run(x)["output"])
    report = verify_bundle(tmp_path / "new.stretch", model, samples=3)
    assert report.ok, report.table()


def test_not_applied_when_the_input_may_be_negative(tmp_path: Path) -> None:
    model = stem_model(tmp_path, relu=False)
    result = compile_model(model, tmp_path / "b.stretch", CompileOptions(target="mi9"))
    assert "PADV2" in _kinds(result)
    assert verify_bundle(tmp_path / "b.stretch", model, samples=2).ok


@pytest.mark.slow  # calibrates with TFLite (about 3 s)
def test_relu_stem_runs_on_the_dsp(tmp_path: Path) -> None:
    model = stem_model(tmp_path)
    result = compile_model(model, tmp_path / "d.stretch", CompileOptions(target="mi9", place={"main": "dsp"}, settings=CompileSettings(calib="random")))
    assert [p["processor"] for p in result.manifest["partitions"]] == ["dsp"]
    assert "PADV2" not in _kinds(result)


def test_without_the_pass_the_dsp_refuses_padv2(tmp_path: Path) -> None:
    model = stem_model(tmp_path)
    with pytest.raises(StretchError, match="PADV2"):
        compile_model(model, tmp_path / "d.stretch", CompileOptions(
            target="mi9", place={"main": "dsp"}, settings=CompileSettings(calib="random"), pipeline=DEFAULT_PIPELINE.replace("padv2-to-pad,", "")))


def _ir(*, act: str = "RELU", const: float = -3.4e38, pad: int = 1, pool: str = "MAX_POOL_2D"):  # type: ignore[no-untyped-def]
    from stretchc.ir import Graph, Module, Node, Value

    g = Graph()
    x = Value("x", (1, 8, 8, 4), "float32")
    w = Value("w", (4, 1, 1, 4), "float32", data=np.ones((4, 1, 1, 4), np.float32))
    y = Value("y", (1, 8, 8, 4), "float32")
    pads = Value("pads", (4, 2), "int32", data=np.array([[0, 0], [pad, pad], [pad, pad], [0, 0]], np.int32))
    c = Value("c", (), "float32", data=np.array(const, np.float32))
    padded = Value("padded", (1, 8 + 2 * pad, 8 + 2 * pad, 4), "float32")
    out = Value("out", (1, 4, 4, 4), "float32")
    g.inputs = [x]
    g.nodes = [
        Node("tfl.CONV_2D", [x, w, None], [y], {"fusedActivationFunction": act, "version": 1}),
        Node("tfl.PADV2", [y, pads, c], [padded], {"options": "PadV2Options", "version": 1}),
        Node(f"tfl.{pool}", [padded], [out], {"padding": "VALID", "filterHeight": 3, "filterWidth": 3, "strideH": 2, "strideW": 2, "version": 1}),
    ]
    g.outputs = [out]
    return Module(graph=g)


@pytest.mark.parametrize(
    "kwargs, rewritten",
    [
        ({}, True),
        ({"act": "RELU6"}, True),
        ({"act": "NONE"}, False),  # may be negative
        ({"act": "RELU_N1_TO_1"}, False),
        ({"const": 0.5}, False),  # a positive pad value could win a window
        ({"pad": 3}, False),  # a window could lie wholly in the padding
        ({"pool": "AVERAGE_POOL_2D"}, False),
    ],
)
def test_rewrite_conditions(kwargs: dict, rewritten: bool) -> None:  # type: ignore[type-arg]
    from stretchc.passes.padv2_to_pad import Padv2ToPad
    from stretchc.passmanager import PassContext

    module = _ir(**kwargs)
    assert Padv2ToPad().run(module, PassContext()) is rewritten
    module.verify()
    kinds = [n.kind for n in module.graph.nodes]
    assert ("PAD" in kinds) is rewritten and ("PADV2" in kinds) is not rewritten
    if rewritten:
        pad = module.graph.nodes[1]
        assert [v.name for v in pad.inputs] == ["y", "pads"] and pad.attrs == {"options": "PadOptions", "version": 1}  # type: ignore[union-attr]
