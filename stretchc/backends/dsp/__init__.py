"""The Hexagon DSP: the TFLite Hexagon delegate (hexagon_nn), int8 (or its legacy uint8 form) only, on the
Snapdragon 845/855-class phones whose SoC id the delegate's table lists (every Snapdragon from the 888 on is
refused: their Hexagon NPU is the `npu` backend's, where a target has one).

Target section `dsp`: the Hexagon version, whether the TFLite delegate runs on this SoC (and why not, and what
reaches it instead), the skel library, `powersave_level` and the nominal peak. `powersave_level: 255` in the
Snapdragon target files is the NN-Stretch prototype's setting (its protocol); hexagon_nn reads a level >= 255 as
its lowest clock vote (in hexagon_nn's source, `hexagon_nn_set_powersave_level` -> `hexagon_nn_vote`: < 51
turbo, < 153 nominal, < 255 SVS, >= 255 the lowest), so it is kept for reproducing the prototype, not for latency
(0 asks for turbo).

This package is the whole backend: the `Dsp` backend here, the delegate's op rules in `op_rules.py`, its
quantization rules in `quantization.py`; generic passes reach both through the backend only.

Op rules (`op_rules.py`; the project's sourced facts, ../shared/facts/tflite-delegates.md §1.3-1.5) are strict: a
region `--place`d here must keep them. Limits: `hexagon-max-partitions` (at most `hexagon_max_partitions` DSP
partitions, the delegate caps its graphs at 16) and `hexagon-min-nodes` (every DSP partition has at least
`hexagon_min_nodes` ops; the delegate drops smaller ones to the CPU). Quantization (`quantization.py`): per-tensor
fully connected weights, per-tensor weights when a channel-scale spread exceeds 1024x, the uint8 form with
`--hexagon-dtype uint8`. Grouped convolutions are split first (ungroup-convs: the delegate takes CONV_2D <= v3).
Float <-> int8 conversions stay on the CPU (the delegate runs only 8-bit requantization). Cost model: family
`dsp-int8-{hexagon,nnapi}` (protocol key `dsp_delegate`). The host runtime runs DSP partitions' CPU fallback.
"""

from __future__ import annotations

from typing import Any, Mapping

from stretchc.backends import register_backend
from stretchc.backends.base import (
    DEVICE_DIR,
    Backend,
    Execution,
    LimitKey,
    LimitViolation,
    Option,
    PartitionOps,
    ProtocolKey,
    QuantizationRules,
    Violation,
)
from stretchc.backends.dsp import op_rules, quantization

DEFAULT_POWERSAVE_LEVEL = 255
DEFAULT_PEAK_GOPS = 500.0


class HexagonQuantization(QuantizationRules):
    """The Hexagon delegate's quantization rules at `dtype` (int8 or uint8)."""

    max_spread = quantization.MAX_SCALE_SPREAD

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype

    def weights(self, *, per_tensor: bool = False) -> str:
        return quantization.weights(self.dtype, per_tensor=per_tensor)

    def wide_spreads(self, nodes: list[Any]) -> list[tuple[str, float]]:
        return quantization.spreads(nodes)

    def finish(self, nodes: list[Any], *, partition: str) -> None:
        if self.dtype == "uint8":
            quantization.to_uint8(nodes, partition=partition)


