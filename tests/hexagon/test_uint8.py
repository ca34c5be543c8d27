"""quantize-hexagon{dtype=uint8}: DSP partitions in the legacy asymmetric uint8 form, same numbers as int8 per-tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stretchc.driver import CompileOptions, compile_model
from stretchc.hexagon.eligibility import check_node
from stretchc.hexagon.uint8 import int8_to_uint8
from stretchc.litert import load_interpreter
from stretchc.passes.quantize_hexagon import quantize_partition
from stretchc.tflite_io import emit_model, import_model
from stretchc.verify import verify_bundle

from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "branchy.onnx"


def _run(buf: bytes, x: np.ndarray) -> np.ndarray:
    it = load_interpreter(model_content=buf)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_uint8_twin_is_bit_identical_to_per_tensor_int8(tmp_path: Path) -> None:
    m = compile_model(EXAMPLE, tmp_path / "b", CompileOptions(target="pixel6")).module
    values = m.graph.value_map()
    p = m.partition("s1.b1")
    float_buf = emit_model([n for n in m.graph.nodes if n.partition == p.name], [values[i] for i in p.inputs], [values[o] for o in p.outputs])
    shape = values[p.inputs[0]].shape
    samples = [[np.random.default_rng(k).random(shape).astype(np.float32) * 3] for k in range(16)]
    q8 = quantize_partition(float_buf, samples, per_channel=False)
    u8 = int8_to_uint8(q8, partition=p.name)
    assert {v.dtype for v in import_model(u8).values()} == {"float32", "int32", "uint8"}
    x = samples[0][0]
    assert np.array_equal(_run(q8, x), _run(u8, x))


def test_compile_with_uint8_dsp_partition(tmp_path: Path) -> None:
    pipeline = "unshare-pads,find-branches,assign-delegates,outline-partitions,insert-sync-points,quantize-hexagon{dtype=uint8},emit-bundle"
    options = CompileOptions(target="mi9", place={"s1.b1": "dsp"}, pipeline=pipeline, extra={"calib": "random"})
    result = compile_model(EXAMPLE, tmp_path / "b", options)
    assert result.report["quantization"]["partitions"]["s1.b1"]["dtype"] == "uint8"
    ops = import_model((tmp_path / "b" / "partitions" / "s1.b1.tflite").read_bytes()).nodes
    inner = [n for n in ops if n.kind not in ("QUANTIZE", "DEQUANTIZE")]
    assert inner and all(n.outputs[0].dtype == "uint8" for n in inner)
    assert all(check_node(n, quantized=True) is None for n in inner)
    report = verify_bundle(tmp_path / "b", EXAMPLE, samples=2)
    assert report.ok, report.table()
