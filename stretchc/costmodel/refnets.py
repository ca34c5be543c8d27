"""Per-op FLOP/byte profiles of published reference networks, built from their architecture tables.

The cost model is calibrated against latencies published for these networks (the project's sourced facts,
../shared/facts/tflite-delegates.md §9). To predict them we need their op lists; nothing is downloaded: every
network is generated here from its layer table (conv shapes per layer, as in the papers / reference implementations). Batch 1, NHWC.

Each network is a list of `OpProfile`s (see `stretchc.costmodel.profile`). FLOPs count a multiply-add as
2 FLOPs; elements count the op's input and output activations plus its weights.
"""

from __future__ import annotations

import math
from typing import Callable

from stretchc.costmodel.profile import OpProfile


class _Net:
    def __init__(self, size: int) -> None:
        self.h = self.w = size
        self.c = 3
        self.ops: list[OpProfile] = []

    def conv(self, cout: int, k: int, s: int = 1, *, groups: int = 1, pad_same: bool = True) -> None:
        cin = self.c
        ho = math.ceil(self.h / s) if pad_same else (self.h - k) // s + 1
        wo = math.ceil(self.w / s) if pad_same else (self.w - k) // s + 1
        dw = groups == cin and groups > 1 and cout % cin == 0
        per_out = k * k * (cin // groups)
        flops = 2 * ho * wo * cout * per_out
        weights = cout * per_out
        elems = self.h * self.w * cin + ho * wo * cout + weights
        self.ops.append(OpProfile("dwconv" if dw else "conv", flops, elems))
        self.h, self.w, self.c = ho, wo, cout

    def dw(self, k: int, s: int = 1) -> None:
        self.conv(self.c, k, s, groups=self.c)

    def elementwise(self, n_inputs: int = 2, *, out_c: int | None = None) -> None:
        c = out_c or self.c
        n = self.h * self.w * c
        self.ops.append(OpProfile("mem", 0.0, (n_inputs + 1) * n))

    def pool(self, k: int, s: int, *, pad_same: bool = True) -> None:
        ho = math.ceil(self.h / s) if pad_same else (self.h - k) // s + 1
        wo = math.ceil(self.w / s) if pad_same else (self.w - k) // s + 1
        self.ops.append(OpProfile("mem", 0.0, (self.h * self.w + ho * wo) * self.c))
        self.h, self.w = ho, wo

    def global_pool(self) -> None:
        self.ops.append(OpProfile("mem", 0.0, (self.h * self.w + 1) * self.c))
        self.h = self.w = 1

    def fc(self, cout: int) -> None:
        cin = self.h * self.w * self.c
        self.ops.append(OpProfile("conv", 2 * cin * cout, cin + cout + cin * cout))
        self.h = self.w = 1
        self.c = cout

    def softmax(self) -> None:
        self.ops.append(OpProfile("mem", 0.0, 2 * self.c))


def mobilenet_v1(size: int = 224) -> list[OpProfile]:
    n = _Net(size)
    n.conv(32, 3, 2)
    for cout, s in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]:
        n.dw(3, s)
        n.conv(cout, 1)
    n.global_pool()
    n.fc(1001)
    n.softmax()
    return n.ops


def mobilenet_v2(size: int = 224) -> list[OpProfile]:
    n = _Net(size)
    n.conv(32, 3, 2)
    for t, c, reps, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(reps):
            cin = n.c
            if t != 1:
                n.conv(cin * t, 1)
            n.dw(3, s if i == 0 else 1)
            n.conv(c, 1)
            if i > 0:
                n.elementwise()
    n.conv(1280, 1)
    n.global_pool()
    n.fc(1001)
    n.softmax()
    return n.ops


_EN_B0 = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
# EfficientNet-Lite (tensorflow/tpu efficientnet/lite): no squeeze-excite, ReLU6, stem and head not scaled,
# (width, depth, resolution) per variant.
EN_LITE = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260), 3: (1.2, 1.4, 280), 4: (1.4, 1.8, 300)}


