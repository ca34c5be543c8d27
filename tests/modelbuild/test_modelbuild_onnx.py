"""The ONNX models: checker, ONNX Runtime, structure layer for layer, determinism, metadata, complexity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mbhelpers import PROTOTYPE, variant
from onnx import numpy_helper

from stretchc.errors import StretchError
from stretchc.modelbuild import as_timed, build_model, complexity, load_config, placement_from_model

IMG = 64

# B: grouped bottlenecks with SE, three processors, 2/3/1 branches per stage, simple stem.
BOTTLENECK = variant(
    STEM_TYPE="simple_stem_in",
    STEM_W=16,
    STEM_K=3,
    BLOCK_TYPE="res_bottleneck_block",
    STRIDES=[[2, 2], [2, 2, 2], [2]],
    DEPTHS=[[1, 2], [2, 1, 1], [1]],
    WIDTHS=[[16, 32], [32, 16, 16], [48]],
    BOT_MULS=[1, [1, 0.5, 1], 0.5],
    GROUP_WS=[[8, 8], [8, 8, 4], [8]],
    SE_ON=True,
    DEVICES=["cpu", "dsp", "gpu"],
    ORIGINAL_WIDTHS=[48, 64, 48],
    MERGE_DEVICE="cpu",
    STEM_DEVICE="dsp",
    HEAD_DEVICE="gpu",
)

# C: EfficientNet-like MB_VER 1 with per-branch activations, un-branched stages between branched ones.
MBCONV = {
    "MODEL": {"TYPE": "mbanynet", "NUM_CLASSES": 7, "ACTIVATION_FUN": "silu"},
    "ANYNET": {
        "STEM_TYPE": "simple_stem_in",
        "STEM_W": 48,
        "STEM_K": 3,
        "BLOCK_TYPE": "mbconv",
        "STRIDES": [[1, 1], [2], [2, 2], [1]],
        "DEPTHS": [[1, 1], [1], [2, 1], [1]],
        "WIDTHS": [[24, 24], [16], [16, 16], [24]],
        "BOT_MULS": [1, 6, [6, 4], 6],
        "KERNELS": [3, 3, 5, 3],
        "HEAD_W": 64,
        "SE_ON": True,
        "DEVICES": ["cpu", "gpu"],
        "STEM_DEVICE": "cpu",
        "MERGE_DEVICE": "dsp",
        "HEAD_DEVICE": "gpu",
        "ORIGINAL_WIDTHS": [24, 16, 32, 24],
        "MB_VER": 1,
        "ACTIVATION_FUN": ["relu", "silu"],
    },
}

SINGLE = variant(
    STRIDES=[[1], [2]], DEPTHS=[[1], [2]], WIDTHS=[[8], [16]], GROUP_WS=[[8], [16]], ORIGINAL_WIDTHS=[8, 16],
    DEVICES=["gpu"],
)

CASES = {"basic_mb2": variant(), "bottleneck_se": BOTTLENECK, "mbconv_mb1": MBCONV, "single": SINGLE}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[object, onnx.ModelProto]]:
    import yaml

    out = {}
    folder: Path = tmp_path_factory.mktemp("cfgs")
    for name, content in CASES.items():
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        cfg = load_config(path)
        out[name] = (cfg, build_model(cfg, image_size=IMG, seed=0))
    return out


def nodes(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {n.name: n for n in model.graph.node}


def inits(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    vis = list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in vis}


@pytest.mark.parametrize("name", list(CASES))
def test_checker_and_onnxruntime(models, name):
    cfg, model = models[name]
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 13 and model.ir_version == 8
    assert [i.name for i in model.graph.input] == ["input"]
    assert shapes(model)["input"] == [1, 3, IMG, IMG]
    assert [o.name for o in model.graph.output] == ["logits"]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, IMG, IMG)).astype(np.float32)
    (y,) = sess.run(None, {"input": x})
    assert y.shape == (1, cfg.num_classes) and np.isfinite(y).all()
    # Shape inference covered every intermediate tensor.
    produced = {o for n in model.graph.node for o in n.output}
    assert produced - {"logits"} <= set(shapes(model))
    assert any(n.op_type == "BatchNormalization" for n in model.graph.node)


def test_deterministic_for_a_seed(models):
    cfg, model = models["bottleneck_se"]
    again = build_model(cfg, image_size=IMG, seed=0)
    assert again.SerializeToString() == model.SerializeToString()
    assert build_model(cfg, image_size=IMG, seed=1).SerializeToString() != model.SerializeToString()


def test_mb_ver2_concatenates_raw_branches(models):
    _, m = models["basic_mb2"]
    ns, sh = nodes(m), shapes(m)
    assert not [n for n in ns if "convfirst" in n or "convlast" in n]
    join = ns["s1/join"]
    assert join.op_type == "Concat" and list(join.input) == ["s1/b0/block0/act", "s1/b1/block1/act"]
    assert sh["s1/join"] == [1, 16, 16, 16] and sh["s2/join"] == [1, 24, 8, 8]
    # res_stem_in: 7x7 s2 conv, BN, ReLU, 3x3 s2 max pool.
    assert [ns[k].op_type for k in ("stem/conv", "stem/bn", "stem/act", "stem/pool")] == [
        "Conv", "BatchNormalization", "Relu", "MaxPool"]
    # Projection shortcut only where width or stride changes; stride on the first 3x3.
    assert "s1/b0/block0/proj/conv" not in ns and "s1/b1/block0/proj/conv" not in ns
    assert "s2/b0/block0/proj/conv" in ns and "s2/b0/block1/proj/conv" not in ns
    strides = {a.name: list(a.ints) for a in ns["s2/b0/block0/a/conv"].attribute}["strides"]
    assert strides == [2, 2]


def test_grouped_conv_and_se(models):
    cfg, m = models["bottleneck_se"]
    ns, w = nodes(m), inits(m)
    assert not [n for n in m.graph.node if n.op_type == "Split"]
    group = {a.name: a.i for a in ns["s2/b1/block0/b/conv"].attribute}["group"]
    assert group == 8 // 8  # w_b = 16 * 0.5 = 8, GROUP_W 8
    group = {a.name: a.i for a in ns["s1/b1/block1/b/conv"].attribute}["group"]
    assert group == 4 and w["s1/b1/block1/b/conv.weight"].shape == (32, 8, 3, 3)
    # bottleneck strides on the grouped 3x3, not the first 1x1
    attrs = {a.name: list(a.ints) for a in ns["s1/b0/block0/b/conv"].attribute}
    assert attrs["strides"] == [2, 2]
    # SE width is int(round(SE_R * block input width)); stage 1's first block reads the 16-wide stem.
    assert w["s1/b0/block0/se/fc1.weight"].shape == (4, 16, 1, 1)
    assert w["s1/b1/block1/se/fc1.weight"].shape == (8, 32, 1, 1)
    assert ns["s1/b0/block0/se/scale"].op_type == "Mul"
    assert json.loads(meta(m)["stretchc.stages"]) == [2, 3]


def test_mb_ver1_convfirst_convlast_and_activations(models):
    _, m = models["mbconv_mb1"]
    ns, w = nodes(m), inits(m)
    # EN-B5-CD's stage 1 as logged: Conv 48->48 ... MBConv ... Conv 24->12, concatenated to 24.
    assert w["s1/b0/convfirst/conv.weight"].shape == (48, 48, 1, 1)
    assert w["s1/b0/convlast/conv.weight"].shape == (12, 24, 1, 1)
    assert ns["s1/b0/convfirst/bn"].op_type == "BatchNormalization"
    assert shapes(m)["s1/join"] == [1, 24, 32, 32]
    # A single-branch stage under MB_VER 1 is not wrapped (as the prototype's Keras builder has it), no concat.
    assert "s2/b0/convfirst/conv" not in ns and "s2/b0/convlast/conv" not in ns and "s2/join" not in ns
    assert w["s2/b0/block0/exp/conv.weight"].shape == (144, 24, 1, 1)
    # convfirst width = make_divisible(16 / 32 * 16, 8) = 8; no convlast when w == o // N.
    assert w["s3/b0/convfirst/conv.weight"].shape == (8, 16, 1, 1)
    assert "s3/b0/convlast/conv" not in ns
    # MBConv: expansion only when it changes the width, depthwise k, skip when shapes match.
    assert "s1/b0/block0/exp/conv" not in ns and "s2/b0/block0/exp/conv" in ns
    dw = {a.name: a for a in ns["s3/b1/block0/dw/conv"].attribute}
    assert dw["group"].i == 32 and list(dw["kernel_shape"].ints) == [5, 5]
    assert "s3/b0/block1/add" in ns and "s3/b0/block0/add" not in ns
    # Branch 0 (cpu) uses ReLU in its blocks, branch 1 SiLU; SE, stem and head use MODEL.ACTIVATION_FUN (silu).
    assert ns["s1/b0/block0/dw/act"].op_type == "Relu"
    assert ns["s1/b1/block0/dw/act"].op_type == "Mul" and ns["s1/b1/block0/dw/act/sigmoid"].op_type == "Sigmoid"
    assert ns["s1/b0/block0/se/act"].op_type == "Mul"
    assert ns["stem/act"].op_type == "Mul" and ns["head/act"].op_type == "Mul"
    assert ns["head/fc"].op_type == "Gemm"


def meta(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def test_metadata_contract(models):
    _, m = models["mbconv_mb1"]
    md = meta(m)
    assert md["stretchc.placement"] == (
        "stem=cpu,s1.b0=cpu,s1.b1=gpu,s1.join=dsp,s2.b0=cpu,s2.b1=gpu,s2.join=dsp,head=gpu"
    )
    assert md["stretchc.stages"] == "[2,2]"
    assert md["stretchc.config"] == "mbconv_mb1"
    assert md["stretchc.builder"] == "stretchc build-model"
    assert placement_from_model(m) == {
        "stem": "cpu", "s1.b0": "cpu", "s1.b1": "gpu", "s1.join": "dsp",
        "s2.b0": "cpu", "s2.b1": "gpu", "s2.join": "dsp", "head": "gpu",
    }
    _, b = models["bottleneck_se"]
    assert meta(b)["stretchc.placement"] == (
        "stem=dsp,s1.b0=cpu,s1.b1=dsp,s1.join=cpu,s2.b0=cpu,s2.b1=dsp,s2.b2=gpu,s2.join=cpu,head=gpu"
    )
    _, single = models["single"]
    assert meta(single)["stretchc.placement"] == "main=gpu" and meta(single)["stretchc.stages"] == "[]"


def test_placement_from_model_absent_and_malformed():
    model = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    assert placement_from_model(model) is None
    for bad in ("stem", "stem=tpu", "stem=cpu,stem=gpu", "=cpu"):
        onnx.helper.set_model_props(model, {"stretchc.placement": bad})
        with pytest.raises(StretchError) as info:
            placement_from_model(model)
        assert info.value.code == "invalid-model"


def graph_complexity(model: onnx.ModelProto) -> dict[str, int]:
    """Count the built graph with pycls's rules, independently of stretchc.modelbuild.complexity."""
    w, sh = inits(model), shapes(model)
    flops = params = acts = 0
    for n in model.graph.node:
        out = sh.get(n.output[0]) or sh["logits"]
        if n.op_type == "Conv":
            hw = out[2] * out[3]
            k = w[n.input[1]]
            flops += k.size * hw
            params += k.size
            acts += out[1] * hw
            if len(n.input) > 2:
                flops += out[1] * hw
                params += out[1]
        elif n.op_type == "BatchNormalization":
            params += 2 * w[n.input[1]].size
        elif n.op_type == "MaxPool":
            acts += out[1] * out[2] * out[3]
        elif n.op_type == "Gemm":
            k, b = w[n.input[1]], w[n.input[2]]
            flops += k.size + b.size
            params += k.size + b.size
            acts += b.size
    return {"flops": flops, "params": params, "acts": acts}


