"""The GPU: TFLite's GPU delegate (LiteRT's GPU accelerator on the phone), float32, fp16 (the delegate's option on
a float32 file) or an int8 model (dequantized inside the delegate).

Target section `gpu` (null: no GPU the delegate can use): name, clock, ALUs, APIs. Op rules: the ops the GPU
delegate does not run (`UNSUPPORTED`) and tensors of rank > 4; they only steer the automatic placement (a region
`--place`d here runs its unsupported ops on the CPU inside the delegate's partition). Limit `gpu-max-partitions`:
a partition's GPU-supported ops must form at most `gpu_max_partitions` runs (the delegate's
`max_delegated_partitions`). Cost model: families `gpu-float` (fp16 when the model is fp16 or the protocol's
`gpu_precision` is) and `gpu-int8`; peak = ALUs x 2 x clock, x2 in fp16.
"""

from __future__ import annotations

from typing import Any, Mapping

from stretchc.backends import register_backend
from stretchc.backends.base import Backend, Execution, LimitKey, LimitViolation, PartitionOps, ProtocolKey, Violation

UNSUPPORTED = frozenset({"GATHER", "GATHER_ND", "CAST", "ARG_MAX", "ARG_MIN", "WHERE", "NON_MAX_SUPPRESSION_V4", "TOPK_V2", "UNIQUE"})
MAX_RANK = 4
FP16_PEAK = 2.0  # GPUs run fp16 at twice the fp32 rate


def delegated_runs(ops: tuple[Any, ...]) -> int:
    """How many delegate partitions the GPU delegate cuts `ops` (graph order) into: runs of supported ops."""
    runs, inside = 0, False
    for n in ops:
        ok = n.kind not in UNSUPPORTED
        runs += ok and not inside
        inside = ok
    return runs


class Gpu(Backend):
    name = "gpu"
    label = "GPU"
    delegate = "gpu"
    order = 1
    PRECISIONS = ("float32", "float16", "int8")
    nnstretch_tag = "gpu"
    prototype_device = "gpu"
    colour = "#2ca02c"
    section_schema = {
        "type": ["object", "null"],
        "required": ["name", "api"],
        "properties": {
            "name": {"type": "string"},
            "fmax_mhz": {"type": "number"},
            "alus": {"type": "integer"},
            "api": {"type": "array", "items": {"enum": ["opencl", "gles31", "vulkan"]}},
        },
        "additionalProperties": False,
    }
    limit_keys = {"gpu_max_partitions": LimitKey(1, description="delegate partitions one GPU partition may split into")}
    protocol_key = ProtocolKey("gpu_precision", ("fp16", "fp32"), "fp32", "what the GPU delegate computes float32 and int8 models in")
    kernel_priors = {
        "gpu-float": {"conv": 0.3, "dwconv": 0.08, "mem": 0.3, "op_ms": 0.02},
        "gpu-int8": {"conv": 0.25, "dwconv": 0.08, "mem": 0.3, "op_ms": 0.02},
    }
    dispatch_ms = 0.3
    fp16_on_phone = "fp16 is the GPU delegate's option on the phone"

    def unavailable(self, target: Any) -> str | None:
        return None if target.raw.get(self.name) is not None else f"has no {self.name}"

    def describe(self, target: Any) -> str:
        gpu = target.raw[self.name]
        return f"{gpu['name']}" + (f" {gpu['fmax_mhz']} MHz" if "fmax_mhz" in gpu else "") + f"; TFLite GPU delegate ({', '.join(gpu['api'])})"

    def op_violation(self, node: Any, *, quantized: bool = False) -> Violation | None:
        if node.kind in UNSUPPORTED:
            return Violation("op", f"the GPU delegate does not support {node.kind}")
        for v in [*node.inputs, *node.outputs]:
            if v is not None and not v.is_const and len(v.shape) > MAX_RANK:
                return Violation("rank", f"rank-{len(v.shape)} tensor {v.name} (the GPU delegate takes rank <= {MAX_RANK})")
        return None

    def limit_violations(self, partitions: list[PartitionOps], limits: Mapping[str, int]) -> list[LimitViolation]:
        most = int(limits["gpu_max_partitions"])
        return [
            LimitViolation(
                "gpu-max-partitions", self.name, p.regions,
                f"GPU partition {'+'.join(p.regions)} would split into more than {most} GPU delegate partition(s)",
            )
            for p in partitions
            if delegated_runs(p.ops) > most
        ]

    def delegate_options(self, precision: str, target: Any) -> dict[str, Any]:
        limit = int(target.delegate_limits["gpu_max_partitions"]) if target is not None else self.limit_keys["gpu_max_partitions"].default
        return {"backend": "opencl", "precision": "fp16" if precision == "float16" else "fp32", "max_delegated_partitions": limit}

    def execution(self, dtype: str, protocol: Any) -> Execution:
        q = dtype in ("int8", "uint8")
        fp16 = dtype == "float16" or protocol.get("gpu_precision") == "fp16"
        return Execution("gpu-int8" if q else "gpu-float", "float16" if fp16 else "float32", 2 if fp16 else 4)

    def peak_gops(self, hw: Mapping[str, Any], precision: str, *, threads: int | None = None) -> float:
        gpu = hw.get(self.name) or {}
        base = float(gpu.get("alus", 256)) * 2 * float(gpu.get("fmax_mhz", 600)) / 1000.0
        return base * (FP16_PEAK if precision == "float16" else 1.0)



register_backend(Gpu())
