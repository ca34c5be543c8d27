"""Per-op work profile: FLOPs, bytes moved, op class. From IR nodes or from reference-net tables.

Op classes (the cost model fits one efficiency per class per processor and dtype):
- `conv`: CONV_2D, TRANSPOSE_CONV (and any non-depthwise grouped conv) — compute bound;
- `dwconv`: DEPTHWISE_CONV_2D — low arithmetic intensity, its own efficiency;
- `fc`: FULLY_CONNECTED, BATCH_MATMUL;
- `mem`: everything else (elementwise, pooling, concat, pad, reshape, activations): timed by bytes moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stretchc.ir import DTYPE_SIZES, Node

CLASSES = ("conv", "dwconv", "fc", "mem")
# Ops that only reinterpret a buffer: no work at all on any processor.
FREE_OPS = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})


@dataclass(frozen=True)
class OpProfile:
    cls: str  # one of CLASSES
    flops: float
    bytes: float


def _numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def profile_node(node: Node, *, dtype_bytes: int | None = None) -> OpProfile | None:
    """The work of one IR node (None for a free op or a stretch.* node). `dtype_bytes` overrides the
    activation width (e.g. 1 to price the node as it would run after int8 quantization)."""
    if not node.op.startswith("tfl.") or node.kind in FREE_OPS:
        return None
    kind = node.kind
    out = node.outputs[0] if node.outputs else None
    out_n = _numel(out.shape) if out is not None else 0

    def nb(v) -> int:  # type: ignore[no-untyped-def]
        width = dtype_bytes if dtype_bytes is not None else DTYPE_SIZES[v.dtype]
        return _numel(v.shape) * width

    total_bytes = sum(nb(v) for v in [*node.inputs, *node.outputs] if v is not None)
    w = node.inputs[1] if len(node.inputs) > 1 else None
    if kind in ("CONV_2D", "TRANSPOSE_CONV") and w is not None and len(w.shape) == 4:
        # TFLite CONV_2D weights are [O, kh, kw, I]; TRANSPOSE_CONV's input 1 is the weights too... use output.
        wt = w if kind == "CONV_2D" else node.inputs[1]
        per_out = _numel(wt.shape[1:]) if wt is not None else 1
        return OpProfile("conv", 2.0 * out_n * per_out, total_bytes)
    if kind == "DEPTHWISE_CONV_2D" and w is not None and len(w.shape) == 4:
        return OpProfile("dwconv", 2.0 * out_n * w.shape[1] * w.shape[2], total_bytes)
    if kind in ("FULLY_CONNECTED", "BATCH_MATMUL") and w is not None and w.shape:
        k = w.shape[-1] if kind == "FULLY_CONNECTED" else w.shape[-2]
        return OpProfile("fc", 2.0 * out_n * k, total_bytes)
    return OpProfile("mem", float(out_n), total_bytes)
