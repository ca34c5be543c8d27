"""Latency cost model: predicted time of every op on every processor of a target.

    t_op(proc, dtype) = work / (efficiency_class * peak(proc, dtype)) + op_overhead(proc, dtype)

where `work` is FLOPs for the compute classes (`conv`, `dwconv`, `fc`) and bytes moved for `mem` (peak =
the memory bandwidth), `peak` comes from the target's hardware description (CPU: FLOP/cycle x GHz of the
cores a partition runs on; GPU: ALUs x 2 x clock; DSP/NPU: the file's nominal `peak_gops`), and the
efficiencies and per-op overhead are fitted per target, processor and dtype against published latencies
(`bench/fit_cost_model.py`, see `stretchc.costmodel.fit`). On top of op times:

- a fixed dispatch overhead per partition invoke, per processor (`cost.dispatch_ms`);
- a transfer cost per value crossing a partition boundary: `cost.transfer.sync_ms`, plus
  bytes / `cost.transfer.gbps` when producer and consumer run on different processors (the TFLite GPU and
  Hexagon delegates copy I/O through CPU memory; facts/tflite-delegates.md §1.6, §3.3, §9.1).

Every op is priced at the precision of its partition (`stretchc.precision`): int8 on the DSP (its only one), CPU
int8 or float32, GPU float32, fp16, or an int8 model (which the delegate runs in float32); a boundary whose
producer and consumer differ in dtype adds one conversion (`conversion_ms`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from stretchc.costmodel.profile import CLASSES, OpProfile, profile_node
from stretchc.errors import StretchError
from stretchc.ir import DTYPE_SIZES, Node
from stretchc.precision import converts

# FP32 FMA FLOP/cycle/core (facts/tflite-delegates.md §8): X1/X2/X3 = 32, A7x = 16, A5x/A510 = 8.
_CORE_FLOPS = [(r"\bX[1-4]\b", 32), (r"A7\d|A71\d|Gold|Prime|Mongoose", 16), (r"A5\d|A510|Silver", 8)]
# int8 ops per FP32 FLOP of peak, per processor (a prior; the fitted efficiency absorbs the rest).
INT8_PEAK_FACTOR = {"cpu": 2.0, "gpu": 1.0, "dsp": 1.0, "npu": 1.0}
FP16_PEAK_FACTOR = {"cpu": 1.0, "gpu": 2.0, "dsp": 1.0, "npu": 1.0}
# Activation width (bytes) ops are priced at, per execution dtype (None: the IR value's own dtype).
ACTIVATION_BYTES: dict[str, int | None] = {"int8": 1, "float16": 2, "float32": None}


def core_flop_per_cycle(cluster: dict[str, Any]) -> float:
    if "fp32_flop_per_cycle" in cluster:
        return float(cluster["fp32_flop_per_cycle"])
    for pattern, value in _CORE_FLOPS:
        if re.search(pattern, cluster["core"]):
            return float(value)
    return 8.0


def cpu_peak_gflops(raw: dict[str, Any], threads: int, affinity: Iterable[int] | None = None) -> float:
    """FP32 peak of `threads` cores: the affinity cores if given, else the fastest cores of the SoC."""
    cores: list[tuple[float, int]] = []  # (GFLOPS of one core, cpu id)
    for cl in raw["cpu"]["clusters"]:
        per = core_flop_per_cycle(cl) * float(cl["fmax_ghz"])
        cores += [(per, c) for c in cl["cpus"]]
    aff = list(affinity or [])
    pick = [p for p, c in cores if c in aff] if aff else []
    if not pick:
        pick = [p for p, _ in cores]
    pick.sort(reverse=True)
    return sum(pick[:threads])


def processor_peak(raw: dict[str, Any], processor: str, dtype: str, *, threads: int | None = None, affinity: Iterable[int] | None = None) -> float:
    """Nominal peak in GFLOPS (GOPS for int8) of `processor` at `dtype`."""
    if processor == "cpu":
        t = threads if threads is not None else int(raw["cpu"]["threads"])
        base = cpu_peak_gflops(raw, t, raw["cpu"]["affinity"] if affinity is None else affinity)
    elif processor == "gpu":
        gpu = raw.get("gpu") or {}
        base = float(gpu.get("alus", 256)) * 2 * float(gpu.get("fmax_mhz", 600)) / 1000.0
    elif processor == "dsp":
        base = float((raw.get("dsp") or {}).get("peak_gops", 500.0))
    elif processor == "npu":
        base = float((raw.get("npu") or {}).get("peak_gops", 2000.0))
    else:
        raise KeyError(processor)
    if dtype == "int8":
        return base * INT8_PEAK_FACTOR[processor]
    if dtype == "float16":
        return base * FP16_PEAK_FACTOR[processor]
    return base


@dataclass(frozen=True)
class Params:
    """Fitted efficiencies (fraction of peak) per op class, and the per-op overhead in ms."""

    conv: float
    dwconv: float
    fc: float
    mem: float  # fraction of the memory bandwidth
    op_ms: float

    @classmethod
    def from_raw(cls, d: dict[str, Any]) -> "Params":
        return cls(float(d["conv"]), float(d["dwconv"]), float(d["fc"]), float(d["mem"]), float(d["op_ms"]))

    def eff(self, c: str) -> float:
        return float(getattr(self, c))


# Priors used when a (processor, dtype) pair has no fitted numbers (and as the fit's regulariser).
PRIORS = {
    "cpu": Params(conv=0.35, dwconv=0.12, fc=0.15, mem=0.25, op_ms=0.004),
    "gpu": Params(conv=0.30, dwconv=0.08, fc=0.10, mem=0.30, op_ms=0.012),
    "dsp": Params(conv=0.30, dwconv=0.10, fc=0.10, mem=0.20, op_ms=0.015),
    "npu": Params(conv=0.30, dwconv=0.10, fc=0.10, mem=0.30, op_ms=0.005),
}
DEFAULT_DISPATCH_MS = {"cpu": 0.02, "gpu": 0.3, "dsp": 0.6, "npu": 0.2}
DEFAULT_TRANSFER = {"gbps": 4.0, "sync_ms": 0.02}


class CostModel:
    """Predicts op, region and transfer times on one target (see the module docstring)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.raw: dict[str, Any] = target.raw if hasattr(target, "raw") else target
        cost = self.raw.get("cost") or {}
        self.dispatch_ms = {**DEFAULT_DISPATCH_MS, **(cost.get("dispatch_ms") or {})}
        self.transfer = {**DEFAULT_TRANSFER, **(cost.get("transfer") or {})}
        self.fitted: dict[tuple[str, str], Params] = {}
        for proc, per_dtype in (cost.get("efficiency") or {}).items():
            for dtype, d in per_dtype.items():
                self.fitted[(proc, dtype)] = Params.from_raw(d)
        self.mem_gbps = float(self.raw["memory"]["peak_gbps"])

    def params(self, processor: str, dtype: str) -> Params:
        for key in ((processor, dtype), (processor, "float32" if dtype == "float16" else dtype)):
            if key in self.fitted:
                return self.fitted[key]
        if dtype == "float16" and (processor, "float32") in self.fitted:
            return self.fitted[(processor, "float32")]
        return PRIORS[processor]

    @staticmethod
    def exec_dtype(processor: str, precision: str) -> str:
        """The dtype ops run at on `processor` for a partition at `precision`: the DSP only runs int8; the GPU
        delegate runs an int8 model in float (it dequantizes the weights); uint8 costs what int8 costs."""
        if processor == "dsp" or precision == "uint8":
            return "int8"
        if processor == "gpu" and precision == "int8":
            return "float32"
        return precision if precision in ("int8", "float16") else "float32"

    def op_ms(self, op: OpProfile, processor: str, dtype: str, *, threads: int | None = None) -> float:
        p = self.params(processor, dtype)
        if op.cls == "mem":
            return op.bytes / (p.mem * self.mem_gbps * 1e6) + p.op_ms
        peak = processor_peak(self.raw, processor, dtype, threads=threads, affinity=None if threads is None else [])
        return op.flops / (p.eff(op.cls) * peak * 1e6) + p.op_ms

    def ops_ms(self, ops: Iterable[OpProfile], processor: str, dtype: str, *, threads: int | None = None) -> float:
        return sum(self.op_ms(o, processor, dtype, threads=threads) for o in ops)

    def node_ms(self, node: Node, processor: str, precision: str | None = None) -> float:
        """One node on `processor` at `precision` (default: the dtype of the node's output)."""
        if precision is None:
            precision = node.outputs[0].dtype if node.outputs else "float32"
        edt = self.exec_dtype(processor, precision)
        prof = profile_node(node, dtype_bytes=ACTIVATION_BYTES.get(edt))
        return 0.0 if prof is None else self.op_ms(prof, processor, edt)

    def nodes_ms(self, nodes: Iterable[Node], processor: str, precision: str | None = None) -> float:
        return sum(self.node_ms(n, processor, precision) for n in nodes)

    def partition_ms(self, nodes: list[Node], processor: str, precision: str | None = None) -> float:
        """One partition invoke: its ops at `precision` plus the processor's dispatch overhead."""
        return self.dispatch_ms[processor] + self.nodes_ms(nodes, processor, precision)

    def conversion_ms(self, elements: int, processor: str, src: str, dst: str) -> float:
        """A QUANTIZE or DEQUANTIZE of `elements` values from dtype `src` to `dst` in a partition on `processor`
        (an elementwise op; a processor that cannot convert from or to float leaves it to the CPU)."""
        if not converts(processor, src, dst):
            processor = "cpu"
        op = OpProfile("mem", float(elements), float(elements * (DTYPE_SIZES[src] + DTYPE_SIZES[dst])))
        return self.op_ms(op, processor, "float32")

    def transfer_ms(self, nbytes: int, src: str, dst: str) -> float:
        """Cost of one boundary value of `nbytes` from a partition on `src` to one on `dst`."""
        t = float(self.transfer["sync_ms"])
        if src != dst:
            t += nbytes / (float(self.transfer["gbps"]) * 1e6)
        return t

    def model_ms(self, ops: list[OpProfile], processor: str, dtype: str, *, threads: int | None = None) -> float:
        """A whole single-partition model (a calibration point)."""
        return self.dispatch_ms[processor] + self.ops_ms(ops, processor, dtype, threads=threads)


def calibration_table(target: Any) -> list[dict[str, Any]]:
    """Every calibration point of `target` with the model's prediction and the error."""
    from stretchc.costmodel.refnets import reference_net

    cm = CostModel(target)
    rows = []
    for pt in target.raw.get("calibration") or []:
        try:
            ops = reference_net(pt["model"], pt["dtype"])
        except KeyError as exc:
            raise StretchError("bad-target-file", f"field calibration: {exc.args[0]}", file=str(getattr(target, "path", ""))) from None
        pred = cm.model_ms(ops, pt["processor"], pt["dtype"], threads=pt.get("threads"))
        meas = float(pt["latency_ms"])
        rows.append({**pt, "predicted_ms": pred, "error_pct": 100.0 * (pred - meas) / meas})
    return rows


__all__ = ["CLASSES", "CostModel", "OpProfile", "Params", "calibration_table", "processor_peak", "profile_node"]
