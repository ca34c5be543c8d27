"""quantize-partitions: int8 partitions from one calibration of the whole model (TFLite's own numbers), int8 sync
points whose one scale producer and consumers share, one conversion per boundary that changes dtype, the Hexagon
rules on DSP partitions only, the uint8 form, and the model's I/O dtype."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from stretchc.analyses import Arena, Quantization
from stretchc.backends.dsp.op_rules import check_node
from stretchc.compile_settings import CompileSettings
from stretchc.console import Console
from stretchc.driver import CompileOptions, _lower, compile_model
from stretchc.errors import StretchError
from stretchc.frontend.module import build_module
from stretchc.frontend.validate import load_model
from stretchc.ir import Module
from stretchc.passmanager import PassContext, PassManager, parse_pipeline
from stretchc.runtime.host import HostRuntime
from stretchc.targets import load_target
from stretchc.tflite_io import emit_model, import_model
from stretchc.verify import verify_bundle

from tests.conftest import REPO, example_placement, settings_with
from tests.backends.dsp.nets import build

EXAMPLE = REPO / "examples" / "branchy.onnx"  # input [1, 3, 160, 160]
SHAPE = (3, 160, 160)

# slow (not in `scripts/test.sh --fast`): every test calibrates the example (or a builder model) with TFLite and compiles it int8 (about 36 s)
pytestmark = pytest.mark.slow


def _calib(path: Path, n: int, seed: int, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    arr = np.random.default_rng(seed).random((n, *shape)).astype(np.float32)
    np.save(path, arr)
    return arr


def _settings(precision: str = "int8", **fields: object) -> CompileSettings:
    return settings_with(precision, **fields)  # type: ignore[no-any-return]


def _ops(bundle: Path, partition: str) -> list:  # type: ignore[type-arg]
    return import_model((bundle / "partitions" / f"{partition}.tflite").read_bytes()).nodes


def _manifest(bundle: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((bundle / "manifest.json").read_text())


def test_bundle_computes_what_tflites_own_whole_model_quantization_computes(tmp_path: Path) -> None:
    """An all-int8 bundle is TFLite's own full-integer quantization of the whole model, cut at the sync points."""
    import tensorflow as tf
    from tensorflow.lite.python import convert
    from tensorflow.lite.python.optimize import calibrator

    calib = _calib(tmp_path / "calib.npy", 16, 0)
    res = compile_model(EXAMPLE, tmp_path / "b", CompileOptions(target="pixel6", place={"s1.b1": "gpu"}, settings=_settings(calib=tmp_path / "calib.npy")))
    assert {p["precision"] for p in res.manifest["partitions"]} == {"int8"}
    # The reference, straight from TensorFlow: the float graph the compiler quantizes, calibrated and quantized.
    model = load_model(EXAMPLE)
    module = build_module(model, _lower(model, EXAMPLE, CompileOptions()), name="ref", file=str(EXAMPLE))
    PassManager(parse_pipeline("unshare-pads,find-branches,padv2-to-pad")).run(module, PassContext())
    g = module.graph
    float_model = emit_model(g.nodes, g.inputs, g.outputs)
    nhwc = calib.transpose(0, 2, 3, 1)
    calibrated = calibrator.Calibrator(float_model).calibrate(lambda: ([x[None]] for x in nhwc))
    ref = tf.lite.Interpreter(model_content=convert.mlir_quantize(calibrated, fully_quantize=True))
    ref.allocate_tensors()
    (i_det,), (o_det,) = ref.get_input_details(), ref.get_output_details()
    (s_in, z_in), (s_out, z_out) = i_det["quantization"], o_det["quantization"]
    rt = HostRuntime(tmp_path / "b")
    close = total = 0
    for x in np.random.default_rng(7).random((8, 1, *SHAPE)).astype(np.float32):
        got = rt.run({"input": x})["logits"]
        q = np.clip(np.sign(x / s_in) * np.floor(np.abs(x / s_in) + 0.5) + z_in, -128, 127).astype(np.int8)
        ref.set_tensor(i_det["index"], q.transpose(0, 2, 3, 1))
        ref.invoke()
        want = (ref.get_tensor(o_det["index"]).astype(np.float32) - z_out) * s_out
        close += int(np.sum(np.abs(got - want) <= s_out * 1.001))
        total += got.size
    assert close / total >= 0.99


