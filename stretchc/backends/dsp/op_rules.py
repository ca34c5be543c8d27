"""The TFLite Hexagon delegate's op rules (which ops it takes; the project's sourced facts,
../shared/facts/tflite-delegates.md §1.3-1.5), checked on the IR.

`check_node(node)` returns the rule a node breaks (or None). It runs on the float IR, before
quantize-partitions, so type rules are evaluated as "will be int8 after quantize-partitions": a float32 activation
is fine, an int32/int64/bool activation is not. The op-version allowlist depends on the quantized op
version, so `check_node(..., quantized=True)` (run by quantize-partitions on DSP partitions) checks it too. That is
also why a grouped CONV_2D (version 6) is not refused up front: ungroup-convs rewrites grouped convs placed on
the DSP into per-group CONV_2D (version 1, int8 version 3) before quantization; PADV2 in front of the max-pool
of a RELU output is turned into PAD by padv2-to-pad before assign-delegates checks anything.

The DSP backend (`stretchc.backends.dsp`, this module's package) owns these rules; generic passes reach them
through it (`Backend.op_violation`).
"""

from __future__ import annotations

from stretchc.backends.base import Violation
from stretchc.ir import Node, const_input

MAX_PARTITIONS = 16  # kMaxMaxHexagonGraphs
MIN_NODES = 2  # kMinNodesPerHexagonGraph
RELU_FAMILY = {"NONE", "RELU", "RELU6", "RELU_N1_TO_1"}

# CheckOpVersion (utils.cc:75): op -> highest supported version; ops absent here are not supported at all.
_V2 = "ADD ARG_MAX ARG_MIN AVERAGE_POOL_2D CONCATENATION L2_NORMALIZATION LOGISTIC MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL PACK PAD QUANTIZE RELU6 SLICE SOFTMAX SPACE_TO_DEPTH DEPTH_TO_SPACE SPLIT STRIDED_SLICE SUB TANH TRANSPOSE"
_V2_ONLY = "SQUARED_DIFFERENCE RELU RSQRT"
_V3 = "CONV_2D DEPTHWISE_CONV_2D RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR TRANSPOSE_CONV"
_V1 = "RESHAPE NEG HARD_SWISH"  # other builtins the per-op table supports (v1 only)
MAX_VERSION: dict[str, int] = {
    **{k: 2 for k in _V2.split()},
    **{k: 2 for k in _V2_ONLY.split()},
    **{k: 3 for k in _V3.split()},
    "FULLY_CONNECTED": 4,
    **{k: 1 for k in _V1.split()},
}
EXACT_VERSION = {k: 2 for k in _V2_ONLY.split()}  # "v==2 only": the int8 version (v1 is the float kernel)


def _act(node: Node) -> str:
    return str(node.attrs.get("fusedActivationFunction", "NONE"))


