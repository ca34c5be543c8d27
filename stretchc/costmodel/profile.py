"""Per-op work profile: op class, FLOPs, elements moved, kernel launches. From IR nodes or reference-net tables.

Op classes (the cost model has one compute efficiency per class, per kernel family; see `stretchc.costmodel`):
- `conv`: CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED, BATCH_MATMUL — dense multiply-accumulate work;
- `dwconv`: DEPTHWISE_CONV_2D — low arithmetic intensity, its own efficiency;
- `mem`: everything else (elementwise, pooling, concat, pad, activations): no compute term, only data moved.

`elems` counts every element the op reads or writes (activations, weights, bias), so the bytes moved are
`elems * width` once the dtype the op runs at is known. `launches` is the number of kernels the op runs as:
a grouped CONV_2D with g groups runs as SPLIT, g convolutions and CONCATENATION (g + 2) on the processors
whose kernels lack grouped convolution (the Hexagon delegate after ungroup-convs, and every processor in the
NN-Stretch prototype, whose Keras builder emitted grouped convs that way); 1 for every other op.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stretchc.ir import Node, groups_of

CLASSES = ("conv", "dwconv", "mem")
# Ops that only reinterpret a buffer: no work at all on any processor.
FREE_OPS = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})


@dataclass(frozen=True)
class OpProfile:
    cls: str  # one of CLASSES
    flops: float  # multiply-add = 2 FLOPs; 0 for `mem`
    elems: float  # elements read and written
    launches: int = 1


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
        return OpProfile("conv", 2.0 * out_n * _numel(w.shape[1:]), elems, groups + 2 if groups > 1 else 1)
    if kind == "DEPTHWISE_CONV_2D" and w is not None and len(w.shape) == 4:
        return OpProfile("dwconv", 2.0 * out_n * w.shape[1] * w.shape[2], elems)
    if kind in ("FULLY_CONNECTED", "BATCH_MATMUL") and w is not None and w.shape:
        k = w.shape[-1] if kind == "FULLY_CONNECTED" else w.shape[-2]
        return OpProfile("conv", 2.0 * out_n * k, elems)
    return OpProfile("mem", 0.0, elems)
