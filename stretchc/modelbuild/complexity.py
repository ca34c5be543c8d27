"""FLOPs, parameters and activations of a configuration's network, counted the way pycls counts them.

The per-layer rules are pycls's `*_cx` helpers (pycls/models/blocks.py):
- conv: output h, w = (h-1)//stride+1; flops += k*k*c_in*c_out*h*w//groups (+ c_out*h*w with bias);
  params += k*k*c_in*c_out//groups (+ c_out); acts += c_out*h*w;
- batch norm: params += 2*c (scale and shift; running statistics are not parameters); no flops, no acts;
- max pool: acts += c*h*w at the output size; global average pool: h = w = 1, nothing counted;
- linear: flops = params = c_in*c_out (+ c_out with bias); acts += c_out.
Additions, activations, the SE product and concatenation count nothing, as in pycls. A projection shortcut is
counted at the block's output size, then the block's transform starts again from its input size.

`complexity(cfg, image_size)` counts every layer the builder emits (the prototype's Keras wiring, with the
widths resolved in `Config`), so for consistent MB_VER 2 configurations (and every un-branched one) it equals
mbm-pycls `AnyNet.complexity()`, and for single-branch ResNet/RegNet/EfficientNet configurations it equals
pycls's published figures (dev/model_complexity.json). For MB_VER 1 the prototype's `complexity()` forgets the
per-branch "convlast" 1x1 conv + BN; `prototype=True` leaves them out too so the numbers can be compared with
the prototype's logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from stretchc.modelbuild.config import Branch, Config, Stage


@dataclass
class _Cx:
    h: int
    w: int
    flops: int = 0
    params: int = 0
    acts: int = 0

    def conv(self, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False) -> None:
        self.h, self.w = (self.h - 1) // stride + 1, (self.w - 1) // stride + 1
        hw = self.h * self.w
        self.flops += k * k * c_in * c_out * hw // groups + (c_out * hw if bias else 0)
        self.params += k * k * c_in * c_out // groups + (c_out if bias else 0)
        self.acts += c_out * hw

    def norm(self, c: int) -> None:
        self.params += 2 * c

    def pool(self, c: int, stride: int) -> None:
        self.h, self.w = (self.h - 1) // stride + 1, (self.w - 1) // stride + 1
        self.acts += c * self.h * self.w

    def gap(self) -> None:
        self.h, self.w = 1, 1

    def linear(self, c_in: int, c_out: int, bias: bool = True) -> None:
        self.flops += c_in * c_out + (c_out if bias else 0)
        self.params += c_in * c_out + (c_out if bias else 0)
        self.acts += c_out

    def se(self, c: int, c_se: int) -> None:
        h, w = self.h, self.w
        self.gap()
        self.conv(c, c_se, 1, bias=True)
        self.conv(c_se, c, 1, bias=True)
        self.h, self.w = h, w


def _block(cx: _Cx, cfg: Config, stage: Stage, br: Branch, w_in: int, c_in: int, stride: int) -> None:
    """One block reading `c_in` channels, with derived input width `w_in` (see onnx_builder._block)."""
    w_out = br.width
    if cfg.block_type in ("res_basic_block", "res_bottleneck_block") and (w_in != w_out or stride != 1):
        h, w = cx.h, cx.w
        cx.conv(c_in, w_out, 1, stride)
        cx.norm(w_out)
        cx.h, cx.w = h, w
    if cfg.block_type == "res_basic_block":
        cx.conv(c_in, w_out, 3, stride)
        cx.norm(w_out)
        cx.conv(w_out, w_out, 3)
        cx.norm(w_out)
    elif cfg.block_type == "res_bottleneck_block":
        w_b = int(round(w_out * float(br.bot_mul or 0)))
        w_se = int(round(w_in * cfg.se_r))
        groups = w_b // int(br.group_w or 1)
        cx.conv(c_in, w_b, 1)
        cx.norm(w_b)
        cx.conv(w_b, w_b, 3, stride, groups)
        cx.norm(w_b)
        if w_se:
            cx.se(w_b, w_se)
        cx.conv(w_b, w_out, 1)
        cx.norm(w_out)
    else:  # mbconv
        w_exp = int(w_in * float(br.bot_mul or 0))
        w_se = int(w_in * cfg.se_r)
        k = int(stage.kernel or 3)
        c_dw = c_in
        if w_exp != w_in:
            cx.conv(c_in, w_exp, 1)
            cx.norm(w_exp)
            c_dw = w_exp
        cx.conv(c_dw, c_dw, k, stride, c_dw)
        cx.norm(c_dw)
        if w_se:
            cx.se(c_dw, w_se)
        cx.conv(c_dw, w_out, 1)
        cx.norm(w_out)


def _stem(cx: _Cx, cfg: Config) -> None:
    if cfg.stem_type == "res_stem_cifar":
        cx.conv(3, cfg.stem_w, 3)
        cx.norm(cfg.stem_w)
        return
    cx.conv(3, cfg.stem_w, cfg.stem_k, 2)
    cx.norm(cfg.stem_w)
    if cfg.stem_type == "res_stem_in":
        cx.pool(cfg.stem_w, 2)


def complexity(cfg: Config, image_size: int = 224, *, prototype: bool = False) -> dict[str, int]:
    """Return {"flops", "params", "acts"} of `cfg`'s network for a square `image_size` input (batch 1).

    `prototype=True` omits MB_VER 1's convlast layers, as mbm-pycls `AnyNet.complexity()` does.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    cx = _Cx(image_size, image_size)
    _stem(cx, cfg)
    for stage in cfg.stages:
        h0, w0 = cx.h, cx.w
        for br in stage.branches:
            cx.h, cx.w = h0, w0
            if br.convfirst is not None:
                cx.conv(stage.in_width, br.convfirst, 1)
                cx.norm(br.convfirst)
            w_in, c_in, stride = br.in_width, br.in_actual, br.stride
            for _ in range(br.depth):
                _block(cx, cfg, stage, br, w_in, c_in, stride)
                w_in, c_in, stride = br.width, br.width, 1
            if br.convlast is not None and not prototype:
                cx.conv(br.width, br.convlast, 1)
                cx.norm(br.convlast)
    prev_w = cfg.stages[-1].out_width
    if cfg.head_w > 0:
        cx.conv(prev_w, cfg.head_w, 1)
        cx.norm(cfg.head_w)
        prev_w = cfg.head_w
    cx.gap()
    cx.linear(prev_w, cfg.num_classes, bias=True)
    return {"flops": cx.flops, "params": cx.params, "acts": cx.acts}
