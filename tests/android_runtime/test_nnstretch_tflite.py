"""--emit nnstretch-tflite: one .tflite whose op output names carry the prototype's placement tags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from stretchc.bundle.nnstretch import nnstretch_tflite

# slow (not in `scripts/test.sh --fast`): with the rest of tests/android_runtime, never in the fast tier
pytestmark = pytest.mark.slow


def _first_output_names(data: bytes) -> list[tuple[str, str]]:
    from ai_edge_litert import schema_py_generated as S

    model = S.ModelT.InitFromObj(S.Model.GetRootAs(data, 0))
    sg = model.subgraphs[0]
    out = []
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex]
        kind = max(code.builtinCode, code.deprecatedBuiltinCode)
        out.append((sg.tensors[op.outputs[0]].name.decode().split(";")[0], kind))
    return out


def test_tags(tmp_path: Path) -> None:
    from ai_edge_litert import schema_py_generated as S
    from ai_edge_litert.interpreter import Interpreter

    from stretchc.driver import CompileOptions, compile_model
    from stretchc.examples import example_model
    from stretchc.runtime.host import HostRuntime

    onnx.save(example_model(), tmp_path / "ex.onnx")
    res = compile_model(tmp_path / "ex.onnx", tmp_path / "bundle", CompileOptions(place={"s1.b0": "cpu", "s1.b1": "gpu", "s2.b1": "gpu"}))
    module = res.module
    data = nnstretch_tflite(module)
    names = _first_output_names(data)
    assert names
    for name, _ in names:
        tags = [t for t in ("cpu", "gpu", "dsp") if t in name]
        assert len(tags) == 1, name
    # every value a fork sync point carries is produced by an op tagged mp_start
    n_forks = len({s.value for s in module.sync_points if s.kind == "fork"})
    starts = [n for n, _ in names if "mp_start" in n]
    assert len(starts) == n_forks >= 2
    # each join concat carries mp_end; there is one per branched stage
    concat = S.BuiltinOperator.CONCATENATION
    ends = [n for n, k in names if "mp_end" in n]
    assert all(k == concat for n, k in names if "mp_end" in n)
    stages = {r.stage for r in module.regions if r.kind == "branch"}
    assert len(ends) == len(stages) == 2
    # branch ops carry their branch's processor
    assert any(n.startswith("s1_gpu_b1_") for n, _ in names) and any(n.startswith("s1_cpu_b0_") for n, _ in names)
    # the single file computes what the bundle computes
    x = np.random.default_rng(0).standard_normal([1, 3, 64, 64] if False else res.manifest["inputs"][0]["shape"]).astype(np.float32)
    want = HostRuntime(tmp_path / "bundle").run({"input": x})
    it = Interpreter(model_content=data)
    it.allocate_tensors()
    info = res.manifest["inputs"][0]
    it.set_tensor(it.get_input_details()[0]["index"], np.ascontiguousarray(np.transpose(x, info["perm"])) if info["perm"] else x)
    it.invoke()
    got = it.get_tensor(it.get_output_details()[0]["index"])
    name = res.manifest["outputs"][0]["name"]
    np.testing.assert_allclose(got.reshape(want[name].shape), want[name], rtol=1e-5, atol=1e-5)


def test_int8_bundle_emits_one_full_int8_model(tmp_path: Path) -> None:
    """--precision int8 --emit nnstretch-tflite: one tagged model, int8 from its input to its output (held int8,
    as the prototype's uint8 model; --io-dtype uint8 for uint8), computing what the bundle computes."""
    from ai_edge_litert.interpreter import Interpreter

    from stretchc.driver import CompileOptions, compile_model
    from stretchc.examples import example_model
    from stretchc.precision import dequantize_array, quantize_array
    from stretchc.runtime.host import HostRuntime
    from stretchc.tflite_io import import_model

    from tests.conftest import settings_with

    onnx.save(example_model(), tmp_path / "ex.onnx")
    options = CompileOptions(target="mi9", place={"s1.b1": "dsp", "s2.b1": "gpu"}, settings=settings_with("int8", calib="random", emit=("nnstretch-tflite",)))
    res = compile_model(tmp_path / "ex.onnx", tmp_path / "bundle", options)
    data = (tmp_path / "bundle" / "nnstretch.tflite").read_bytes()
    graph = import_model(data)
    assert {v.dtype for n in graph.nodes for v in n.outputs} <= {"int8", "int32"}
    assert not [n for n in graph.nodes if n.kind in ("QUANTIZE", "DEQUANTIZE")]
    names = [n for n, _ in _first_output_names(data)]
    assert any(n.startswith("s1_dsp_b1_") for n in names) and any(n.startswith("s2_gpu_b1_") for n in names)
    info, out_info = res.manifest["inputs"][0], res.manifest["outputs"][0]
    x = np.random.default_rng(0).random(info["shape"]).astype(np.float32)
    want = HostRuntime(tmp_path / "bundle").run({"input": x})[out_info["name"]]
    it = Interpreter(model_content=data)
    it.allocate_tensors()
    q, qo = info["quant"], out_info["quant"]
    it.set_tensor(it.get_input_details()[0]["index"], quantize_array(np.transpose(x, info["perm"]), q["scale"][0], q["zero_point"][0], "int8"))
    it.invoke()
    got = dequantize_array(it.get_tensor(it.get_output_details()[0]["index"]), qo["scale"][0], qo["zero_point"][0])
    np.testing.assert_array_equal(got.reshape(want.shape), want)
