"""The trained example's network: a small branched CNN that classifies 8x8 handwritten digits.

Input `image` [1, 1, 8, 8] (NCHW, pixels in [0, 1]); output `logits` [1, 10] (one score per digit).

    stem     3x3 conv 1->16, batch norm, ReLU                                     8x8
    stage 1  3 branches of (1x1 conv 16->12, BN, ReLU; 3x3 conv 12->12, BN, ReLU),
             concat -> 36 channels, 2x2 max-pool                                  4x4
    stage 2  2 branches of (1x1 conv 36->24, BN, ReLU; 3x3 conv 24->24, BN, ReLU),
             concat -> 48 channels
    head     global average pool, fully connected 48->10

This is the shape of `stretchc.examples.branched_model` (a stem, concat-joined stages, a head), so
find-branches finds `stem, s1.b0, s1.b1, s1.b2, s1.join, s2.b0, s2.b1, s2.join, head`. `build(layers, x)`
walks the structure once for any layer factory: the ONNX one here (the project's GraphBuilder, with the
trained weights) and the Keras one that trains it (`stretchc.digits.train`), so both are the same network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

import numpy as np
import onnx

from stretchc.examples import GraphBuilder

INPUT = "image"
OUTPUT = "logits"
SIZE = 8
CLASSES = 10
STEM_WIDTH = 16
STAGES = ((3, 12), (2, 24))  # (branches, channels of each branch) per stage; branches are joined by concat

T = TypeVar("T")


class Layers(Protocol[T]):
    """A layer factory: each method adds a layer (ONNX names, e.g. `s1/b0/c0`) and returns its output."""

    def conv(self, name: str, x: T, cin: int, cout: int, k: int) -> T: ...  # conv (no bias), batch norm, ReLU

    def concat(self, name: str, xs: Sequence[T]) -> T: ...  # along channels

    def max_pool(self, name: str, x: T) -> T: ...  # 2x2, stride 2

    def head(self, x: T, channels: int, classes: int) -> T: ...  # global average pool, fully connected


def build(layers: Layers[T], x: T) -> T:
    """The network on input `x`; returns the logits."""
    x = layers.conv("stem", x, 1, STEM_WIDTH, 3)
    channels = STEM_WIDTH
    for s, (branches, width) in enumerate(STAGES, start=1):
        outs = [layers.conv(f"s{s}/b{j}/c1", layers.conv(f"s{s}/b{j}/c0", x, channels, width, 1), width, width, 3) for j in range(branches)]
        x = layers.concat(f"s{s}/join", outs)
        channels = width * branches
        if s < len(STAGES):
            x = layers.max_pool(f"s{s}/pool", x)
    return layers.head(x, channels, CLASSES)


class _OnnxLayers:
    """`Layers` as ONNX nodes through GraphBuilder (initializers named `<layer>.w`, `<layer>.bn.*`, `head.fc.*`)."""

    def __init__(self, builder: GraphBuilder) -> None:
        self.b = builder

    def conv(self, name: str, x: str, cin: int, cout: int, k: int) -> str:
        return self.b.conv(name, x, cin, cout, k=k)

    def concat(self, name: str, xs: Sequence[str]) -> str:
        return self.b.op("Concat", name, list(xs), axis=1)

    def max_pool(self, name: str, x: str) -> str:
        return self.b.op("MaxPool", name, [x], kernel_shape=[2, 2], strides=[2, 2])

    def head(self, x: str, channels: int, classes: int) -> str:
        return self.b.head(x, channels, classes)


def digits_model(weights: Mapping[str, np.ndarray], *, doc: str = "") -> onnx.ModelProto:
    """The network as a checked ONNX model with the given weights (every initializer must be given)."""
    builder = GraphBuilder(weights=weights)
    logits = build(_OnnxLayers(builder), INPUT)
    missing = sorted({i.name for i in builder.inits} - set(weights))
    if missing:
        raise ValueError(f"no trained value for {', '.join(missing)}")
    unused = sorted(set(weights) - {i.name for i in builder.inits})
    if unused:
        raise ValueError(f"weights the network does not have: {', '.join(unused)}")
    model = builder.model("digits", [(INPUT, [1, 1, SIZE, SIZE])], [(logits, [1, CLASSES])])
    model.doc_string = doc
    return model
