"""NN-Stretch configurations (configs/mi, built by the model builder at 96 px, random weights) compiled for mi9
with their recorded placement and `--precision int8`, as the prototype runs them: every partition int8, every
inner sync point int8 with no QUANTIZE/DEQUANTIZE inside any partition (the model's input and output are held
int8 and converted by the runtime at the model boundary), an arena at most 30% of the float plan's, and an output
SQNR of at least 30 dB against the float ONNX model on real-looking inputs (crops of photographs; calibrated on
other crops)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from stretchc.driver import CompileOptions, compile_model
from stretchc.modelbuild import build_model, load_config, placement_from_model
from stretchc.tflite_io import import_model
from stretchc.verify import verify_bundle

from tests.conftest import pipeline_with
from tests.precision.images import natural_images

CONFIGS = Path(__file__).parent / "configs"
SIZE = 96


@pytest.fixture(scope="module", params=["R-50-CD", "EN-L4-CG"])
def compiled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp(request.param)
    model = build_model(load_config(CONFIGS / f"{request.param}.yaml"), image_size=SIZE, seed=0)
    onnx.save(model, str(d / "model.onnx"))
    np.save(d / "calib.npy", natural_images(16, SIZE, seed=1))
    options = CompileOptions(target="mi9", place_from_model=True, pipeline=pipeline_with("int8"), extra={"calib": str(d / "calib.npy")})
    return model, d, compile_model(d / "model.onnx", d / "b", options)


def test_every_partition_and_inner_sync_point_is_int8(compiled) -> None:  # type: ignore[no-untyped-def]
    model, d, res = compiled
    m = res.manifest
    assert {r: p["processor"] for p in m["partitions"] for r in p["regions"]} == placement_from_model(model)
    assert {p["precision"] for p in m["partitions"]} == {"int8"}
    io = {i["sync"] for i in m["inputs"]} | {o["sync"] for o in m["outputs"]}
    slot_dtype = {s["name"]: s["dtype"] for s in m["buffers"]["slots"]}
    for s in m["sync_points"]:
        if s["name"] not in io:
            assert slot_dtype[s["slot"]] == "int8" and s["quant"] is not None and not s["conversions"], s["name"]
    for p in m["partitions"]:  # no QUANTIZE / DEQUANTIZE anywhere: the runtime converts the model's input and output
        ops = import_model((d / "b" / p["file"]).read_bytes()).nodes
        assert all(v.dtype in ("int8", "int32") for n in ops for v in n.outputs), p["name"]
    for io_entry in [*m["inputs"], *m["outputs"]]:
        assert io_entry["dtype"] == "float32" and io_entry["bundle_dtype"] == "int8" and io_entry["quant"] is not None


def test_arena_is_at_most_30_percent_of_the_float_plan(compiled) -> None:  # type: ignore[no-untyped-def]
    _, _, res = compiled
    arena = res.report["arena"]
    assert arena["bytes"] == res.manifest["buffers"]["arena_size"]
    assert arena["bytes"] <= 0.30 * arena["float_bytes"], arena


def test_output_sqnr_on_real_looking_inputs(compiled) -> None:  # type: ignore[no-untyped-def]
    _, d, res = compiled
    feeds = [{"input": x[None]} for x in natural_images(8, SIZE, seed=2)]
    report = verify_bundle(res.output, d / "model.onnx", inputs=feeds)
    out = next(c for c in report.checks if c.kind == "output")
    assert out.sqnr_db is not None and out.sqnr_db >= 30.0, report.table()