def check_node(node: Node, *, quantized: bool = False) -> Violation | None:
    """The first Hexagon rule `node` breaks, or None. `quantized`: the node is already int8 (check versions, types)."""
    kind = node.kind
    a = node.attrs
    if kind == "SUM":
        return Violation("sum", "SUM is always rejected by the Hexagon delegate (b/139277813)")
    if kind not in MAX_VERSION:
        return Violation("op", f"{kind} is not supported by the Hexagon delegate")
    for v in [*node.inputs, *node.outputs]:
        if v is not None and len(v.shape) > 4:
            return Violation("rank", f"tensor {v.name} has rank {len(v.shape)} > 4")
    ok_types = ("int8", "uint8") if quantized else ("float32", "int8", "uint8")
    for i, v in enumerate(node.inputs):
        if v is None or v.is_const:
            continue
        if v.dtype not in ok_types:
            return Violation("type", f"activation input {i} ({v.name}) is {v.dtype}; the delegate takes int8/uint8 only")
    if quantized:
        version = int(a.get("version", 1))  # type: ignore[arg-type]
        if kind in EXACT_VERSION and version != EXACT_VERSION[kind]:
            return Violation("op-version", f"{kind} version {version} (only version {EXACT_VERSION[kind]} is supported)")
        if version > MAX_VERSION[kind]:
            return Violation("op-version", f"{kind} version {version} > {MAX_VERSION[kind]}")
    if _act(node) not in RELU_FAMILY:
        return Violation("fused-activation", f"fused activation {_act(node)} (allowed: NONE, RELU, RELU6, RELU_N1_TO_1)")
    sh, sw = int(a.get("strideH", 1)), int(a.get("strideW", 1))  # type: ignore[arg-type]
    dh, dw = int(a.get("dilationHFactor", 1)), int(a.get("dilationWFactor", 1))  # type: ignore[arg-type]
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"):
        w = 2 if kind == "TRANSPOSE_CONV" else 1
        if not const_input(node, w) and kind != "FULLY_CONNECTED":
            return Violation("const-weights", f"{kind} weights must be constant")
        bias = 3 if kind == "TRANSPOSE_CONV" else 2
        if len(node.inputs) > bias and node.inputs[bias] is not None and not const_input(node, bias):
            return Violation("const-weights", f"{kind} bias must be constant")
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV") and max(sh, sw) > 3:
        return Violation("stride", f"stride {sh}x{sw} (at most 3)")
    if kind == "CONV_2D" and (dh, dw) != (1, 1):
        return Violation("dilation", f"dilation {dh}x{dw} (CONV_2D needs dilation 1)")
    if kind == "DEPTHWISE_CONV_2D":
        dilated = (dh, dw) != (1, 1)
        if dilated and (sh, sw) != (1, 1):
            return Violation("dilation", f"dilation {dh}x{dw} with stride {sh}x{sw} (dilation only with stride 1)")
        weights = node.inputs[1]
        channels_in = node.inputs[0].shape[-1] if node.inputs[0] is not None and node.inputs[0].shape else 0
        if int(a.get("depthMultiplier", 1)) != 1 and (dilated or channels_in != 1):  # type: ignore[arg-type]
            return Violation("depth-multiplier", f"depth multiplier {a.get('depthMultiplier')} (needs 1, or no dilation and 1 input channel)")
        if weights is not None and len(weights.shape) == 4 and weights.shape[1] < 2:
            return Violation("depthwise-filter-height", f"filter {weights.shape[1]}x{weights.shape[2]} has height {weights.shape[1]} < 2")
    if kind == "MAX_POOL_2D":
        if _act(node) != "NONE":
            return Violation("fused-activation", "MAX_POOL_2D with a fused activation")
        if a.get("padding") == "SAME" and max(int(a.get("filterHeight", 1)), int(a.get("filterWidth", 1))) >= 13:  # type: ignore[arg-type]
            return Violation("pool-filter", "MAX_POOL_2D with SAME padding and a filter >= 13")
    if kind in ("AVERAGE_POOL_2D", "L2_NORMALIZATION") and _act(node) != "NONE":
        return Violation("fused-activation", f"{kind} with a fused activation")
    if kind == "FULLY_CONNECTED" and a.get("keepNumDims"):
        return Violation("keep-num-dims", "FULLY_CONNECTED with keep_num_dims")
    if kind == "PAD" and len(node.inputs) != 2:
        return Violation("pad", "PAD must have exactly 2 inputs (zero padding)")
    const_operand = {"MEAN": 1, "PAD": 1, "MIRROR_PAD": 1, "RESIZE_BILINEAR": 1, "RESIZE_NEAREST_NEIGHBOR": 1, "SPLIT": 0, "SLICE": 1, "STRIDED_SLICE": 1}
    if kind in const_operand:
        idxs = [1, 2] if kind == "SLICE" else [1, 2, 3] if kind == "STRIDED_SLICE" else [const_operand[kind]]
        for i in idxs:
            if i < len(node.inputs) and node.inputs[i] is not None and not const_input(node, i):
                return Violation("const-operand", f"{kind} operand {i} must be constant")
    if kind == "STRIDED_SLICE" and (int(a.get("ellipsisMask", 0)) or int(a.get("newAxisMask", 0))):  # type: ignore[arg-type]
        return Violation("strided-slice-mask", "STRIDED_SLICE with ellipsis_mask or new_axis_mask")
    return None
