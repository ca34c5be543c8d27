"""The NPU: the Hexagon NPU (HTP) of Snapdragon 8 Gen 1 and later, through LiteRT's NPU accelerator (its dispatch
library over Qualcomm's QNN HTP runtime; android_runtime/README.md says how the runtime reaches it). The Hexagon
DSP backend (`dsp`) keeps the 845/855-class phones, whose Hexagon the TFLite Hexagon delegate reaches; this one
takes the phones that delegate refuses.

Target section `npu` (absent or null: no NPU stretchc reaches): the accelerator's name, the HTP architecture
(`hexagon_arch`, e.g. v73), Qualcomm's SoC model name that LiteRT's Qualcomm options and AOT targets take
(`soc_model`, e.g. SM8550), whether it computes float graphs (`fp16`: QNN HTP runs float32 graphs in fp16 math,
published for v73 and later), a nominal int8 peak, and the sources.

Precisions: int8 (TFLite's int8 spec: per-tensor activations, per-channel weights, which the QNN compiler takes),
and float16 where the section says `fp16` (the partition file stays float32; the accelerator computes it in fp16,
as it does any float graph). Float <-> int8 conversions run on it (QUANTIZE and DEQUANTIZE are in its op list).

Op rules (`op_violation`, strict: a region `--place`d here must keep them, because LiteRT runs a partition the
NPU does not take whole on the CPU, which can be slower than the CPU alone): the TFLite ops LiteRT's Qualcomm
compiler legalizes (litert/vendors/qualcomm/compiler/Qualcomm_QNN_Compiler.md, `LEGALIZED`); fused activations
NONE, RELU, RELU_N1_TO_1, RELU6, TANH (op_builder.cc); static parameter tensors where the builders require them
(`STATIC_INPUTS`: pad amounts, split sizes, block shapes, arg-min/max axes); constant convolution weights and bias
[derived: an ahead-of-time compiled graph]; no 64-bit floats. The last word is QNN's validator for the SoC, which
runs on the phone; these rules are what is documented, and an op they do not name stays off the NPU. Grouped
convolutions are split first (ungroup-convs): the documented legalization of CONV_2D says nothing of groups.

Manifest: delegate `litert-npu` with options `vendor`, `soc_model`, `htp_performance_mode` (`burst`: latency
first, as benchmarks run) and `dispatch_library_dir` (where the dispatch library and the QNN libraries are pushed).
The partition file is a plain TFLite model: on the phone LiteRT compiles it for the SoC (its compiler plugin) or
the runtime runs the CPU fallback and says why (android_runtime/src/backends/npu.cc).

Cost model: families `npu-int8` and `npu-fp16`, calibrated on Qualcomm AI Hub's published whole-model NPU latencies
for the phones' SoCs (targets/data/costmodel/calibration.yaml); peak = the section's nominal int8 GOPS, half that
in fp16; its data movement may count up to `mem_reach` x the DRAM bandwidth (activations stay on chip). The host reference runtime runs NPU partitions' files on this machine's CPU (float16 ones in float32).
"""

from __future__ import annotations

from typing import Any, Mapping

from stretchc.backends import register_backend
from stretchc.backends.base import DEVICE_DIR, Backend, Execution, Violation
from stretchc.ir import const_input