@pytest.mark.parametrize("name", list(CASES))
def test_complexity_counts_the_built_graph(models, name):
    cfg, model = models[name]
    assert complexity(cfg, IMG) == graph_complexity(model)


def test_prototype_complexity_omits_convlast(models):
    cfg, model = models["mbconv_mb1"]
    full, proto = complexity(cfg, IMG), complexity(cfg, IMG, prototype=True)
    w = inits(model)
    convlast = sum(w[k].size for k in w if "/convlast/conv.weight" in k) + sum(
        2 * w[k].size for k in w if "/convlast/bn.scale" in k
    )
    assert full["params"] - proto["params"] == convlast


# pycls dev/model_complexity.json (2020-09-04): R-50-1x64d, RegNetX-1.6GF, RegNetX-4.0GF, EN-B5.
PUBLISHED = {
    "mi_R-50-C": (224, 4089185256, 25557032, 11315688),
    "mi_RX-1.6-C": (224, 1602850792, 9190136, 7933512),
    "mi_RX-4-C": (224, 3964499816, 22118248, 12201608),
}


def test_resnet50_complexity_equals_pycls_published():
    cfg = load_config(PROTOTYPE / "mi_R-50-C.yaml")
    assert complexity(cfg, 224) == {"flops": 4089185256, "params": 25557032, "acts": 11315688}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_regnet_complexity_equals_pycls_published(name):
    size, flops, params, acts = PUBLISHED[name]
    assert complexity(load_config(PROTOTYPE / f"{name}.yaml"), size) == {"flops": flops, "params": params, "acts": acts}


