"""NN-Stretch configurations (configs/mi, built by the model builder at 64 px, random weights) compiled for mi9
with their recorded placement and `--precision int8`, as the prototype runs them: every partition int8, every
inner sync point int8 with no QUANTIZE/DEQUANTIZE inside any partition (the model's input and output are held
int8 and converted by the runtime at the model boundary), an arena at most 30% of the float plan's, and an output
SQNR of at least 30 dB against the float ONNX model on real-looking inputs (crops of photographs; calibrated on
other crops). Each configuration is compiled once for all the checks."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from stretchc.analyses import Arena
from stretchc.driver import CompileOptions, compile_model
from stretchc.modelbuild import placement_from_model
from stretchc.tflite_io import import_model
from stretchc.verify import verify_bundle

from tests.conftest import MI_CONFIG_SIZE, settings_with
from tests.precision.images import natural_images

# slow (not in `scripts/test.sh --fast`): two NN-Stretch configurations lowered and calibrated with TFLite, all int8 (about 37 s)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["R-50-CD", "EN-L4-CG"])
def compiled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mi_config_model):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp(request.param)
    source = mi_config_model(request.param)
    np.save(d / "calib.npy", natural_images(16, MI_CONFIG_SIZE, seed=1))
    options = CompileOptions(target="mi9", place_from_model=True, settings=settings_with("int8", calib=d / "calib.npy"))
    return onnx.load(str(source)), source, compile_model(source, d / "b", options)


def test_every_partition_and_inner_sync_point_is_int8(compiled) -> None:  # type: ignore[no-untyped-def]
    model, _, res = compiled
    m = res.manifest
    assert {r: p["processor"] for p in m["partitions"] for r in p["regions"]} == placement_from_model(model)
    assert {p["precision"] for p in m["partitions"]} == {"int8"}
    io = {i["sync"] for i in m["inputs"]} | {o["sync"] for o in m["outputs"]}
    slot_dtype = {s["name"]: s["dtype"] for s in m["buffers"]["slots"]}
    for s in m["sync_points"]:
        if s["name"] not in io:
            assert slot_dtype[s["slot"]] == "int8" and s["quant"] is not None and not s["conversions"], s["name"]
    for p in m["partitions"]:  # no QUANTIZE / DEQUANTIZE anywhere: the runtime converts the model's input and output
        ops = import_model((res.output / p["file"]).read_bytes()).nodes
        assert all(v.dtype in ("int8", "int32") for n in ops for v in n.outputs), p["name"]
    for io_entry in [*m["inputs"], *m["outputs"]]:
        assert io_entry["dtype"] == "float32" and io_entry["bundle_dtype"] == "int8" and io_entry["quant"] is not None


def test_arena_is_at_most_30_percent_of_the_float_plan(compiled) -> None:  # type: ignore[no-untyped-def]
    _, _, res = compiled
    arena = res.analyses.get(Arena)
    assert arena.bytes == res.manifest["buffers"]["arena_size"]
    assert arena.bytes <= 0.30 * arena.float_bytes, arena


def test_output_sqnr_on_real_looking_inputs(compiled) -> None:  # type: ignore[no-untyped-def]
    _, source, res = compiled
    feeds = [{"input": x[None]} for x in natural_images(8, MI_CONFIG_SIZE, seed=2)]
    report = verify_bundle(res.output, source, inputs=feeds)
    out = next(c for c in report.checks if c.kind == "output")
    assert out.sqnr_db is not None and out.sqnr_db >= 30.0, report.table()