@pytest.fixture(scope="module")
def int8_dsp(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("int8_dsp")
    _calib(d / "calib.npy", 8, 1)
    options = CompileOptions(target="mi9", place=example_placement({"s1.b1": "dsp", "s2.b2": "dsp"}), settings=_settings(calib=d / "calib.npy"))
    return compile_model(EXAMPLE, d / "b", options)


def test_int8_sync_points_share_one_scale_and_partitions_convert_nothing_inside(int8_dsp) -> None:  # type: ignore[no-untyped-def]
    bundle, m = int8_dsp.output, int8_dsp.manifest
    assert {p["processor"] for p in m["partitions"]} == {"cpu", "dsp"}
    assert {p["precision"] for p in m["partitions"]} == {"int8"}
    io = {i["sync"] for i in m["inputs"]} | {o["sync"] for o in m["outputs"]}
    slots = {s["name"]: s for s in m["buffers"]["slots"]}
    tensors: dict[tuple[str, str], tuple[str, object]] = {}  # (partition, sync) -> (dtype, scale) in the partition file
    for p in m["partitions"]:
        g = import_model((bundle / p["file"]).read_bytes(), tensor_names=True)
        by_name = {v.name: v for v in g.values()}
        for b in [*p["inputs"], *p["outputs"]]:
            v = by_name[b["tensor"]]
            tensors[(p["name"], b["sync"])] = (v.dtype, v.quant.scale if v.quant else None)
        assert not [n for n in g.nodes if n.kind in ("QUANTIZE", "DEQUANTIZE")], p["name"]
    # the model's input and output are held int8: the runtime converts them at the model boundary
    for io_entry, op in ((m["inputs"][0], "QUANTIZE"), (m["outputs"][0], "DEQUANTIZE")):
        assert io_entry["dtype"] == "float32" and io_entry["bundle_dtype"] == "int8" and io_entry["quant"] is not None
        sp = next(s for s in m["sync_points"] if s["name"] == io_entry["sync"])
        assert [(c["partition"], c["op"]) for c in sp["conversions"]] == [("host", op)]
    for s in m["sync_points"]:
        if s["name"] in io:
            continue
        assert slots[s["slot"]]["dtype"] == "int8" and s["quant"] is not None and not s["conversions"]
        for part in [s["producer"], *s["consumers"]]:
            assert tensors[(part, s["name"])] == ("int8", tuple(s["quant"]["scale"])), (s["name"], part)
    arena = int8_dsp.analyses.get(Arena)
    assert arena.bytes == m["buffers"]["arena_size"] and arena.bytes <= 0.3 * arena.float_bytes
    for name in ("s1.b1", "s2.b2"):
        assert all(check_node(n, quantized=True) is None for n in _ops(bundle, name))
    report = verify_bundle(bundle, EXAMPLE, samples=2)
    assert report.ok and not report.unmatched, report.table()


def test_hexagon_rules_apply_to_dsp_partitions_only(int8_dsp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A fully connected layer gets per-tensor weights on the DSP (the delegate reads scale[0]), per-channel on the CPU."""

    def fc(bundle: Path, partition: str):  # type: ignore[no-untyped-def]
        return next(n for n in _ops(bundle, partition) if n.kind == "FULLY_CONNECTED").inputs[1].quant

    assert fc(int8_dsp.output, "s2.join+head").per_axis  # head on the CPU
    _calib(tmp_path / "calib.npy", 8, 1)
    res = compile_model(EXAMPLE, tmp_path / "b", CompileOptions(target="mi9", place=example_placement({"head": "dsp"}), settings=_settings(calib=tmp_path / "calib.npy")))
    assert res.manifest["partitions"][-1]["name"] == "head" and not fc(tmp_path / "b", "head").per_axis
    conv = next(n for n in _ops(int8_dsp.output, "s1.b1") if n.kind == "CONV_2D")
    assert conv.inputs[1].quant.per_axis  # DSP convolutions stay per channel


def _partitioned(target: str, place: dict[str, str]) -> tuple[Module, PassContext]:
    """The example up to outline-partitions, float precisions."""
    model = load_model(EXAMPLE)
    module = build_module(model, _lower(model, EXAMPLE, CompileOptions()), name="example", file=str(EXAMPLE))
    # every region its own partition (grouping=regions), so each can be given its own precision below
    pipeline = parse_pipeline("unshare-pads,find-branches,padv2-to-pad,assign-delegates{grouping=regions},ungroup-convs,outline-partitions")
    later = parse_pipeline("quantize-partitions,insert-sync-points,emit-bundle")
    ctx = PassContext(
        target=load_target(target), place=place, console=Console(quiet=True, stream=sys.stderr), settings=_settings("float", calib="random"),
        pipeline=[*pipeline, *later],
    )
    PassManager(pipeline).run(module, ctx)
    return module, ctx


def test_mixed_precisions_convert_each_boundary_tensor_once(tmp_path: Path) -> None:
    module, ctx = _partitioned("mi9", {"s2.b2": "dsp"})
    int8 = {"stem", "s1.b1", "s2.b0", "s2.b1", "s2.b2"}
    for p in module.partitions:
        if p.name in int8:
            p.precision = "int8"
            for n in module.nodes_of(partition=p.name):
                n.precision = "int8"
    ctx.output_dir = tmp_path / "b"
    PassManager(parse_pipeline("quantize-partitions,insert-sync-points,emit-bundle")).run(module, ctx)
    m = _manifest(tmp_path / "b")
    conv = {s["name"]: s["conversions"] for s in m["sync_points"]}
    slot = {s["name"]: next(x["dtype"] for x in m["buffers"]["slots"] if x["name"] == s["slot"]) for s in m["sync_points"]}
    by_edge = {(s["producer"], tuple(s["consumers"])): s["name"] for s in m["sync_points"]}
    # stem (int8) forks to s1.b0 (float) and s1.b1 (int8): the stem dequantizes once, for s1.b0
    assert slot[by_edge[("stem", ("s1.b1",))]] == "int8" and not conv[by_edge[("stem", ("s1.b1",))]]
    assert conv[by_edge[("stem", ("s1.b0",))]] == [{"partition": "stem", "op": "DEQUANTIZE", "from_dtype": "int8", "to_dtype": "float32"}]
    # s1.join (float) forks to two int8 branches and a float one: one QUANTIZE, read by both int8 branches
    fork = by_edge[("s1.join", ("s2.b0", "s2.b1", "s2.b2"))]
    assert slot[fork] == "int8" and conv[fork] == [{"partition": "s1.join", "op": "QUANTIZE", "from_dtype": "float32", "to_dtype": "int8"}]
    # the DSP cannot dequantize: s2.b2's int8 output is converted by its one consumer
    dsp_out = by_edge[("s2.b2", ("s2.join+head",))]
    assert slot[dsp_out] == "int8" and conv[dsp_out] == [{"partition": "s2.join+head", "op": "DEQUANTIZE", "from_dtype": "int8", "to_dtype": "float32"}]
    assert not [n for n in _ops(tmp_path / "b", "s2.b2") if n.kind in ("QUANTIZE", "DEQUANTIZE")]
    in_partitions = sum(1 for c in conv.values() for x in c if x["partition"] != "host")
    assert in_partitions == sum(1 for n in module.graph.nodes if n.kind in ("QUANTIZE", "DEQUANTIZE"))
    report = verify_bundle(tmp_path / "b", EXAMPLE, samples=2)
    assert report.ok and not report.unmatched, report.table()


def test_uint8_form_on_the_dsp_requantizes_at_its_boundaries(tmp_path: Path) -> None:
    options = CompileOptions(target="mi9", place=example_placement({"s1.b1": "dsp"}), settings=_settings(calib="random", backend_options={"dsp": {"dtype": "uint8"}}))
    res = compile_model(EXAMPLE, tmp_path / "b", options)
    part = next(p for p in res.manifest["partitions"] if p["name"] == "s1.b1")
    assert part["precision"] == "uint8" and res.analyses.get(Quantization).partitions["s1.b1"]["weights"] == "per-tensor"
    ops = _ops(tmp_path / "b", "s1.b1")
    inner = [n for n in ops if n.kind != "QUANTIZE"]
    assert inner and all(n.outputs[0].dtype == "uint8" and check_node(n, quantized=True) is None for n in inner)
    # its int8 neighbours: the uint8 output is requantized to int8 once, inside the DSP partition (8-bit to 8-bit
    # runs on the delegate); its int8 input by the stem
    conversions = [c for s in res.manifest["sync_points"] for c in s["conversions"]]
    assert {"partition": "s1.b1", "op": "QUANTIZE", "from_dtype": "uint8", "to_dtype": "int8"} in conversions
    assert {"partition": "stem", "op": "QUANTIZE", "from_dtype": "int8", "to_dtype": "uint8"} in conversions
    report = verify_bundle(tmp_path / "b", EXAMPLE, samples=2)
    assert report.ok and not report.unmatched, report.table()


def test_uint8_twin_computes_the_same_numbers(tmp_path: Path) -> None:
    """The uint8 form is the per-tensor int8 partition shifted by 128: bit-identical results."""
    from stretchc.backends.dsp.quantization import to_uint8
    from stretchc.litert import load_interpreter
    from stretchc.native import NativeProcess
    from stretchc.quantize.calibrate import WholeModel
    from stretchc.quantize.rewrite import Forms, adopt, partition_nodes
    from stretchc.whole_model import graph_inputs

    module, _ = _partitioned("mi9", {})
    part = module.partition("s1.b1")
    rng = np.random.default_rng(0)
    samples = [graph_inputs(module, {"input": rng.random((1, *SHAPE)).astype(np.float32)}) for _ in range(8)]
    with NativeProcess() as native:
        whole = WholeModel(module, samples, native)
        variant = whole.variant("per-tensor")
    a = None
    results = {}
    for dtype in ("int8", "uint8"):
        forms = Forms(module, variant)
        nodes = partition_nodes(module, part.name, import_model(emit_model(*_graph(variant)), tensor_names=True))
        adopt(nodes, forms, dtype, part.name)
        if dtype == "uint8":
            to_uint8(nodes, partition=part.name)
        x, y = forms.get(part.inputs[0], dtype), forms.get(part.outputs[0], dtype)
        it = load_interpreter(model_content=emit_model(nodes, [x], [y]))
        if a is None:
            a = rng.integers(-128, 128, x.shape).astype(np.int8)
        it.set_tensor(it.get_input_details()[0]["index"], a if dtype == "int8" else (a.astype(np.int16) + 128).astype(np.uint8))
        it.invoke()
        results[dtype] = it.get_tensor(it.get_output_details()[0]["index"]).astype(np.int16)
    assert np.array_equal(results["int8"] + 128, results["uint8"])


def _graph(g):  # type: ignore[no-untyped-def]
    """A fresh copy of a variant graph (adopting its ops takes them over)."""
    return g.nodes, g.inputs, g.outputs


def test_io_dtype_int8_leaves_the_conversions_to_the_runtime(tmp_path: Path) -> None:
    options = CompileOptions(target="pixel6", settings=_settings(calib="random", io_dtype="int8"))
    res = compile_model(EXAMPLE, tmp_path / "b", options)
    m = res.manifest
    for io in [*m["inputs"], *m["outputs"]]:
        assert io["dtype"] == "float32" and io["bundle_dtype"] == "int8" and io["quant"] is not None
    for p in m["partitions"]:
        assert not [n for n in _ops(tmp_path / "b", p["name"]) if n.kind in ("QUANTIZE", "DEQUANTIZE")]
    report = verify_bundle(tmp_path / "b", EXAMPLE, samples=2)
    assert report.ok and not report.unmatched, report.table()


@pytest.mark.parametrize("net", ["resnet", "effnet-lite"])
def test_builder_models_compile_for_mi9_with_int8_dsp(net: str, tmp_path: Path) -> None:
    model = build(net, tmp_path)
    _calib(tmp_path / "calib.npy", 16, 1, shape=(3, 64, 64))
    result = compile_model(model, tmp_path / "b.stretch", CompileOptions(target="mi9", place_from_model=True, settings=_settings("float", calib=tmp_path / "calib.npy")))
    dsp = [p["name"] for p in result.manifest["partitions"] if p["processor"] == "dsp"]
    assert len(dsp) == 2
    for name in dsp:
        ops = [n for n in _ops(result.output, name) if n.kind not in ("QUANTIZE", "DEQUANTIZE")]
        assert len(ops) >= 2 and all(check_node(n, quantized=True) is None for n in ops)
        assert all(n.outputs[0].dtype in ("int8", "int32") for n in ops)
    assert result.analyses.get(Quantization).samples == 16
    out = HostRuntime(result.output).run({"input": np.random.default_rng(3).random((1, 3, 64, 64)).astype(np.float32)})
    assert out["logits"].shape == (1, 10) and np.all(np.isfinite(out["logits"]))


def test_float_on_pixel6_is_a_noop_and_pixel6_refuses_dsp(tmp_path: Path) -> None:
    result = compile_model(EXAMPLE, tmp_path / "p6.stretch", CompileOptions(target="pixel6", settings=_settings("float")))
    assert result.analyses.get(Quantization) is None and {p["precision"] for p in result.manifest["partitions"]} == {"float32"}
    with pytest.raises(StretchError) as exc:
        compile_model(EXAMPLE, tmp_path / "p6dsp.stretch", CompileOptions(target="pixel6", place={"s1.b1": "dsp"}, settings=CompileSettings(calib="random")))
    assert exc.value.code == "no-such-processor" and "pixel6" in exc.value.message


def test_int8_without_calibration_data_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(StretchError) as exc:
        compile_model(EXAMPLE, tmp_path / "b", CompileOptions(target="pixel6", settings=_settings()))
    assert exc.value.code == "bad-calibration" and "--calib" in exc.value.message
    assert not (tmp_path / "b").exists()
