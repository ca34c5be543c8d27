"""Latency cost model: the predicted time of every op, region and boundary on every processor of a target.

One op on a processor, run by a kernel family at a precision (see `execution`):

    t_op = flops / (eff * peak) + elems * width / (mem * bandwidth) + launches * op_ms

- `peak` comes from the target's hardware description, as the processor's backend reads it (`Backend.peak_gops`:
  e.g. the CPU's FLOP/cycle x GHz of the cores a partition runs on, the GPU's ALUs x 2 x clock, a nominal
  `peak_gops`), scaled for the precision;
- `eff` is the fraction of peak the kernel family reaches: `conv` for dense convolutions and matrix
  products, `dwconv` for depthwise ones; `mem` is the fraction of the memory bandwidth its data movement
  reaches; `op_ms` is the fixed cost of one kernel launch; `width` is the bytes per element at that precision;
- an op of a shape class (`profile.SHAPE_CLASSES`: a 7 x 7 depthwise window, a 3-channel stem, a quantized RELU, ...)
  takes its compute and data-movement terms times the family's factor for that class (`Group.shape_classes`), where a
  target measured one (`stretchc calibrate` on the host); 1 elsewhere;
- where a target measured it (`Group.weight_gbps`), the weights that do not stay in its last-level cache from one
  run to the next are read from memory again every run: `weights * width / weight_gbps` on top, for the fraction
  of the model's weights beyond the cache (`CostModel.stream_weights`). A micro-benchmark's few weights stay in
  cache; a network's many do not.

On top of op times, the placement model (`stretchc.costmodel.placement`) adds per partition invoke a
dispatch time per processor, per value crossing a partition boundary a sync time, plus bytes / `gbps`
when producer and consumer run on different processors (the GPU and Hexagon delegates copy I/O through CPU
memory), and one conversion (`conversion_ms`) where a boundary changes dtype.

Which kernel family runs a region follows from the processor, the region's precision (`stretchc.precision`:
float32, float16, int8 or uint8, which costs what int8 costs) and the target's
measurement protocol (`Protocol`: per backend its protocol key, e.g. the CPU's kernels builtin or XNNPACK, and
whether a latency is the minimum or the mean of repeated runs); the backend names the family (`Backend.execution`)
and gives its priors. The parameters are fitted jointly over every
calibration set (`stretchc.costmodel.fit`, written to `stretchc/targets/data/costmodel/fitted.yaml`): per kernel
family its efficiencies and launch cost; per calibration set (one SoC) and family a speed factor; per
statistic a further factor; per processor the dispatch time; the transfer globally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

from stretchc.backends import backend, backends, fallback
from stretchc.backends.base import Execution
from stretchc.costmodel.profile import CLASSES, ELTWISE, SHAPE_CLASSES, OpProfile, profile_node, shape_class
from stretchc.errors import StretchError
from stretchc.ir import DTYPE_SIZES
from stretchc.precision import QUANTIZED, converts

PARAMS_PATH = Path(__file__).resolve().parents[1] / "targets" / "data" / "costmodel" / "fitted.yaml"
EFF_CLAMP = (0.005, 1.0)  # efficiencies are fractions of a peak


def processor_peak(hw: Mapping[str, Any], processor: str, precision: str, *, threads: int | None = None) -> float:
    """Nominal peak in GFLOPS (GOPS for int8) of `processor` at `precision` on a SoC whose hardware description
    (the backends' target sections) is `hw`; CPU: `threads` cores of the target's affinity (default: its threads)."""
    return backend(processor).peak_gops(hw, precision, threads=threads)


@dataclass(frozen=True)
class Protocol:
    """How a phone runs (or was measured running) TFLite models: per backend that has one, the value of its protocol
    key (`Backend.protocol_key`: the CPU's kernels, the GPU's compute precision, the DSP's delegate), and whether a
    latency is the minimum or the mean of repeated runs. See schemas/target.schema.json `protocol`."""

    settings: tuple[tuple[str, str], ...] = ()  # (key, value) of every backend key, sorted
    statistic: str = "mean"

    @classmethod
    def from_raw(cls, d: Mapping[str, Any] | None) -> "Protocol":
        d = d or {}
        keys = [b.protocol_key for b in backends() if b.protocol_key is not None]
        return cls(tuple(sorted((k.key, str(d.get(k.key, k.default))) for k in keys)), str(d.get("statistic", "mean")))

    def get(self, key: str) -> str:
        """The protocol's value of a backend's key (the backend's default when the protocol does not say)."""
        for k, v in self.settings:
            if k == key:
                return v
        return next(b.protocol_key.default for b in backends() if b.protocol_key is not None and b.protocol_key.key == key)


def execution(processor: str, dtype: str, protocol: Protocol) -> Execution:
    """How a region of `dtype` (its tensors' dtype: float32, float16 or int8) runs on `processor` under `protocol`:
    the kernel family, the precision it computes at, the bytes per element (the processor's backend decides)."""
    return backend(processor).execution(dtype, protocol)


@dataclass(frozen=True)
class Group:
    """The effective parameters of one kernel family on one calibration set under one statistic."""

    conv: float
    dwconv: float
    mem: float
    op_ms: float
    shape_classes: Mapping[str, float] = field(default_factory=dict)  # shape class -> time factor (1 when absent)
    weight_gbps: float = 0.0  # the bandwidth at which weights beyond the cache are read (0: not measured)

    def eff(self, cls: str) -> float:
        return float(getattr(self, cls))

    def inverse(self) -> np.ndarray:
        """[1/conv, 1/dwconv, 1/mem, op_ms]: `work_features(...) @ inverse()` is the ops' time."""
        return np.array([1.0 / self.conv, 1.0 / self.dwconv, 1.0 / self.mem, self.op_ms])


def eff_clamp(kind: str, cls: str) -> tuple[float, float]:
    """The bounds of efficiency `cls` (conv, dwconv, mem) of kernel family `kind`: `EFF_CLAMP`, except that the
    data movement of a family whose tensors mostly stay on chip may reach beyond the DRAM bandwidth
    (`Backend.mem_reach`)."""
    if cls != "mem":
        return EFF_CLAMP
    return (EFF_CLAMP[0], _mem_reach().get(kind, EFF_CLAMP[1]))


@lru_cache(maxsize=1)
def _mem_reach() -> Mapping[str, float]:
    """Kernel family -> the `mem_reach` of the backend that runs it."""
    return {k: b.mem_reach for b in backends() for k in b.kernel_priors}


def _clamp(x: float, kind: str = "", cls: str = "conv") -> float:
    low, high = eff_clamp(kind, cls)
    return float(min(max(x, low), high))


@lru_cache(maxsize=1)
def prior_kinds() -> Mapping[str, Mapping[str, float]]:
    """The parameters of a kernel family nothing was fitted to, and the centre the fit pulls towards (the backends')."""
    return {k: dict(v) for b in backends() for k, v in b.kernel_priors.items()}


def prior_dispatch_ms() -> dict[str, float]:
    """The dispatch time of one partition invoke per processor, before fitting (the backends')."""
    return {b.name: b.dispatch_ms for b in backends()}


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
        return cls(prior_kinds(), {}, prior_dispatch_ms(), PRIOR_TRANSFER)

    @classmethod
    def from_raw(cls, d: Mapping[str, Any]) -> "CostParams":
        return cls(
            {**prior_kinds(), **(d.get("kinds") or {})},
            d.get("sets") or {},
            {**prior_dispatch_ms(), **(d.get("dispatch_ms") or {})},
            {**PRIOR_TRANSFER, **(d.get("transfer") or {})},
        )

    def to_raw(self) -> dict[str, Any]:
        return {
            "kinds": {k: dict(v) for k, v in sorted(self.kinds.items())},
            "sets": {s: {k: dict(v) for k, v in sorted(fams.items())} for s, fams in sorted(self.sets.items())},
            "dispatch_ms": dict(sorted(self.dispatch_ms.items())),
            "transfer": dict(sorted(self.transfer.items())),
        }

    def measured_on(self, calibration_set: str, measured: Mapping[str, Any]) -> "CostParams":
        """These parameters with a target's own measured ones (its file's `measured` section, written by `stretchc
        calibrate`): its kernel families' efficiencies and launch cost as the set `calibration_set`, and its
        processors' dispatch times."""
        sets = {**self.sets, calibration_set: {kind: dict(p) for kind, p in measured["kinds"].items()}}
        return CostParams(self.kinds, sets, {**self.dispatch_ms, **measured.get("dispatch_ms", {})}, self.transfer)

    def group(self, kind: str, calibration_set: str | None, statistic: str) -> Group:
        k = self.kinds.get(kind) or prior_kinds()[kind]
        fam = (self.sets.get(calibration_set or "") or {}).get(kind) or {}
        speed = float((fam.get("statistic") or {}).get(statistic, 1.0))
        conv = float(fam.get("conv", k["conv"])) * speed
        # a set measured per kernel class (a host target's micro-benchmarks) has its own depthwise efficiency
        dwconv = float(fam["dwconv"]) * speed if "dwconv" in fam else conv * float(k["dwconv"]) / float(k["conv"])
        mem = _clamp(float(fam.get("mem", k["mem"])) * speed, kind, "mem")
        classes = {str(c): float(f) for c, f in sorted((fam.get("shape_classes") or {}).items())}
        return Group(_clamp(conv), _clamp(dwconv), mem, float(fam.get("op_ms", k["op_ms"])) / speed, classes, float(fam.get("weight_gbps", 0.0)))


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


def work_features(
    ops: Iterable[OpProfile], peak_gops: float, width: int, mem_gbps: float, shape_classes: Mapping[str, float] | None = None
) -> np.ndarray:
    """[conv ms at 100% of peak, dwconv ms at 100%, memory ms at 100% of bandwidth, kernel launches]; an op of a
    shape class in `shape_classes` counts its FLOPs and elements that many times."""
    f = np.zeros(4)
    for o in ops:
        scale = shape_classes.get(o.shape_class, 1.0) if shape_classes and o.shape_class else 1.0
        if o.cls == "conv":
            f[0] += o.flops * scale
        elif o.cls == "dwconv":
            f[1] += o.flops * scale
        f[2] += o.elems * scale
        f[3] += o.launches
    return f / np.array([peak_gops * 1e6, peak_gops * 1e6, mem_gbps * 1e6 / width, 1.0])


class CostModel:
    """Predicts op, region and transfer times on one target under its protocol (see the module docstring).

    `target`: a `Target` or its raw dict; `params`: the fitted parameters (default: costmodel/fitted.yaml);
    `protocol`, `calibration_set`: default from the target file. A target measured by `stretchc calibrate` prices
    with its own `measured` parameters (`CostParams.measured_on`).
    """

    def __init__(
        self, target: Any, *, params: CostParams | None = None, protocol: Protocol | None = None, calibration_set: str | None = None
    ) -> None:
        self.target = target
        self.raw: Mapping[str, Any] = target.raw if hasattr(target, "raw") else target
        self.params = params if params is not None else load_params()
        self.protocol = protocol if protocol is not None else Protocol.from_raw(self.raw.get("protocol"))
        self.calibration_set = calibration_set if calibration_set is not None else self.raw.get("calibration")
        if self.raw.get("measured") and self.calibration_set is not None:
            self.params = self.params.measured_on(self.calibration_set, self.raw["measured"])
        self.mem_gbps = float(self.raw["memory"]["peak_gbps"])
        self.dispatch_ms = dict(self.params.dispatch_ms)
        self.transfer = dict(self.params.transfer)
        self._conversions: dict[tuple[int, str, str, str], float] = {}
        self._groups: dict[tuple[str, str], Group] = {}
        cache_mb = (self.raw.get("measured") or {}).get("cache_mb")
        self.cache_bytes = float(cache_mb) * (1 << 20) if cache_mb is not None else 0.0
        self.weight_elements = 0.0  # the model's, once `stream_weights` is told

    def stream_weights(self, elements: float) -> None:
        """Price the weights of a model with `elements` weight elements in all: at each dtype, the fraction of them
        beyond the last-level cache is read from memory every run (where the target measured `weight_gbps`)."""
        self.weight_elements = float(elements)

    def streamed(self, processor: str, dtype: str) -> float:
        """The fraction of the model's weights read from memory every run at `dtype` on `processor` (0 when they fit
        in the cache, when the model's weights were not given, or when the target did not measure it)."""
        if not self.weight_elements or not self.group(processor, dtype).weight_gbps:
            return 0.0
        total = self.weight_elements * self.execution(processor, dtype).width
        return max(0.0, 1.0 - self.cache_bytes / total)

    def execution(self, processor: str, dtype: str) -> Execution:
        return execution(processor, dtype, self.protocol)

    def group(self, processor: str, dtype: str) -> Group:
        """The parameters of the kernel family that runs `dtype` on `processor` (memoized)."""
        key = (processor, dtype)
        if key not in self._groups:
            self._groups[key] = self.params.group(self.execution(processor, dtype).kind, self.calibration_set, self.protocol.statistic)
        return self._groups[key]

    def features(
        self, ops: Iterable[OpProfile], processor: str, dtype: str, *, threads: int | None = None, shape_classes: bool = True
    ) -> np.ndarray:
        """The ops' work features (`work_features`) on `processor` at `dtype`, shape classes at the factors of the
        kernel family that runs them (`shape_classes=False`: every factor 1, as a fit of the base parameters needs)."""
        ex = self.execution(processor, dtype)
        peak = processor_peak(self.raw, processor, ex.precision, threads=threads)
        return work_features(ops, peak, ex.width, self.mem_gbps, self.group(processor, dtype).shape_classes if shape_classes else None)

    def ops_ms(self, ops: Iterable[OpProfile], processor: str, dtype: str, *, threads: int | None = None) -> float:
        """The ops' time on `processor` with their tensors at `dtype`, without dispatch."""
        ops = list(ops)
        g = self.group(processor, dtype)
        t = float(self.features(ops, processor, dtype, threads=threads) @ g.inverse())
        streamed = self.streamed(processor, dtype)
        if streamed:
            t += streamed * sum(o.weights for o in ops) * self.execution(processor, dtype).width / (g.weight_gbps * 1e6)
        return t

    def region_ms(self, ops: Iterable[OpProfile], processor: str, dtype: str, *, threads: int | None = None) -> float:
        """One partition invoke: its ops plus the processor's dispatch time."""
        return self.dispatch_ms[processor] + self.ops_ms(ops, processor, dtype, threads=threads)

    def conversion_ms(self, elements: int, processor: str, src: str, dst: str) -> float:
        """One QUANTIZE, DEQUANTIZE or requantization of `elements` values from dtype `src` to `dst` in a partition
        on `processor`: a memory-bound kernel of the processor's 8-bit family, reading `src` and writing `dst` (a
        processor that cannot run it leaves it to the CPU, `stretchc.precision.converts`). Memoized: the placement
        search asks for the same boundary tensors again and again."""
        key = (elements, processor, src, dst)
        if key not in self._conversions:
            self._conversions[key] = self._conversion_ms(elements, processor, src, dst)
        return self._conversions[key]

    def _conversion_ms(self, elements: int, processor: str, src: str, dst: str) -> float:
        if not converts(processor, src, dst):
            processor = fallback().name
        dtype = src if src in QUANTIZED else dst
        moved = elements * (DTYPE_SIZES[src] + DTYPE_SIZES[dst]) / self.execution(processor, dtype).width
        return self.ops_ms([OpProfile("mem", 0.0, moved, 1, ELTWISE)], processor, dtype)

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
    "ELTWISE",
    "Execution",
    "Group",
    "OpProfile",
    "Protocol",
    "SHAPE_CLASSES",
    "execution",
    "load_params",
    "processor_peak",
    "profile_node",
    "shape_class",
    "work_features",
]
