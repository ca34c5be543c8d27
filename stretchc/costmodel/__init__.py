"""Latency cost model: the predicted time of every op, region and boundary on every processor of a target.

One op on a processor, run by a kernel family at a precision (see `execution`):

    t_op = flops / (eff * peak) + elems * width / (mem * bandwidth) + launches * op_ms

- `peak` comes from the target's hardware description (CPU: FLOP/cycle x GHz of the cores a partition runs
  on; GPU: ALUs x 2 x clock; DSP/NPU: the file's nominal `peak_gops`), scaled for the precision;
- `eff` is the fraction of peak the kernel family reaches: `conv` for dense convolutions and matrix
  products, `dwconv` for depthwise ones; `mem` is the fraction of the memory bandwidth its data movement
  reaches; `op_ms` is the fixed cost of one kernel launch; `width` is the bytes per element at that precision.

On top of op times, the placement model (`stretchc.costmodel.placement`) adds per partition invoke a
dispatch time per processor, per value crossing a partition boundary a sync time, plus bytes / `gbps`
when producer and consumer run on different processors (the GPU and Hexagon delegates copy I/O through CPU
memory), and one conversion (`conversion_ms`) where a boundary changes dtype.

Which kernel family runs a region follows from the processor, the region's precision (`stretchc.precision`:
float32, float16, int8 or uint8, which costs what int8 costs) and the target's
measurement protocol (`Protocol`: CPU kernels builtin or XNNPACK, GPU compute precision, DSP delegate, and
whether a latency is the minimum or the mean of repeated runs). The parameters are fitted jointly over every
calibration set (`stretchc.costmodel.fit`, written to `stretchc/targets/data/costmodel/fitted.yaml`): per kernel
family its efficiencies and launch cost; per calibration set (one SoC) and family a speed factor; per
statistic a further factor; per processor the dispatch time; the transfer globally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

from stretchc.costmodel.profile import CLASSES, OpProfile, profile_node
from stretchc.errors import StretchError
from stretchc.ir import DTYPE_SIZES
from stretchc.precision import QUANTIZED, converts

PARAMS_PATH = Path(__file__).resolve().parents[1] / "targets" / "data" / "costmodel" / "fitted.yaml"
PROCESSORS = ("cpu", "gpu", "dsp", "npu")
EFF_CLAMP = (0.005, 1.0)  # efficiencies are fractions of a peak

# FP32 FMA FLOP/cycle/core (facts/tflite-delegates.md §8): X1/X2/X3 = 32, A7x = 16, A5x/A510 = 8.
_CORE_FLOPS = [(r"\bX[1-4]\b", 32), (r"A7\d|A71\d|Gold|Prime|Mongoose", 16), (r"A5\d|A510|Silver", 8)]
# Peak multiplier of a precision over FP32, per processor: int8 dot products (SDOT, ARMv8.2: A55, A75 and later)
# do 4x the FP32 FMA work per cycle; GPUs run fp16 at twice the fp32 rate. DSP/NPU peaks are given per precision.
PRECISION_PEAK = {"int8": {"cpu": 4.0, "gpu": 1.0, "dsp": 1.0, "npu": 1.0}, "float16": {"cpu": 1.0, "gpu": 2.0, "dsp": 1.0, "npu": 1.0}}


def core_flop_per_cycle(cluster: Mapping[str, Any]) -> float:
    if "fp32_flop_per_cycle" in cluster:
        return float(cluster["fp32_flop_per_cycle"])
    for pattern, value in _CORE_FLOPS:
        if re.search(pattern, cluster["core"]):
            return float(value)
    return 8.0


def cpu_peak_gflops(raw: Mapping[str, Any], threads: int, affinity: Iterable[int] | None = None) -> float:
    """FP32 peak of `threads` cores: the fastest of the affinity cores if given, else of the whole SoC."""
    cores: list[tuple[float, int]] = []  # (GFLOPS of one core, cpu id)
    for cl in raw["cpu"]["clusters"]:
        per = core_flop_per_cycle(cl) * float(cl["fmax_ghz"])
        cores += [(per, c) for c in cl["cpus"]]
    aff = set(affinity or [])
    pick = [p for p, c in cores if c in aff] or [p for p, _ in cores]
    pick.sort(reverse=True)
    return sum(pick[:threads])


def processor_peak(raw: Mapping[str, Any], processor: str, precision: str, *, threads: int | None = None) -> float:
    """Nominal peak in GFLOPS (GOPS for int8) of `processor` at `precision`; CPU: `threads` cores of the
    target's affinity (default: the target's thread count)."""
    if processor == "cpu":
        base = cpu_peak_gflops(raw, int(threads or raw["cpu"]["threads"]), raw["cpu"]["affinity"])
    elif processor == "gpu":
        gpu = raw.get("gpu") or {}
        base = float(gpu.get("alus", 256)) * 2 * float(gpu.get("fmax_mhz", 600)) / 1000.0
    elif processor == "dsp":
        base = float((raw.get("dsp") or {}).get("peak_gops", 500.0))
    elif processor == "npu":
        base = float((raw.get("npu") or {}).get("peak_gops", 2000.0))
    else:
        raise KeyError(processor)
    return base * PRECISION_PEAK.get(precision, {}).get(processor, 1.0)


@dataclass(frozen=True)
class Protocol:
    """How a phone runs (or was measured running) TFLite models. See schemas/target.schema.json `protocol`."""

    cpu_kernels: str = "builtin"  # builtin (TFLite's own kernels, --use_xnnpack=false) | xnnpack
    gpu_precision: str = "fp32"  # fp16 | fp32: what the GPU delegate computes float32 and int8 models in
    dsp_delegate: str = "hexagon"  # hexagon (the TFLite Hexagon delegate) | nnapi
    statistic: str = "mean"  # min | mean of the timed runs

    @classmethod
    def from_raw(cls, d: Mapping[str, Any] | None) -> "Protocol":
        d = d or {}
        return cls(**{k: str(d[k]) for k in ("cpu_kernels", "gpu_precision", "dsp_delegate", "statistic") if k in d})


@dataclass(frozen=True)
class Execution:
    """The kernel family that runs a region, the precision it computes at and the bytes per element it moves."""

    kind: str
    precision: str
    width: int


def execution(processor: str, dtype: str, protocol: Protocol) -> Execution:
    """How a region of `dtype` (its tensors' dtype: float32, float16 or int8) runs on `processor`.

    CPU: int8 or float kernels of the protocol's family. GPU: float models, or the delegate's int8-model path
    (weights dequantized, quantization simulated), computing in fp16 when the model is fp16 or the protocol
    allows it. DSP: int8 only, through the protocol's delegate. NPU: int8 or fp16.
    """
    q = dtype in ("int8", "uint8")
    if processor == "cpu":
        return Execution(f"cpu-{'int8' if q else 'float'}-{protocol.cpu_kernels}", "int8" if q else "float32", 1 if q else 4)
    if processor == "gpu":
        fp16 = dtype == "float16" or protocol.gpu_precision == "fp16"
        return Execution("gpu-int8" if q else "gpu-float", "float16" if fp16 else "float32", 2 if fp16 else 4)
    if processor == "dsp":
        return Execution(f"dsp-int8-{protocol.dsp_delegate}", "int8", 1)
    if processor == "npu":
        return Execution("npu-int8" if q else "npu-float", "int8" if q else "float16", 1 if q else 2)
    raise KeyError(processor)


@dataclass(frozen=True)
class Group:
    """The effective parameters of one kernel family on one calibration set under one statistic."""

    conv: float
    dwconv: float
    mem: float
    op_ms: float

    def eff(self, cls: str) -> float:
        return float(getattr(self, cls))

    def inverse(self) -> np.ndarray:
        """[1/conv, 1/dwconv, 1/mem, op_ms]: `work_features(...) @ inverse()` is the ops' time."""
        return np.array([1.0 / self.conv, 1.0 / self.dwconv, 1.0 / self.mem, self.op_ms])


def _clamp(x: float) -> float:
    return float(min(max(x, EFF_CLAMP[0]), EFF_CLAMP[1]))


# Priors: the parameters of a kernel family nothing was fitted to, and the centre the fit is pulled towards.
PRIOR_KINDS: dict[str, dict[str, float]] = {
    "cpu-int8-builtin": {"conv": 0.3, "dwconv": 0.03, "mem": 0.25, "op_ms": 0.005},
    "cpu-int8-xnnpack": {"conv": 0.35, "dwconv": 0.05, "mem": 0.3, "op_ms": 0.004},
    "cpu-float-builtin": {"conv": 0.45, "dwconv": 0.15, "mem": 0.3, "op_ms": 0.004},
    "cpu-float-xnnpack": {"conv": 0.6, "dwconv": 0.2, "mem": 0.35, "op_ms": 0.003},
    "gpu-float": {"conv": 0.3, "dwconv": 0.08, "mem": 0.3, "op_ms": 0.02},
    "gpu-int8": {"conv": 0.25, "dwconv": 0.08, "mem": 0.3, "op_ms": 0.02},
    "dsp-int8-hexagon": {"conv": 0.4, "dwconv": 0.1, "mem": 0.3, "op_ms": 0.015},
    "dsp-int8-nnapi": {"conv": 0.4, "dwconv": 0.1, "mem": 0.3, "op_ms": 0.015},
    "npu-int8": {"conv": 0.3, "dwconv": 0.05, "mem": 0.3, "op_ms": 0.005},
    "npu-float": {"conv": 0.3, "dwconv": 0.05, "mem": 0.3, "op_ms": 0.005},
}
PRIOR_DISPATCH_MS = {"cpu": 0.02, "gpu": 0.3, "dsp": 0.6, "npu": 0.2}
PRIOR_TRANSFER = {"gbps": 4.0, "sync_ms": 0.02}


@dataclass(frozen=True)
class CostParams:
    """The fitted cost-model parameters (the contents of costmodel/fitted.yaml; `prior()` when nothing was fitted).

    kinds: family -> {conv, dwconv, mem, op_ms} pooled over every calibration set;
    sets: set -> family -> {conv, mem, op_ms, statistic: {min|mean: speed}}: the set's own values where it has
    points (the dwconv efficiency scales with conv, by the family's dwconv/conv ratio), and per statistic a
    speed factor on all of them (a minimum of runs is that much faster than a mean).
    """

    kinds: Mapping[str, Mapping[str, float]]
    sets: Mapping[str, Mapping[str, Mapping[str, Any]]]
    dispatch_ms: Mapping[str, float]
    transfer: Mapping[str, float]

    @classmethod
    def prior(cls) -> "CostParams":
        return cls(PRIOR_KINDS, {}, PRIOR_DISPATCH_MS, PRIOR_TRANSFER)

    @classmethod
    def from_raw(cls, d: Mapping[str, Any]) -> "CostParams":
        return cls(
            {**PRIOR_KINDS, **(d.get("kinds") or {})},
            d.get("sets") or {},
            {**PRIOR_DISPATCH_MS, **(d.get("dispatch_ms") or {})},
            {**PRIOR_TRANSFER, **(d.get("transfer") or {})},
        )

    def to_raw(self) -> dict[str, Any]:
        return {
            "kinds": {k: dict(v) for k, v in sorted(self.kinds.items())},
            "sets": {s: {k: dict(v) for k, v in sorted(fams.items())} for s, fams in sorted(self.sets.items())},
            "dispatch_ms": dict(sorted(self.dispatch_ms.items())),
            "transfer": dict(sorted(self.transfer.items())),
        }

    def group(self, kind: str, calibration_set: str | None, statistic: str) -> Group:
        k = self.kinds.get(kind) or PRIOR_KINDS[kind]
        fam = (self.sets.get(calibration_set or "") or {}).get(kind) or {}
        speed = float((fam.get("statistic") or {}).get(statistic, 1.0))
        conv = float(fam.get("conv", k["conv"])) * speed
        dwconv = conv * float(k["dwconv"]) / float(k["conv"])
        return Group(_clamp(conv), _clamp(dwconv), _clamp(float(fam.get("mem", k["mem"])) * speed), float(fam.get("op_ms", k["op_ms"])) / speed)


@lru_cache(maxsize=4)
def load_params(path: str = str(PARAMS_PATH)) -> CostParams:
    """The fitted parameters (priors when the file does not exist)."""
    p = Path(path)
    if not p.is_file():
        return CostParams.prior()
    try:
        return CostParams.from_raw(yaml.safe_load(p.read_text()) or {})
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise StretchError("bad-target-file", f"cost-model parameters: {exc}", file=str(p)) from None


def work_features(ops: Iterable[OpProfile], peak_gops: float, width: int, mem_gbps: float) -> np.ndarray:
    """[conv ms at 100% of peak, dwconv ms at 100%, memory ms at 100% of bandwidth, kernel launches]."""
    f = np.zeros(4)
    for o in ops:
        if o.cls == "conv":
            f[0] += o.flops
        elif o.cls == "dwconv":
            f[1] += o.flops
        f[2] += o.elems
        f[3] += o.launches
    return f / np.array([peak_gops * 1e6, peak_gops * 1e6, mem_gbps * 1e6 / width, 1.0])


class CostModel:
    """Predicts op, region and transfer times on one target under its protocol (see the module docstring).

    `target`: a `Target` or its raw dict; `params`: the fitted parameters (default: costmodel/fitted.yaml);
    `protocol`, `calibration_set`: default from the target file.
    """

    def __init__(
        self, target: Any, *, params: CostParams | None = None, protocol: Protocol | None = None, calibration_set: str | None = None
    ) -> None:
        self.target = target
        self.raw: Mapping[str, Any] = target.raw if hasattr(target, "raw") else target
        self.params = params if params is not None else load_params()
        self.protocol = protocol if protocol is not None else Protocol.from_raw(self.raw.get("protocol"))
        self.calibration_set = calibration_set if calibration_set is not None else self.raw.get("calibration")
        self.mem_gbps = float(self.raw["memory"]["peak_gbps"])
        self.dispatch_ms = dict(self.params.dispatch_ms)
        self.transfer = dict(self.params.transfer)

    def execution(self, processor: str, dtype: str) -> Execution:
        return execution(processor, dtype, self.protocol)

    def group(self, processor: str, dtype: str) -> Group:
        return self.params.group(self.execution(processor, dtype).kind, self.calibration_set, self.protocol.statistic)

    def features(self, ops: Iterable[OpProfile], processor: str, dtype: str, *, threads: int | None = None) -> np.ndarray:
        ex = self.execution(processor, dtype)
        peak = processor_peak(self.raw, processor, ex.precision, threads=threads)
        return work_features(ops, peak, ex.width, self.mem_gbps)

    def ops_ms(self, ops: Iterable[OpProfile], processor: str, dtype: str, *, threads: int | None = None) -> float:
        """The ops' time on `processor` with their tensors at `dtype`, without dispatch."""
        return float(self.features(ops, processor, dtype, threads=threads) @ self.group(processor, dtype).inverse())

    def region_ms(self, ops: Iterable[OpProfile], processor: str, dtype: str, *, threads: int | None = None) -> float:
        """One partition invoke: its ops plus the processor's dispatch time."""
        return self.dispatch_ms[processor] + self.ops_ms(ops, processor, dtype, threads=threads)

    def conversion_ms(self, elements: int, processor: str, src: str, dst: str) -> float:
        """One QUANTIZE, DEQUANTIZE or requantization of `elements` values from dtype `src` to `dst` in a partition
        on `processor`: a memory-bound kernel of the processor's 8-bit family, reading `src` and writing `dst` (a
        processor that cannot run it leaves it to the CPU, `stretchc.precision.converts`)."""
        if not converts(processor, src, dst):
            processor = "cpu"
        dtype = src if src in QUANTIZED else dst
        moved = elements * (DTYPE_SIZES[src] + DTYPE_SIZES[dst]) / self.execution(processor, dtype).width
        return self.ops_ms([OpProfile("mem", 0.0, moved)], processor, dtype)

    def transfer_ms(self, nbytes: float, src: str, dst: str) -> float:
        """Cost of one boundary value of `nbytes` from a partition on `src` to one on `dst`."""
        t = float(self.transfer["sync_ms"])
        if src != dst:
            t += nbytes / (float(self.transfer["gbps"]) * 1e6)
        return t


__all__ = [
    "CLASSES",
    "CostModel",
    "CostParams",
    "Execution",
    "Group",
    "OpProfile",
    "Protocol",
    "execution",
    "load_params",
    "processor_peak",
    "profile_node",
    "work_features",
]