@pytest.mark.slow  # builds the Keras models of prototype configurations (about 2 s)
def test_inconsistent_prototype_configs_build_as_keras_built_them():
    # EN-B5-C: stage 5 is 176 wide though ORIGINAL_WIDTHS says 172; stage 6's expansion is int(172 * 6) = 1032
    # (derived from 172) and reads the 176 channels the tensor has.
    cfg = load_config(PROTOTYPE / "mi_EN-B5-C.yaml")
    m = build_model(cfg, image_size=32)
    w = inits(m)
    assert w["s6/b0/block0/exp/conv.weight"].shape == (1032, 176, 1, 1)
    # RX-4-CDG: stage 4 concatenates 960+720+640 = 2320 channels; the head's FC reads them.
    m = build_model(load_config(PROTOTYPE / "mi_RX-4-CDG.yaml"), image_size=32)
    assert inits(m)["head/fc.weight"].shape == (1000, 2320)
    # EN-L4-CD: stages 1 and 7 have one branch (DEPTHS/WIDTHS have one entry), joined by an identity, unwrapped.
    cfg = load_config(PROTOTYPE / "mi_EN-L4-CD.yaml")
    m = build_model(cfg, image_size=32)
    names = nodes(m)
    assert [len(s.branches) for s in cfg.stages] == [1, 2, 2, 2, 2, 2, 1]
    assert "s1/b0/convfirst/conv" not in names and "s7/b0/convfirst/conv" not in names and "s2/b1/convfirst/conv" in names
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"input": np.zeros((1, 3, 32, 32), np.float32)})
    assert y.shape == (1, 1000) and np.isfinite(y).all()


