"""quantize-hexagon: DSP partitions are int8 and agree with TFLite's own quantizer on the same float subgraph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stretchc.driver import CompileOptions, compile_model
from stretchc.hexagon.eligibility import check_node
from stretchc.passes.quantize_hexagon import quantize_partition
from stretchc.runtime.host import HostRuntime
from stretchc.tflite_io import import_model

from tests.conftest import REPO
from tests.hexagon.nets import build

EXAMPLE = REPO / "examples" / "branchy.onnx"


def _calib(path: Path, n: int, seed: int, shape: tuple[int, ...] = (3, 160, 160)) -> np.ndarray:  # default: the example's input
    arr = np.random.default_rng(seed).random((n, *shape)).astype(np.float32)
    np.save(path, arr)
    return arr


def _int8_ops(result, part: str) -> list:  # type: ignore[no-untyped-def]
    return [n for n in result.module.graph.nodes if n.partition == part and n.kind not in ("QUANTIZE", "DEQUANTIZE")]


def test_partition_matches_tflite_quantizer_within_one_step(tmp_path: Path) -> None:
    calib = _calib(tmp_path / "calib.npy", 32, 0)
    dsp = compile_model(EXAMPLE, tmp_path / "dsp.stretch", CompileOptions(target="mi9", place={"s1.b1": "dsp"}, extra={"calib": str(tmp_path / "calib.npy")}))
    flt = compile_model(EXAMPLE, tmp_path / "flt.stretch", CompileOptions(target="mi9", place={"s1.b1": "cpu"}))
    part = next(p for p in dsp.manifest["partitions"] if p["name"] == "s1.b1")
    assert part["processor"] == "dsp" and part["fallback"]["file"] == part["file"]
    ops = _int8_ops(dsp, "s1.b1")
    assert ops and all(n.outputs[0].dtype == "int8" and check_node(n, quantized=True) is None for n in ops)
    # independent path: the float bundle's partition file, its boundary inputs captured by the host runtime
    rt = HostRuntime(tmp_path / "flt.stretch")
    in_syncs = [b["sync"] for b in next(p for p in rt.manifest["partitions"] if p["name"] == "s1.b1")["inputs"]]

    def boundary(x: np.ndarray) -> list[np.ndarray]:
        cap: dict[str, np.ndarray] = {}
        rt.run({"input": x[None]}, capture=cap)
        return [cap[s] for s in in_syncs]

    ref = quantize_partition((tmp_path / "flt.stretch/partitions/s1.b1.tflite").read_bytes(), [boundary(x) for x in calib], per_channel=True)
    from ai_edge_litert.interpreter import Interpreter

    ours = Interpreter(model_path=str(tmp_path / "dsp.stretch/partitions/s1.b1.tflite"))
    theirs = Interpreter(model_content=ref)
    for it in (ours, theirs):
        it.allocate_tensors()
    step = next(n for n in import_model(ref).nodes if n.kind == "DEQUANTIZE").inputs[0].quant.scale[0]  # type: ignore[union-attr]
    close = total = 0
    for x in np.random.default_rng(7).random((10, 3, 160, 160)).astype(np.float32):
        b = boundary(x)
        outs = []
        for it in (ours, theirs):
            for d, v in zip(it.get_input_details(), b):
                it.set_tensor(d["index"], v)
            it.invoke()
            outs.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
        close += int(np.sum(np.abs(outs[0] - outs[1]) <= step * 1.001))
        total += outs[0].size
    assert close / total >= 0.99


@pytest.mark.parametrize("net", ["resnet", "effnet-lite"])
def test_builder_models_compile_for_mi9_with_int8_dsp(net: str, tmp_path: Path) -> None:
    model = build(net, tmp_path)
    _calib(tmp_path / "calib.npy", 16, 1, shape=(3, 64, 64))
    result = compile_model(model, tmp_path / "b.stretch", CompileOptions(target="mi9", place_from_model=True, extra={"calib": str(tmp_path / "calib.npy")}))
    dsp = [p["name"] for p in result.manifest["partitions"] if p["processor"] == "dsp"]
    assert len(dsp) == 2
    for name in dsp:
        ops = _int8_ops(result, name)
        assert len(ops) >= 2 and all(check_node(n, quantized=True) is None for n in ops)
        assert all(n.outputs[0].dtype in ("int8", "int32") for n in ops)
    assert result.report["quantization"]["samples"] == 16
    out = HostRuntime(tmp_path / "b.stretch").run({"input": np.random.default_rng(3).random((1, 3, 64, 64)).astype(np.float32)})
    assert out["logits"].shape == (1, 10) and np.all(np.isfinite(out["logits"]))


def test_noop_without_dsp_and_pixel6_refuses_dsp(tmp_path: Path) -> None:
    from stretchc.errors import StretchError

    result = compile_model(EXAMPLE, tmp_path / "p6.stretch", CompileOptions(target="pixel6"))
    assert "quantization" not in result.report
    with pytest.raises(StretchError) as exc:
        compile_model(EXAMPLE, tmp_path / "p6dsp.stretch", CompileOptions(target="pixel6", place={"s1.b1": "dsp"}, extra={"calib": "random"}))
    assert exc.value.code == "no-such-processor" and "pixel6" in exc.value.message
