"""Emit the ONNX model of a validated `Config`, layer for layer as mbm-pycls's PyTorch `mbanynet` builds it.

Contract of `build_model(cfg, image_size, seed)`:
- opset 13, ir_version 8; one input `input` float32 [1,3,H,W] (NCHW), one output `logits` float32
  [1,NUM_CLASSES]; shapes inferred (every intermediate tensor has a value_info); passes onnx.checker full_check.
- Deterministic: the same (config, image_size, seed) gives byte-identical serialisations. Weights are random
  from `numpy.random.default_rng(seed)`, drawn in graph order: convs as pycls initialises them
  (normal, std sqrt(2 / (k*k*c_out))), SE conv biases and the FC as PyTorch/pycls do, and BatchNorm with
  random but plausible statistics (a trained export has non-trivial BN; the compiler folds them).
- Structure (PyTorch order: conv -> BatchNormalization -> activation; padding (k-1)//2 on all sides):
  stem `res_stem_in` = conv k s2, BN, act, 3x3 s2 max pool; `simple_stem_in` = conv k s2, BN, act;
  `res_stem_cifar` = conv 3 s1, BN, act. Blocks: `res_basic_block` = [proj 1x1 s + BN] + (3x3 s, BN, act,
  3x3, BN) -> add -> act; `res_bottleneck_block` = [proj] + (1x1, BN, act, 3x3 s grouped (w_b // GROUP_W
  groups, one Conv with `group`), BN, act, [SE], 1x1, BN) -> add -> act, stride on the 3x3 as AnyNet has it;
  `mbconv` = [1x1 expand, BN, act] (only when the width changes), kxk depthwise s, BN, act, [SE], 1x1 project,
  BN, [+ input when stride 1 and widths match]. SE = global average pool, 1x1 conv (bias), act, 1x1 conv
  (bias), sigmoid, multiply; its width is int(SE_R * block input width). Block activations follow the branch's
  ANYNET.ACTIVATION_FUN; the stem, SE and head use MODEL.ACTIVATION_FUN (as pycls's `activation()` does).
  SiLU is Sigmoid + Mul (opset 13 has no SiLU op).
- Stages, as the prototype's Keras builder wires them (`Branch`/`Stage` carry the resolved widths): MB_VER 2
  runs each branch's blocks on the merged tensor and concatenates the raw outputs; MB_VER 1 wraps every
  branch of a stage that lists several depths in a 1x1 conv + BN "convfirst" to
  make_divisible(w_b / o * w_prev, 8) and, when w_b != o // N, a 1x1 conv + BN "convlast" to o // N (w_prev
  is the previous stage's ORIGINAL_WIDTHS entry). A single-branch stage joins by an identity (no Concat). Head = [1x1 conv HEAD_W, BN, act], GlobalAveragePool, Flatten, Gemm.
- Node names: `stem/conv`, `s{i}/b{j}/block{n}/a/conv`, `s{i}/b{j}/convfirst/conv`, `s{i}/join`, `head/fc`
  (i = the config's 1-based stage number, j = 0-based branch index = DEVICES index, n = 0-based block index).
  Every tensor is named after the node that produces it.
- Metadata (`metadata_props`): `stretchc.placement`, `stretchc.stages`, `stretchc.config`, `stretchc.builder`,
  `stretchc.image_size`, `stretchc.seed`, `stretchc.layers` (`pytorch`, or `timed` for `as_timed(cfg)`: the
  prototype's Keras model, no SE, ReLU on the CPU); see `placement_regions`.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from stretchc.modelbuild.config import Branch, Config, Stage

OPSET = 13
IR_VERSION = 8
BUILDER = "stretchc build-model"


class _GraphBuilder:
    """Accumulates nodes and initialisers; every op helper returns the name of its output tensor."""

    def __init__(self, rng: np.random.Generator, eps: float) -> None:
        self.rng = rng
        self.eps = eps
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._names: set[str] = set()

    def _node(self, op: str, name: str, inputs: list[str], **attrs: object) -> str:
        if name in self._names:
            raise AssertionError(f"duplicate node name {name}")
        self._names.add(name)
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def _init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def conv(
        self, name: str, x: str, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False
    ) -> str:
        std = np.sqrt(2.0 / (k * k * c_out))
        w = self.rng.standard_normal((c_out, c_in // groups, k, k), dtype=np.float32) * np.float32(std)
        inputs = [x, self._init(f"{name}.weight", w)]
        if bias:
            bound = 1.0 / np.sqrt(c_in // groups * k * k)
            inputs.append(self._init(f"{name}.bias", self.rng.uniform(-bound, bound, c_out).astype(np.float32)))
        p = (k - 1) // 2
        return self._node(
            "Conv", name, inputs, kernel_shape=[k, k], strides=[stride, stride], pads=[p, p, p, p], group=groups
        )

    def bn(self, name: str, x: str, c: int, final: bool = False) -> str:
        """BatchNormalization with random statistics; `final` (the last BN of a residual transform) draws a
        smaller scale, as trained networks have, so the residual stream does not grow block after block."""
        r = self.rng
        scale = (r.uniform(0.1, 0.3, c) if final else r.uniform(0.7, 1.3, c)).astype(np.float32)
        shift = (0.1 * r.standard_normal(c)).astype(np.float32)
        mean = (0.1 * r.standard_normal(c)).astype(np.float32)
        var = r.uniform(0.7, 1.3, c).astype(np.float32)
        inputs = [x] + [self._init(f"{name}.{s}", a) for s, a in (("scale", scale), ("B", shift), ("mean", mean), ("var", var))]
        return self._node("BatchNormalization", name, inputs, epsilon=self.eps)

    def act(self, name: str, x: str, kind: str) -> str:
        if kind == "relu":
            return self._node("Relu", name, [x])
        gate = self._node("Sigmoid", f"{name}/sigmoid", [x])
        return self._node("Mul", name, [x, gate])

    def add(self, name: str, a: str, b: str) -> str:
        return self._node("Add", name, [a, b])

    def se(self, prefix: str, x: str, c: int, c_se: int, act: str) -> str:
        s = self._node("GlobalAveragePool", f"{prefix}/pool", [x])
        s = self.conv(f"{prefix}/fc1", s, c, c_se, 1, bias=True)
        s = self.act(f"{prefix}/act", s, act)
        s = self.conv(f"{prefix}/fc2", s, c_se, c, 1, bias=True)
        s = self._node("Sigmoid", f"{prefix}/gate", [s])
        return self._node("Mul", f"{prefix}/scale", [x, s])

    def conv_bn(
        self, prefix: str, x: str, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, final: bool = False
    ) -> str:
        return self.bn(f"{prefix}/bn", self.conv(f"{prefix}/conv", x, c_in, c_out, k, stride, groups), c_out, final)


def _block(
    g: _GraphBuilder, cfg: Config, stage: Stage, br: Branch, x: str, w_in: int, c_in: int, stride: int, prefix: str
) -> str:
    """One block reading `x` (`c_in` channels); `w_in` is its input width as the Keras builder derives it, which
    decides the expansion width and whether there is a projection (both equal `c_in` in a consistent config)."""
    act, w_out = br.activation, br.width
    if cfg.block_type == "mbconv":
        w_exp = int(w_in * float(br.bot_mul or 0))
        w_se = int(w_in * cfg.se_r)
        f, c_dw = x, c_in
        if w_exp != w_in:
            f = g.act(f"{prefix}/exp/act", g.conv_bn(f"{prefix}/exp", f, c_in, w_exp, 1), act)
            c_dw = w_exp
        f = g.conv_bn(f"{prefix}/dw", f, c_dw, c_dw, int(stage.kernel or 3), stride, c_dw)
        f = g.act(f"{prefix}/dw/act", f, act)
        if w_se:
            f = g.se(f"{prefix}/se", f, c_dw, w_se, cfg.activation)
        skip = stride == 1 and w_in == w_out
        f = g.conv_bn(f"{prefix}/proj", f, c_dw, w_out, 1, final=skip)
        if skip:
            f = g.add(f"{prefix}/add", x, f)
        return f
    shortcut = x
    if w_in != w_out or stride != 1:
        shortcut = g.conv_bn(f"{prefix}/proj", x, c_in, w_out, 1, stride)
    if cfg.block_type == "res_basic_block":
        f = g.act(f"{prefix}/a/act", g.conv_bn(f"{prefix}/a", x, c_in, w_out, 3, stride), act)
        f = g.conv_bn(f"{prefix}/b", f, w_out, w_out, 3, final=True)
    else:  # res_bottleneck_block
        w_b = int(round(w_out * float(br.bot_mul or 0)))
        w_se = int(round(w_in * cfg.se_r))
        groups = w_b // int(br.group_w or 1)
        f = g.act(f"{prefix}/a/act", g.conv_bn(f"{prefix}/a", x, c_in, w_b, 1), act)
        f = g.act(f"{prefix}/b/act", g.conv_bn(f"{prefix}/b", f, w_b, w_b, 3, stride, groups), act)
        if w_se:
            f = g.se(f"{prefix}/se", f, w_b, w_se, cfg.activation)
        f = g.conv_bn(f"{prefix}/c", f, w_b, w_out, 1, final=True)
    return g.act(f"{prefix}/act", g.add(f"{prefix}/add", shortcut, f), act)


def _stem(g: _GraphBuilder, cfg: Config, x: str) -> str:
    act = cfg.stem_activation or cfg.activation
    if cfg.stem_type == "res_stem_cifar":
        return g.act("stem/act", g.conv_bn("stem", x, 3, cfg.stem_w, 3), act)
    x = g.act("stem/act", g.conv_bn("stem", x, 3, cfg.stem_w, cfg.stem_k, 2), act)
    if cfg.stem_type == "res_stem_in":
        x = g._node("MaxPool", "stem/pool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    return x


def _stage(g: _GraphBuilder, cfg: Config, stage: Stage, x: str) -> str:
    outs: list[str] = []
    for br in stage.branches:
        prefix = f"s{stage.number}/b{br.index}"
        y = x
        if br.convfirst is not None:
            y = g.conv_bn(f"{prefix}/convfirst", y, stage.in_width, br.convfirst, 1)
        w_in, c_in, stride = br.in_width, br.in_actual, br.stride
        for blk in range(br.depth):
            y = _block(g, cfg, stage, br, y, w_in, c_in, stride, f"{prefix}/block{blk}")
            w_in, c_in, stride = br.width, br.width, 1
        if br.convlast is not None:
            y = g.conv_bn(f"{prefix}/convlast", y, br.width, br.convlast, 1)
        outs.append(y)
    if len(outs) == 1:  # the prototype's concat of one input: an identity
        return outs[0]
    return g._node("Concat", f"s{stage.number}/join", outs, axis=1)


def _head(g: _GraphBuilder, cfg: Config, x: str, w_in: int) -> str:
    if cfg.head_w > 0:
        x = g.act("head/act", g.conv_bn("head", x, w_in, cfg.head_w, 1), cfg.head_activation or cfg.activation)
        w_in = cfg.head_w
    x = g._node("GlobalAveragePool", "head/pool", [x])
    x = g._node("Flatten", "head/flatten", [x], axis=1)
    w = (0.01 * g.rng.standard_normal((cfg.num_classes, w_in))).astype(np.float32)
    b = np.zeros(cfg.num_classes, dtype=np.float32)
    inputs = [x, g._init("head/fc.weight", w), g._init("head/fc.bias", b)]
    return g._node("Gemm", "head/fc", inputs, transB=1)


def placement_regions(cfg: Config) -> dict[str, str]:
    """The configuration's placement in the compiler's region vocabulary (insertion order = graph order).

    `stem` (everything before the first branched stage's branches), `s{k}.b{j}` (k counts branched stages
    only, 1-based; j = DEVICES index), `s{k}.join` (the concat and the un-branched stages up to the next
    branched stage), `head` (after the last branched stage's concat). No branched stage: {"main": DEVICES[0]}.
    """
    branched = cfg.branched_stages
    if not branched:
        return {"main": cfg.devices[0]}
    regions = {"stem": cfg.stem_device}
    for k, stage in enumerate(branched, 1):
        for br in stage.branches:
            regions[f"s{k}.b{br.index}"] = br.device
        regions[f"s{k}.join"] = cfg.merge_device
    regions["head"] = cfg.head_device
    return regions


def unbranched_placement_notes(cfg: Config) -> list[str]:
    """Un-branched stages whose region puts them on another processor than DEVICES[0].

    The prototype runs an un-branched stage on DEVICES[0]; the region vocabulary folds it into `stem`,
    `s{k}.join` or `head`. The two agree for every prototype configuration; this reports where they do not.
    """
    if not cfg.branched_stages:
        return []
    notes: list[str] = []
    k = 0
    for stage in cfg.stages:
        if stage.branched:
            k += 1
            continue
        if k == 0:
            region, proc = "stem", cfg.stem_device
        elif k == len(cfg.branched_stages):
            region, proc = "head", cfg.head_device
        else:
            region, proc = f"s{k}.join", cfg.merge_device
        if proc != cfg.devices[0]:
            notes.append(
                f"un-branched stage {stage.number} is part of region {region} and will run on {proc}, "
                f"not on DEVICES[0]={cfg.devices[0]} as in the prototype"
            )
    return notes


def _metadata(cfg: Config, image_size: int, seed: int) -> dict[str, str]:
    placement = ",".join(f"{r}={p}" for r, p in placement_regions(cfg).items())
    return {
        "stretchc.builder": BUILDER,
        "stretchc.config": cfg.name,
        "stretchc.placement": placement,
        "stretchc.stages": json.dumps([len(s.branches) for s in cfg.branched_stages], separators=(",", ":")),
        "stretchc.image_size": str(image_size),
        "stretchc.layers": "timed" if cfg.timed else "pytorch",
        "stretchc.seed": str(seed),
    }


def build_model(cfg: Config, image_size: int = 224, seed: int = 0) -> onnx.ModelProto:
    """Build, shape-infer and return the ONNX model of `cfg` (see the module docstring for the contract)."""
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    g = _GraphBuilder(np.random.default_rng(seed), cfg.bn_eps)
    x = _stem(g, cfg, "input")
    for stage in cfg.stages:
        x = _stage(g, cfg, stage, x)
    logits = _head(g, cfg, x, cfg.stages[-1].out_width)
    # Name the graph output `logits` without an Identity: rename the FC's output tensor.
    g.nodes[-1].output[0] = "logits"
    assert logits == "head/fc"
    graph = helper.make_graph(
        g.nodes,
        f"stretchc_{cfg.name}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, image_size, image_size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, cfg.num_classes])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="stretchc",
        doc_string=f"NN-Stretch mbanynet '{cfg.name}' with random weights (seed {seed})",
    )
    helper.set_model_props(model, _metadata(cfg, image_size, seed))
    return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=False)
