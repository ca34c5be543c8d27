"""ONNX tensor names survive the lowering: every named node computes the ONNX tensor it is named after.

The strong check (`test_every_named_node_holds_its_onnx_tensor`): the whole lowered graph is emitted with
every named node's output as an extra output, run, and compared with the ONNX tensor of that name from
ONNX Runtime. Models: the bundled example, structural variants, and a model made of what onnxsim rewrites
(BatchNormalization folded into a conv, a Pad folded into a conv, a bias Add folded into a conv,
Identity removed, MatMul+Add fused into Gemm).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxsim
import pytest
from onnx import TensorProto, helper, numpy_helper

from stretchc.examples import branched_model, example_model
from stretchc.frontend.lower import lower_to_tflite
from stretchc.frontend.module import build_module
from stretchc.frontend.provenance import holder_tokens, holdings, name_tensors, onnx_names, tokens_in
from stretchc.frontend.validate import load_model
from stretchc.ir import Module
from stretchc.litert import load_interpreter
from stretchc.tflite_io import emit_model
from stretchc.verify import abs_error, layouts


def rewritten_model() -> onnx.ModelProto:
    """Conv layers written the way onnxsim rewrites them, ending in a MatMul + Add classifier."""
    rng = np.random.default_rng(3)
    inits: list[onnx.TensorProto] = []

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(arr.astype(np.float32) if arr.dtype.kind == "f" else arr, name))
        return name

    def w(name: str, *shape: int) -> str:
        return const(name, rng.standard_normal(shape) * 0.3)

    nodes = [
        helper.make_node("Pad", ["x", const("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64))], ["padded"], name="pad"),
        helper.make_node("Conv", ["padded", w("c1.w", 8, 3, 3, 3)], ["c1"], name="c1", kernel_shape=[3, 3]),
        helper.make_node(
            "BatchNormalization",
            ["c1", const("bn.s", rng.uniform(0.5, 1.5, 8)), w("bn.b", 8), w("bn.m", 8), const("bn.v", rng.uniform(0.5, 1.5, 8))],
            ["bn"],
            name="bn",
        ),
        helper.make_node("Identity", ["bn"], ["same"], name="same"),
        helper.make_node("Relu", ["same"], ["r1"], name="r1"),
        helper.make_node("Conv", ["r1", w("c2.w", 8, 8, 1, 1)], ["c2"], name="c2", kernel_shape=[1, 1]),
        helper.make_node("Add", ["c2", w("c2.b", 1, 8, 1, 1)], ["c2b"], name="c2b"),
        helper.make_node("Relu", ["c2b"], ["r2"], name="r2"),
        helper.make_node("Add", ["r1", "r2"], ["res"], name="res"),
        helper.make_node("GlobalAveragePool", ["res"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat", axis=1),
        helper.make_node("MatMul", ["flat", w("fc.w", 8, 5)], ["mm"], name="mm"),
        helper.make_node("Add", ["mm", w("fc.b", 5)], ["logits"], name="logits"),
    ]
    graph = helper.make_graph(
        nodes,
        "rewritten",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


MODELS = {
    "example": example_model,
    "nested": lambda: branched_model(branches=(2,), nested=True, size=32, width=8),
    "add3-residual": lambda: branched_model(branches=(3,), join="add", residual=True, size=32, width=8),
    "rewritten": rewritten_model,
}


def _lowered(name: str, tmp_path) -> tuple[onnx.ModelProto, Module]:  # type: ignore[no-untyped-def]
    path = tmp_path / f"{name}.onnx"
    onnx.save(MODELS[name](), str(path))
    model = load_model(path)
    return model, build_module(model, lower_to_tflite(model, file=str(path)), name=name, file=str(path))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_named_node_holds_its_onnx_tensor(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    model, module = _lowered(name, tmp_path)
    g = module.graph
    holders = g.holders()
    named = [v for n in g.nodes for v in n.outputs[:1] if v.name in holders]
    buf = emit_model(g.nodes, g.inputs, list({id(v): v for v in [*g.outputs, *named]}.values()))
    it = load_interpreter(model_content=buf)
    (info,) = module.inputs
    x = np.random.default_rng(0).random(info.shape).astype(np.float32)
    detail = it.get_input_details()[0]
    it.set_tensor(detail["index"], np.transpose(x, info.perm) if info.perm else x)
    it.invoke()
    got = {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}
    onnx_of = {v: holders[v] for v in got if v in holders}
    ref_model = onnx.ModelProto()
    ref_model.CopyFrom(model)
    ref_model.graph.output.extend(onnx.ValueInfoProto(name=t) for t in sorted(set(onnx_of.values())) if t not in {o.name for o in model.graph.output})
    session = ort.InferenceSession(ref_model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = dict(zip([o.name for o in session.get_outputs()], session.run(None, {info.name: x})))
    for value, tensor in onnx_of.items():
        r = np.asarray(ref[tensor])
        options = layouts(tuple(got[value].shape), tuple(r.shape))
        assert options, f"{value} {got[value].shape} is named {tensor} {r.shape}"
        err = min(float(abs_error(got[value], np.transpose(r, p) if p else r.reshape(got[value].shape)).max()) for p in options)
        assert err <= 1e-4 * max(float(np.abs(r).max()), 1e-6), f"{value} is named {tensor} but differs by {err}"
    # names are ONNX tensor names, not onnx2tf's or the converter's
    assert set(onnx_of.values()) <= set(onnx_names(model))
    assert len(onnx_of) >= 0.5 * sum(n.kind not in ("PAD", "RESHAPE", "TRANSPOSE") for n in g.nodes), "too few nodes are named"


def test_onnxsim_rewrites_do_not_mislabel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = rewritten_model()
    simplified, ok = onnxsim.simplify(model)
    assert ok
    held = holdings(model, simplified)
    sim_producer = {o: n.op_type for n in simplified.graph.node for o in n.output}
    # onnxsim folded the Pad and the BN into the conv, dropped the Identity, and kept the conv's output
    # name: that name now holds the BN output (which the Identity passed on unchanged)
    assert sim_producer.get("c1") == "Conv" and not {"padded", "bn", "same"} & set(sim_producer)
    assert held["c1"] == "same"
    # the bias Add was folded into the conv before it: the conv's output holds the Add's tensor
    assert held["c2"] == "c2b"
    # unchanged nodes hold their own tensors; what onnxsim removed is held by nothing else
    assert all(held[t] == t for t in ("r1", "r2", "res", "gap", "flat"))
    assert not {"c1", "c2", "padded", "mm"} & set(held.values())
    named = name_tensors(model, simplified)
    tokens = {o for n in named.graph.node for o in n.output}
    index = {t: k for k, t in enumerate(onnx_names(model))}
    assert f"stretchc.v{index['same']}" in tokens and f"stretchc.v{index['c1']}" not in tokens


def test_holder_tokens() -> None:
    names = [
        "model/tf.compat.v1.pad/Pad",  # a helper op with no token
        "model/stretchc.v2/Relu;model/stretchc.v0/Add;model/tf.nn.convolution/convolution",  # fused: the latest token
        "model/stretchc.v5/Reshape",  # a step inside the layer of token 5 ...
        "model/stretchc.v5/Transpose_1",  # ... whose last op holds it
        None,
        "Identity",
    ]
    assert tokens_in(names[1]) == [2, 0]
    assert holder_tokens(names) == [None, 2, None, 5, None, None]