# TFLite builtin ops LiteRT's Qualcomm compiler legalizes to QNN ops (Qualcomm_QNN_Compiler.md, research notes §2.2).
LEGALIZED = frozenset(
    """
    ABS ADD ARG_MAX ARG_MIN AVERAGE_POOL_2D BATCH_MATMUL BATCH_TO_SPACE_ND BROADCAST_TO CAST CEIL CONCATENATION CONV_2D
    CONV_3D COS CUMSUM DEPTH_TO_SPACE DEPTHWISE_CONV_2D DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP EQUAL
    EXP FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GATHER_ND GELU GREATER GREATER_EQUAL HARD_SWISH
    L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC MAXIMUM
    MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD PADV2 POW PRELU QUANTIZE REDUCE_ALL
    REDUCE_ANY REDUCE_MAX REDUCE_MIN RELU RELU_0_TO_1 RELU6 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR
    RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND RSQRT SELECT SELECT_V2 SIGN SIN SLICE SOFTMAX SPACE_TO_BATCH_ND
    SPACE_TO_DEPTH SPLIT SPLIT_V SQUARE SQUARED_DIFFERENCE SQRT STRIDED_SLICE SUB SUM TANH TILE TOPK_V2 TRANSPOSE
    TRANSPOSE_CONV UNPACK
    """.split()
)
FUSED_ACTIVATIONS = frozenset({"NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "RELU_0_TO_1"})
# Inputs the QNN op builders need static: op -> (input index, what it is) (research notes §2.3).
STATIC_INPUTS: dict[str, tuple[tuple[int, str], ...]] = {
    "PAD": ((1, "pad amounts"),),
    "PADV2": ((1, "pad amounts"),),
    "MIRROR_PAD": ((1, "pad amounts"),),
    "SPLIT_V": ((1, "split sizes"),),
    "SPACE_TO_BATCH_ND": ((1, "block shape"), (2, "paddings")),
    "BATCH_TO_SPACE_ND": ((1, "block shape"), (2, "crops")),
    "ARG_MAX": ((1, "axis"),),
    "ARG_MIN": ((1, "axis"),),
    "ONE_HOT": ((1, "depth"), (2, "on value"), (3, "off value")),
}
# Weight and bias inputs of the convolutions (an ahead-of-time compiled graph holds them as constants).
CONV_WEIGHTS = {"CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2), "CONV_3D": (1, 2), "TRANSPOSE_CONV": (1, 3)}
UNSUPPORTED_DTYPES = frozenset({"float64", "complex64", "complex128", "string"})
DEFAULT_PEAK_GOPS = 8000.0  # nominal; no first-party TOPS figure for these chips (the fitted efficiencies absorb it)
PERFORMANCE_MODE = "burst"


class Npu(Backend):
    name = "npu"
    label = "NPU"
    delegate = "litert-npu"
    order = 3
    PRECISIONS = ("int8", "float16")
    ungroup_convs = True
    strict_rules = True
    colour = "#9467bd"
    section_required = False
    section_schema = {
        "type": ["object", "null"],
        "required": ["name", "vendor", "hexagon_arch", "soc_model", "fp16", "source"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "vendor": {"enum": ["qualcomm"], "description": "the LiteRT vendor whose dispatch library runs it"},
            "hexagon_arch": {"type": "string", "pattern": "^v[0-9]+$", "description": "HTP architecture (QNN's HTP_ARCH)"},
            "soc_model": {"type": "string", "description": "Qualcomm's SoC model name (LiteRT's Qualcomm SocModel, e.g. SM8550)"},
            "fp16": {"type": "boolean", "description": "whether it computes float graphs (in fp16)"},
            "peak_gops": {"type": "number", "exclusiveMinimum": 0, "description": "nominal int8 GOPS used as the cost model's peak"},
            "source": {"type": "string"},
        },
    }
    kernel_priors = {
        "npu-int8": {"conv": 0.3, "dwconv": 0.05, "mem": 0.5, "op_ms": 0.002},
        "npu-fp16": {"conv": 0.3, "dwconv": 0.05, "mem": 0.5, "op_ms": 0.002},
    }
    dispatch_ms = 0.1
    # HTP keeps activations in its tightly coupled memory (VTCM, 8 MB on v73/v75, LiteRT's Qualcomm option
    # vtcm_size) between layers, so a layer's data movement is mostly on chip: counted against DRAM bandwidth it
    # can exceed it. AI Hub's int8 ResNet-50 moves about 2x what 64 GB/s carries in its 0.77 ms on the S23.
    mem_reach = 8.0
    fp16_on_phone = "the NPU computes float graphs in fp16 on the phone"

    def unavailable(self, target: Any) -> str | None:
        return None if target.raw.get(self.name) else "has no NPU that LiteRT's NPU accelerator reaches"

    def describe(self, target: Any) -> str:
        npu = target.raw[self.name]
        floats = "int8 and fp16" if npu["fp16"] else "int8"
        return f"{npu['name']} (HTP {npu['hexagon_arch']}, {npu['soc_model']}) through LiteRT's NPU accelerator, {floats}"

    def precisions(self, target: Any = None) -> tuple[str, ...]:
        if target is None:
            return self.PRECISIONS
        npu = target.raw.get(self.name) or {}
        return self.PRECISIONS if npu.get("fp16") else ("int8",)

    def op_violation(self, node: Any, *, quantized: bool = False) -> Violation | None:
        kind = node.kind
        if kind not in LEGALIZED:
            return Violation("op", f"{kind} is not among the ops LiteRT's Qualcomm NPU compiler legalizes")
        act = str(node.attrs.get("fusedActivationFunction", "NONE"))
        if act not in FUSED_ACTIVATIONS:
            return Violation("fused-activation", f"fused activation {act} (QNN takes NONE, RELU, RELU_N1_TO_1, RELU6, TANH)")
        for v in [*node.inputs, *node.outputs]:
            if v is not None and v.dtype in UNSUPPORTED_DTYPES:
                return Violation("type", f"tensor {v.name} is {v.dtype}")
        for i, what in STATIC_INPUTS.get(kind, ()):
            if i < len(node.inputs) and node.inputs[i] is not None and not const_input(node, i):
                return Violation("static-input", f"{kind} needs static {what} (input {i} is computed)")
        for i in CONV_WEIGHTS.get(kind, ()):
            if i < len(node.inputs) and node.inputs[i] is not None and not const_input(node, i):
                return Violation("const-weights", f"{kind} weights and bias must be constant (input {i} is computed)")
        if kind == "CONV_3D" and len(node.inputs) > 1 and node.inputs[0] is not None and node.inputs[1] is not None:
            if node.inputs[0].shape[-1] != node.inputs[1].shape[-2]:
                return Violation("groups", "CONV_3D with groups (QNN takes group 1 only)")
        return None

    def delegate_options(self, precision: str, target: Any) -> dict[str, Any]:
        npu = (target.raw.get(self.name) or {}) if target is not None else {}
        return {
            "vendor": npu.get("vendor", "qualcomm"),
            "soc_model": npu.get("soc_model", ""),
            "htp_performance_mode": PERFORMANCE_MODE,
            "dispatch_library_dir": DEVICE_DIR,
        }

    def execution(self, dtype: str, protocol: Any) -> Execution:
        if dtype in ("int8", "uint8"):
            return Execution("npu-int8", "int8", 1)
        return Execution("npu-fp16", "float16", 2)

    def peak_gops(self, hw: Mapping[str, Any], precision: str, *, threads: int | None = None) -> float:
        peak = float((hw.get(self.name) or {}).get("peak_gops", DEFAULT_PEAK_GOPS))
        return peak if precision in ("int8", "uint8") else peak / 2.0



register_backend(Npu())
