"""Per-op work profile: op class, FLOPs, elements moved, kernel launches. From IR nodes or reference-net tables.

Op classes (the cost model has one compute efficiency per class, per kernel family; see `stretchc.costmodel`):
- `conv`: CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED, BATCH_MATMUL — dense multiply-accumulate work;
- `dwconv`: DEPTHWISE_CONV_2D — low arithmetic intensity, its own efficiency;
- `mem`: everything else (elementwise, pooling, concat, pad, activations): no compute term, only data moved.

Within a class, `kernel` names a shape class whose kernels a processor may run far off its class's efficiency
(`SHAPE_CLASSES`; "" for the rest): CPU kernel libraries have fast paths for common windows and channel counts and a
slow generic one, and leave some quantized ops to reference kernels. The cost model prices an op of a shape class
at its class's rate times the class's factor where a target measured one (`stretchc calibrate`), else at 1.

`elems` counts every element the op reads or writes (activations, weights, bias), so the bytes moved are
`elems * width` once the dtype the op runs at is known. `launches` is the number of kernels the op runs as:
a grouped CONV_2D with g groups runs as SPLIT, g convolutions and CONCATENATION (g + 2) on the processors
whose kernels lack grouped convolution (the Hexagon delegate after ungroup-convs, and every processor in the
NN-Stretch prototype, whose Keras builder emitted grouped convs that way); 1 for every other op.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stretchc.ir import Node, Value, groups_of

CLASSES = ("conv", "dwconv", "mem")
# Shape classes (see the module docstring): a depthwise window beyond 5 x 5; a depthwise window beyond 3 x 3 up to
# 5 x 5 (XNNPACK's 25-tap kernels run fewer taps per cycle than its 9-tap ones); a dense convolution over few input
# channels or a short reduction (a 3-channel stem, a 1 x 1 from 16 channels); a standalone clamp activation; an
# average pool with a window; a pool with a 1 x 1 window and a stride (a subsampling); PAD, of few channels (a
# kernel that copies rows of a few elements pays per pixel) or more; CONCATENATION; and every other op without
# weights (`ELTWISE`: elementwise arithmetic, max pooling, reductions, layout changes, conversions), which computes
# per element where a convolution's data movement streams: a convolution's memory term does not price it.
ELTWISE = "eltwise"
SHAPE_CLASSES = ("dwconv-large", "dwconv-5x5", "conv-narrow", "relu", "avgpool", "subsample", "pad-narrow", "pad", "concat", ELTWISE)
NARROW_CHANNELS = 16  # a dense convolution or a PAD over fewer input channels than this is narrow
NARROW_REDUCTION = 32  # so is one whose reduction (kh x kw x channels per group) is this short or shorter
RELUS = frozenset({"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"})
# Ops that only reinterpret a buffer: no work at all on any processor.
FREE_OPS = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})


@dataclass(frozen=True)
class OpProfile:
    cls: str  # one of CLASSES
    flops: float  # multiply-add = 2 FLOPs; 0 for `mem`
    elems: float  # elements read and written
    launches: int = 1
    shape_class: str = ""  # one of SHAPE_CLASSES, or ""
    weights: float = 0.0  # elements of its constant filter (conv, depthwise, fully connected), counted in `elems` too


def _numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def profile_node(node: Node) -> OpProfile | None:
    """The work of one IR node (None for a free op or a stretch.* node)."""
    if not node.op.startswith("tfl.") or node.kind in FREE_OPS:
        return None
    kind = node.kind
    out = node.outputs[0] if node.outputs else None
    out_n = _numel(out.shape) if out is not None else 0
    elems = float(sum(_numel(v.shape) for v in [*node.inputs, *node.outputs] if v is not None))
    w = node.inputs[1] if len(node.inputs) > 1 else None
    if kind in ("CONV_2D", "TRANSPOSE_CONV") and w is not None and len(w.shape) == 4:
        # Filters are [O, kh, kw, I/groups] for both (TRANSPOSE_CONV's input 1 is its filter too).
        groups = groups_of(node)
        return OpProfile("conv", 2.0 * out_n * _numel(w.shape[1:]), elems, groups + 2 if groups > 1 else 1, shape_class(node), _weights(w))
    if kind == "DEPTHWISE_CONV_2D" and w is not None and len(w.shape) == 4:
        return OpProfile("dwconv", 2.0 * out_n * w.shape[1] * w.shape[2], elems, 1, shape_class(node), _weights(w))
    if kind in ("FULLY_CONNECTED", "BATCH_MATMUL") and w is not None and w.shape:
        k = w.shape[-1] if kind == "FULLY_CONNECTED" else w.shape[-2]
        return OpProfile("conv", 2.0 * out_n * k, elems, 1, "", _weights(w))
    return OpProfile("mem", 0.0, elems, 1, shape_class(node) or ELTWISE)


def _weights(w: Value) -> float:
    """The elements of a filter that is a constant (0 for one computed at run time)."""
    return float(_numel(w.shape)) if w.is_const else 0.0


def shape_class(node: Node) -> str:
    """The shape class (`SHAPE_CLASSES`) of a TFLite node's kernel, or "" when it has none of its own (an op
    without weights then profiles as `ELTWISE`)."""
    kind, a = node.kind, node.attrs
    w = node.inputs[1] if len(node.inputs) > 1 else None
    if kind == "CONV_2D" and w is not None and len(w.shape) == 4:
        channels = int(node.inputs[0].shape[-1]) if node.inputs[0].shape else 0
        return "conv-narrow" if channels < NARROW_CHANNELS or _numel(w.shape[1:]) <= NARROW_REDUCTION else ""
    if kind == "DEPTHWISE_CONV_2D" and w is not None and len(w.shape) == 4:
        window = w.shape[1] * w.shape[2]
        return "dwconv-large" if window > 25 else "dwconv-5x5" if window > 9 else ""
    if kind in RELUS:
        return "relu"
    if kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        if a.get("filterHeight") == 1 and a.get("filterWidth") == 1:
            return "subsample"
        return "avgpool" if kind == "AVERAGE_POOL_2D" else ""
    if kind in ("PAD", "PADV2"):
        return "pad-narrow" if node.inputs[0].shape and int(node.inputs[0].shape[-1]) < NARROW_CHANNELS else "pad"
    if kind == "CONCATENATION":
        return "concat"
    return ""

