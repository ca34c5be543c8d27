"""Synthetic branched ONNX models: the bundled example, and the shapes tests and benchmarks compile.

`example_model()` is the model the README compiles (committed as `examples/branchy.onnx`; a test checks
the file equals what this code generates). `branched_model(...)` builds the structural variants: N
branches per stage, concat or add joins, several stages, residual adds inside a branch, a branch that
forks and rejoins inside itself, and no branches at all. `pyramid_model(...)` builds a feature-pyramid
network, whose parallel paths start at different tensors. Weights are seeded; same arguments, same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


@dataclass
class GraphBuilder:
    """A few conv-net layers as ONNX nodes with deterministic names.

    Every initializer takes its value from `weights` (trained values keyed by initializer name, e.g.
    `stem.w`, `stem.bn.var`, `head.fc.b`) when it is there, and is He-scaled seeded random otherwise.
    """

    seed: int = 0
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def _init(self, name: str, shape: tuple[int, ...], random: Callable[[], np.ndarray]) -> str:
        """Add initializer `name`: the given trained value (its shape checked), else `random()`."""
        if name in self.weights:
            value = np.asarray(self.weights[name], dtype=np.float32)
            if value.shape != shape:
                raise ValueError(f"weight {name!r} has shape {list(value.shape)}; the layer needs {list(shape)}")
        else:
            value = random().astype(np.float32)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def _weight(self, name: str, shape: tuple[int, ...], scale: float) -> str:
        return self._init(name, shape, lambda: self.rng.standard_normal(shape) * scale)

    def conv(self, name: str, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, group: int = 1, relu: bool = True, bn: bool = True) -> str:
        w = self._weight(f"{name}.w", (cout, cin // group, k, k), (2.0 / (cin // group * k * k)) ** 0.5)
        out = f"{name}.conv"
        self.nodes.append(
            helper.make_node("Conv", [x, w], [out], name=f"{name}/conv", kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=group)
        )
        if bn:
            scale = self._init(f"{name}.bn.scale", (cout,), lambda: 1.0 + (self.rng.standard_normal(cout) * 0.1).astype(np.float32))
            bias = self._weight(f"{name}.bn.bias", (cout,), 0.1)
            mean = self._weight(f"{name}.bn.mean", (cout,), 0.1)
            var = self._init(f"{name}.bn.var", (cout,), lambda: self.rng.uniform(0.5, 1.5, cout))
            self.nodes.append(helper.make_node("BatchNormalization", [out, scale, bias, mean, var], [f"{name}.bn"], name=f"{name}/bn"))
            out = f"{name}.bn"
        if relu:
            self.nodes.append(helper.make_node("Relu", [out], [f"{name}.relu"], name=f"{name}/relu"))
            out = f"{name}.relu"
        return out

    def op(self, op_type: str, name: str, inputs: list[str], **attrs: object) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def upsample(self, name: str, x: str, factor: int) -> str:
        """Nearest upsampling by a whole `factor` (Resize with its default coordinates, which lowers natively)."""
        scales = self._init(f"{name}.scales", (4,), lambda: np.array([1, 1, factor, factor]))
        return self.op("Resize", name, [x, "", scales], mode="nearest")

    def head(self, x: str, channels: int, classes: int) -> str:
        gap = self.op("GlobalAveragePool", "head/gap", [x])
        flat = self.op("Flatten", "head/flatten", [gap], axis=1)
        w = self._weight("head.fc.w", (classes, channels), (1.0 / channels) ** 0.5)
        b = self._weight("head.fc.b", (classes,), 0.01)
        return self.op("Gemm", "logits", [flat, w, b], transB=1)

    def model(self, name: str, inputs: list[tuple[str, list[int]]], outputs: list[tuple[str, list[int]]]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
            initializer=self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="stretchc.examples")
        model.ir_version = 8
        model = onnx.shape_inference.infer_shapes(model)
        onnx.checker.check_model(model, full_check=True)
        return model


def branched_model(
    *,
    branches: list[int] | tuple[int, ...] = (2,),
    join: str = "concat",
    size: int = 32,
    width: int = 16,
    depth: int = 2,
    residual: bool = False,
    nested: bool = False,
    classes: int = 10,
    seed: int = 0,
    name: str = "branched",
) -> onnx.ModelProto:
    """A stem, then one stage per entry of `branches` (that many parallel branches; 1 = no fork), then a head.

    join: "concat" (branch widths add up) or "add" (every branch has the stage width).
    residual: each branch block adds its input back (a residual add inside the branch).
    nested: branch 0 forks into two convs and rejoins with a concat inside itself, followed by a 1x1 conv
    (so the converter cannot merge the inner concat into a concat join).
    """
    b = GraphBuilder(seed)
    x = b.conv("stem", "input", 3, width, k=3, stride=2)
    channels = width
    for s, n in enumerate(branches, start=1):
        if n == 1:
            for d in range(depth):
                x = b.conv(f"s{s}/c{d}", x, channels, channels)
            continue
        outs = []
        bw = channels if join == "add" else max(channels // n, 4)
        for j in range(n):
            y = b.conv(f"s{s}/b{j}/c0", x, channels, bw, k=1)
            for d in range(1, depth):
                z = b.conv(f"s{s}/b{j}/c{d}", y, bw, bw, k=3, relu=not residual)
                if residual:
                    z = b.op("Relu", f"s{s}/b{j}/res{d}", [b.op("Add", f"s{s}/b{j}/add{d}", [y, z])])
                y = z
            if nested and j == 0:
                half = max(bw // 2, 2)
                p = b.conv(f"s{s}/b{j}/n0", y, bw, half, k=1)
                q = b.conv(f"s{s}/b{j}/n1", y, bw, bw - half, k=3)
                y = b.op("Concat", f"s{s}/b{j}/ncat", [p, q], axis=1)
                y = b.conv(f"s{s}/b{j}/n2", y, bw, bw, k=1)
            outs.append(y)
        if join == "concat":
            x = b.op("Concat", f"s{s}/join", outs, axis=1)
            channels = bw * n
        else:
            acc = outs[0]
            for j, o in enumerate(outs[1:], start=1):
                acc = b.op("Add", f"s{s}/join{j}", [acc, o])
            x = acc
            channels = bw
    logits = b.head(x, channels, classes)
    return b.model(name, [("input", [1, 3, size, size])], [(logits, [1, classes])])


def example_model() -> onnx.ModelProto:
    """The README's example: two stages of 2 and 3 branches (concat joins), residual blocks in branches.

    160 px and 32 channels. Without --place the cost model keeps it on the Pixel 6 CPU at float32 (the GPU's
    dispatch and transfers cost more than its branches gain), and warns that one partition would be faster still;
    tests that need GPU partitions pin them (tests/conftest.py `example_placement`).
    """
    return branched_model(branches=(2, 3), join="concat", size=160, width=32, depth=2, residual=True, name="branchy")


def stretchy_model() -> onnx.ModelProto:
    """The README's first example: a model for which stretching pays on a Pixel 6, built as NN-Stretch builds its
    networks (each stage forks into one branch per processor, joined by a concat): two stages of two deep
    residual branches (six 3x3 convolutions each), 96 px input, 64 channels. Its branches cost each processor
    about as much as the other's, so the cost model runs them on the CPU and the GPU at the same time.
    """
    return branched_model(branches=(2, 2), join="concat", size=96, width=64, depth=6, residual=True, name="stretchy")


def pyramid_model(
    *, size: int = 160, widths: tuple[int, ...] = (32, 64, 128, 256), lateral: int = 64, seed: int = 0, name: str = "pyramid"
) -> onnx.ModelProto:
    """A feature-pyramid network, the shape of a text detector's neck (PP-OCR's DB detector): parallel paths
    that start at different tensors, for find-branches' multi-entry stages.

    A stem (3x3 conv, stride 2), then one strided stage per entry of `widths` (3x3 conv, stride 2, then a 3x3
    conv): the scales c2 (size / 4), c3, ... (c5 for the default four). Per scale a lateral path: a 1x1 conv to
    `lateral` channels, a 3x3 conv, and nearest upsampling (Resize) to the c2 scale (none at c2). The paths are
    concatenated, coarsest first, and a head (3x3 conv, 1x1 conv to one channel, sigmoid) gives a map at the c2
    scale, [1, 1, size / 4, size / 4].
    """
    b = GraphBuilder(seed)
    x = b.conv("stem", "input", 3, widths[0] // 2, k=3, stride=2)
    channels = widths[0] // 2
    scales = []
    for k, w in enumerate(widths, start=2):
        x = b.conv(f"c{k}/down", x, channels, w, k=3, stride=2)
        x = b.conv(f"c{k}/conv", x, w, w, k=3)
        scales.append((k, x, w))
        channels = w
    paths = []
    for k, c, w in reversed(scales):
        y = b.conv(f"p{k}/lateral", c, w, lateral, k=1)
        y = b.conv(f"p{k}/smooth", y, lateral, lateral, k=3)
        paths.append(b.upsample(f"p{k}/up", y, 2 ** (k - 2)) if k > 2 else y)
    y = b.op("Concat", "neck/concat", paths, axis=1)
    y = b.conv("head/conv", y, lateral * len(paths), lateral, k=3)
    y = b.conv("head/map", y, lateral, 1, k=1, relu=False, bn=False)
    out = b.op("Sigmoid", "map", [y])
    side = size // 4
    return b.model(name, [("input", [1, 3, size, size])], [(out, [1, 1, side, side])])
