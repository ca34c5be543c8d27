"""ungroup-convs: grouped CONV_2D on the DSP becomes SPLIT + per-group CONV_2D + CONCATENATION (int8, <= v3)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from stretchc.backends.dsp.op_rules import check_node
from stretchc.compile_settings import CompileSettings
from stretchc.driver import CompileOptions, compile_model
from stretchc.verify import verify_bundle

from tests.backends.dsp.models import conv_model


def _grouped(tmp_path: Path, group: int = 4) -> Path:
    path = tmp_path / f"grouped{group}.onnx"
    onnx.save(conv_model(group=group, name=f"grouped{group}"), str(path))
    return path


@pytest.mark.slow  # calibrates with TFLite (about 3.5 s)
def test_grouped_conv_on_the_dsp_is_ungrouped_int8_and_accurate(tmp_path: Path) -> None:
    model = _grouped(tmp_path)
    result = compile_model(model, tmp_path / "d.stretch", CompileOptions(target="mi9", place={"main": "dsp"}, settings=CompileSettings(calib="random")))
    assert [p["processor"] for p in result.manifest["partitions"]] == ["dsp"]
    boundary = ("QUANTIZE", "DEQUANTIZE")  # float <-> int8 at the partition's edges (left on the CPU by the delegate)
    nodes = [n for n in result.module.graph.nodes if n.op.startswith("tfl.") and not (n.kind in boundary and "float32" in (n.inputs[0].dtype, n.outputs[0].dtype))]  # type: ignore[union-attr]
    convs = [n for n in nodes if n.kind == "CONV_2D"]
    assert len(convs) == 4 + 1  # four groups, then the pointwise conv
    assert all(n.outputs[0].dtype == "int8" and int(n.attrs["version"]) <= 3 for n in convs)
    assert all(check_node(n, quantized=True) is None for n in nodes)
    kinds = [n.kind for n in nodes]
    assert kinds.count("SPLIT") == 1 and kinds.count("CONCATENATION") == 1
    assert all(n.processor == "dsp" and n.partition == "main" and n.region == "main" for n in result.module.graph.nodes if n.op.startswith("tfl."))
    report = verify_bundle(tmp_path / "d.stretch", model, samples=5, min_sqnr=25.0)
    assert report.ok, report.table()


def test_grouped_conv_stays_grouped_on_cpu_and_gpu(tmp_path: Path) -> None:
    model = _grouped(tmp_path)
    for proc in ("cpu", "gpu"):
        result = compile_model(model, tmp_path / f"{proc}.stretch", CompileOptions(target="mi9", place={"main": proc}))
        kinds = [n.kind for n in result.module.graph.nodes]
        assert "SPLIT" not in kinds and "CONCATENATION" not in kinds
        grouped = [n for n in result.module.graph.nodes if n.kind == "CONV_2D" and n.inputs[1].shape[3] != n.inputs[0].shape[3]]  # type: ignore[union-attr]
        assert len(grouped) == 1 and int(grouped[0].attrs["version"]) == 6
        assert verify_bundle(tmp_path / f"{proc}.stretch", model, samples=2).ok