class Dsp(Backend):
    name = "dsp"
    label = "Hexagon DSP"
    delegate = "hexagon"
    order = 2
    PRECISIONS = ("int8",)
    manifest_precisions = ("int8", "uint8")
    float_conversions = False
    ungroup_convs = True
    strict_rules = True
    nnstretch_tag = "dsp"
    prototype_device = "dsp"
    colour = "#d62728"
    section_schema = {
        "type": "object",
        "required": ["hexagon", "tflite_delegate", "reason", "alternative"],
        "properties": {
            "hexagon": {"type": ["integer", "null"]},
            "tflite_delegate": {"type": "boolean", "description": "whether the TFLite Hexagon delegate runs on this SoC"},
            "reason": {"type": "string"},
            "alternative": {"type": ["string", "null"]},
            "skel": {"type": "string"},
            "powersave_level": {"type": "integer", "minimum": 0, "maximum": 255},
            "peak_gops": {"type": "number", "exclusiveMinimum": 0, "description": "nominal int8 GOPS used as the cost model's peak"},
        },
        "additionalProperties": False,
    }
    limit_keys = {
        "hexagon_max_partitions": LimitKey(op_rules.MAX_PARTITIONS, maximum=op_rules.MAX_PARTITIONS, description="DSP partitions in a bundle"),
        "hexagon_min_nodes": LimitKey(op_rules.MIN_NODES, description="ops a DSP partition needs"),
    }
    protocol_key = ProtocolKey("dsp_delegate", ("hexagon", "nnapi"), "hexagon", "how DSP partitions are reached")
    options = (
        Option(
            "dtype", "--hexagon-dtype", "hexagon-dtype", quantization.DTYPES, "int8",
            "quantized type of DSP partitions: int8 (default; per-channel weights) or uint8 (legacy asymmetric, per-tensor)",
        ),
    )
    kernel_priors = {
        "dsp-int8-hexagon": {"conv": 0.4, "dwconv": 0.1, "mem": 0.3, "op_ms": 0.015},
        "dsp-int8-nnapi": {"conv": 0.4, "dwconv": 0.1, "mem": 0.3, "op_ms": 0.015},
    }
    dispatch_ms = 0.6

    def unavailable(self, target: Any) -> str | None:
        dsp = target.raw[self.name]
        if dsp["tflite_delegate"]:
            return None
        alt = f"; {dsp['alternative']}" if dsp.get("alternative") else ""
        return f"cannot run the DSP: {dsp['reason']}{alt}"

    def host_section(self, cpuinfo: Mapping[str, str]) -> Any:
        return {"hexagon": None, "tflite_delegate": False, "reason": "the machine stretchc runs on has no Hexagon DSP", "alternative": None}

    def describe(self, target: Any) -> str:
        dsp = target.raw[self.name]
        return f"Hexagon {dsp['hexagon']} through the TFLite Hexagon delegate ({dsp.get('skel', 'skel library not named')}): {dsp['reason']}"

    def op_violation(self, node: Any, *, quantized: bool = False) -> Violation | None:
        return op_rules.check_node(node, quantized=quantized)

    def limit_violations(self, partitions: list[PartitionOps], limits: Mapping[str, int]) -> list[LimitViolation]:
        out = []
        cap = int(limits["hexagon_max_partitions"])
        if len(partitions) > cap:
            out.append(LimitViolation(
                "hexagon-max-partitions", self.name, tuple(r for p in partitions for r in p.regions),
                f"{len(partitions)} DSP partitions; the Hexagon delegate runs at most {cap}",
            ))
        least = int(limits["hexagon_min_nodes"])
        for p in partitions:
            if len(p.ops) < least:
                out.append(LimitViolation(
                    "hexagon-min-nodes", self.name, p.regions,
                    f"DSP partition {'+'.join(p.regions)} has {len(p.ops)} op(s); the Hexagon delegate needs at least {least}",
                ))
        return out

    def quantization(self, options: Mapping[str, str]) -> QuantizationRules:
        return HexagonQuantization(options.get("dtype", self.options[0].default))

    def delegate_options(self, precision: str, target: Any) -> dict[str, Any]:
        dsp = target.raw[self.name] if target is not None else {}
        return {"powersave_level": int(dsp.get("powersave_level", DEFAULT_POWERSAVE_LEVEL)), "library_path": DEVICE_DIR, "skel": dsp.get("skel", "")}

    def execution(self, dtype: str, protocol: Any) -> Execution:
        return Execution(f"dsp-int8-{protocol.get('dsp_delegate')}", "int8", 1)

    def peak_gops(self, hw: Mapping[str, Any], precision: str, *, threads: int | None = None) -> float:
        return float((hw.get(self.name) or {}).get("peak_gops", DEFAULT_PEAK_GOPS))

    def host_notes(self, partition: Mapping[str, Any]) -> tuple[str, ...]:
        return (f"DSP partitions run their CPU fallback ({self.host_file(partition)})",)

    def host_file(self, partition: Mapping[str, Any]) -> str:
        return str(partition["fallback"]["file"] if partition["fallback"] else partition["file"])


register_backend(Dsp())