@pytest.mark.slow  # builds the Keras models of prototype configurations (about 2.3 s)
def test_timed_layers_are_the_keras_models():
    # EN-B5-CD: SiLU model with SE; the Keras model the prototype timed has no SE, ReLU in the CPU branch,
    # MODEL.ACTIVATION_FUN (SiLU) in the DSP branch and in the stem (stage 1 forks right after it), ReLU in the
    # CPU head.
    cfg = load_config(PROTOTYPE / "mi_EN-B5-CD.yaml")
    timed = as_timed(cfg)
    m = build_model(timed, image_size=32)
    ns = nodes(m)
    assert not [n for n in ns if "/se/" in n] and [n for n in nodes(build_model(cfg, image_size=32)) if "/se/" in n]
    assert ns["s1/b0/block0/dw/act"].op_type == "Relu" and ns["s1/b1/block0/dw/act"].op_type == "Mul"
    assert ns["stem/act"].op_type == "Mul" and ns["head/act"].op_type == "Relu"
    assert meta(m)["stretchc.layers"] == "timed" and meta(build_model(cfg, image_size=32))["stretchc.layers"] == "pytorch"
    assert complexity(timed, 32) == graph_complexity(m)


def test_efficientnet_b5_complexity_equals_pycls_published(tmp_path):
    # The prototype's EN-B5-C declares ORIGINAL_WIDTHS 172 for a 176-wide stage (a note); with the typo fixed
    # the network is pycls's EN-B5, counted at its training size 456.
    text = (PROTOTYPE / "mi_EN-B5-C.yaml").read_text().replace("128, 172, 304", "128, 176, 304")
    (tmp_path / "EN-B5-C.yaml").write_text(text)
    cfg = load_config(tmp_path / "EN-B5-C.yaml")
    assert complexity(cfg, 456) == {"flops": 10266426072, "params": 30389784, "acts": 98857400}