def _round_filters(f: int, mult: float, divisor: int = 8) -> int:
    f2 = f * mult
    new = max(divisor, int(f2 + divisor / 2) // divisor * divisor)
    if new < 0.9 * f2:
        new += divisor
    return int(new)


def efficientnet_lite(variant: int) -> list[OpProfile]:
    wm, dm, size = EN_LITE[variant]
    n = _Net(size)
    n.conv(32, 3, 2)  # stem fixed in Lite
    for idx, (t, k, s, c, reps) in enumerate(_EN_B0):
        r = reps if idx in (0, len(_EN_B0) - 1) else int(math.ceil(dm * reps))
        cout = _round_filters(c, wm)
        for i in range(r):
            cin = n.c
            if t != 1:
                n.conv(cin * t, 1)
            n.dw(k, s if i == 0 else 1)
            n.conv(cout, 1)
            if i > 0 and cin == cout:
                n.elementwise()
    n.conv(1280, 1)  # head fixed in Lite
    n.global_pool()
    n.fc(1000)
    n.softmax()
    return n.ops


def resnet(depths: tuple[int, ...] = (3, 4, 6, 3), size: int = 224) -> list[OpProfile]:
    """Bottleneck ResNet (ResNet-50: 3,4,6,3; ResNet-101: 3,4,23,3)."""
    n = _Net(size)
    n.conv(64, 7, 2)
    n.pool(3, 2)
    for stage, reps in enumerate(depths):
        width = 64 * 2**stage
        for i in range(reps):
            s = 2 if i == 0 and stage > 0 else 1
            h, w, cin = n.h, n.w, n.c
            if i == 0:
                n.conv(width * 4, 1, s)  # projection shortcut
                n.h, n.w, n.c = h, w, cin
            n.conv(width, 1)
            n.conv(width, 3, s)
            n.conv(width * 4, 1)
            n.elementwise()
    n.global_pool()
    n.fc(1000)
    n.softmax()
    return n.ops


def squeezenet(size: int = 224) -> list[OpProfile]:
    """SqueezeNet 1.0 (Iandola et al. 2016, table 1)."""
    n = _Net(size)
    n.conv(96, 7, 2, pad_same=False)
    n.pool(3, 2, pad_same=False)

    def fire(s1: int, e: int) -> None:
        n.conv(s1, 1)
        h, w, c = n.h, n.w, n.c
        n.conv(e, 1)
        n.h, n.w, n.c = h, w, c
        n.conv(e, 3)
        n.c = 2 * e
        n.elementwise(2)  # concat

    fire(16, 64)
    fire(16, 64)
    fire(32, 128)
    n.pool(3, 2, pad_same=False)
    fire(32, 128)
    fire(48, 192)
    fire(48, 192)
    fire(64, 256)
    n.pool(3, 2, pad_same=False)
    fire(64, 256)
    n.conv(1000, 1)
    n.global_pool()
    n.softmax()
    return n.ops


REFERENCE_NETS: dict[str, Callable[[], list[OpProfile]]] = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "efficientnet_lite0": lambda: efficientnet_lite(0),
    "efficientnet_lite1": lambda: efficientnet_lite(1),
    "efficientnet_lite2": lambda: efficientnet_lite(2),
    "efficientnet_lite3": lambda: efficientnet_lite(3),
    "efficientnet_lite4": lambda: efficientnet_lite(4),
    "resnet50": lambda: resnet((3, 4, 6, 3)),
    "resnet101": lambda: resnet((3, 4, 23, 3)),
    # TFLite's hosted ResNet_V2_101 is resnet_v2_101_299 (a 299x299 input).
    "resnet101_299": lambda: resnet((3, 4, 23, 3), size=299),
    "squeezenet": squeezenet,
}


def reference_net(name: str) -> list[OpProfile]:
    """The op list of a reference network (KeyError naming the known ones for an unknown name)."""
    if name not in REFERENCE_NETS:
        raise KeyError(f"unknown reference network {name!r}; known: {', '.join(sorted(REFERENCE_NETS))}")
    return REFERENCE_NETS[name]()
