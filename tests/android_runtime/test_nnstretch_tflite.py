"""--emit nnstretch-tflite: one .tflite whose op output names carry the prototype's placement tags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from stretchc.bundle.nnstretch import nnstretch_tflite


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
    res = compile_model(tmp_path / "ex.onnx", tmp_path / "bundle", CompileOptions(place={"s1.b1": "gpu", "s2.b1": "gpu"}))
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
