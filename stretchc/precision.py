"""Precision: the dtype a partition computes in, the processors that run each one, and the `--precision` policies.

Precisions:
- `float32`;
- `float16`: a GPU partition whose delegate computes in fp16 (the partition file stays float32; the manifest's
  delegate option `precision: fp16` asks for it);
- `int8`: TFLite's int8 quantization spec, from one calibration of the whole model, so every tensor has one
  scale and zero point shared by its producer and all its consumers;
- `uint8`: the legacy asymmetric form of int8 some delegates take (the Hexagon delegate's `--hexagon-dtype uint8`;
  the same numbers).

A partition's boundary tensors are in its *form*: float32 for float32 and float16 partitions (the GPU delegate
converts fp16 internally), int8 or uint8 for quantized ones. Where a producer's form differs from a consumer's,
one conversion (QUANTIZE or DEQUANTIZE) is planned at the boundary.

What each processor runs is its backend's (`Backend.precisions`, stretchc/backends/): a processor's precisions
in its order of preference.

Policies (`--precision`, the compile settings' `precision`):
- `float`: every processor at its first float precision (float32 where it runs it); a processor without a float
  path (the DSP) int8;
- `fp16-gpu`: as `float`, but float16 wherever a processor runs it (the GPU delegate's fp16);
- `int8`: every partition int8, as the NN-Stretch prototype runs (one full-int8 model);
- `auto`: per region the fastest precision its processor runs (priced by the cost model together with the
  placement), int8 only with calibration data; quantize-partitions then demotes partitions to float until every
  model output keeps `--min-sqnr` dB against the float model on held-out samples.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from stretchc.backends import backend
from stretchc.ir import HOST

POLICIES = ("auto", "float", "int8", "fp16-gpu")
QUANTIZED = ("int8", "uint8")

# dB: the accuracy rule of reduced precision, which the accuracy guard (stretchc/quantize/guard.py) and `verify`
# (stretchc/verify.py) both apply. Outputs keep the bound (verify's default for a bundle with int8 partitions:
# DEFAULT_MIN_SQNR); a sync point keeps `sync_point_bound` of it, the smaller of the bound and DEFAULT_MIN_SQNR:
# an intermediate tensor carries quantization noise that the rest of the network averages down (often a few dB
# below the outputs'), so a sync point fails on its own only when it is no longer recognisably its tensor.
DEFAULT_MIN_SQNR = 20.0


def sync_point_bound(min_sqnr: float) -> float:
    """The SQNR (dB) a sync point keeps when the outputs keep `min_sqnr` (see DEFAULT_MIN_SQNR)."""
    return min(min_sqnr, DEFAULT_MIN_SQNR)
# The precisions each fixed policy prefers, first supported wins (then the processor's own first float precision).
_POLICY_PREFERENCE: dict[str, tuple[str, ...]] = {"float": ("float32", "float16"), "fp16-gpu": ("float16", "float32"), "int8": ("int8",)}


def form(precision: str) -> str:
    """The dtype of a partition's boundary tensors at `precision`."""
    return "float32" if precision in ("float32", "float16") else precision


def choices(policy: str, processor: str, *, calibrated: bool, target: object = None) -> tuple[str, ...]:
    """The precisions `policy` lets a region on `processor` (of `target`, when given) take, most preferred first.

    A fixed policy gives one precision (a processor without a float path is int8 under every policy). `auto`
    gives everything the processor runs, without the quantized ones when there is no calibration data (except
    on a processor that runs nothing else: placing a region there without calibration data is refused elsewhere).
    """
    supported = backend(processor).precisions(target)
    if policy == "auto":
        usable = tuple(p for p in supported if calibrated or p not in QUANTIZED)
        return usable or supported
    for p in _POLICY_PREFERENCE[policy]:
        if p in supported:
            return (p,)
    return supported[:1]


@lru_cache(maxsize=None)
def converts(processor: str, src: str, dst: str) -> bool:
    """Whether a partition on `processor` can run the conversion of a tensor from dtype `src` to `dst` (8-bit
    requantization everywhere; float <-> 8-bit where its backend runs it, `Backend.float_conversions`). Cached:
    the placement search asks it for every boundary of every placement it prices."""
    if src in QUANTIZED and dst in QUANTIZED:
        return True
    return backend(processor).float_conversions


def converts_in_producer(producer: str, consumers: list[str], src: str, dst: str) -> bool:
    """Where the one conversion of a boundary tensor from `src` to `dst` runs: in the producer's partition when
    its processor can run it; otherwise in the consumer's, when exactly one consumer (a processor name; HOST
    for the model's output, which cannot run anything) reads that dtype and can run it; else in the producer's
    anyway (the op then runs on the CPU inside it). Never one conversion per consumer."""
    if converts(producer, src, dst):
        return True
    return not (len(consumers) == 1 and consumers[0] != HOST and converts(consumers[0], src, dst))


def quantize_array(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """`x` as `dtype` with `scale` and `zero_point`, as TFLite's QUANTIZE does (round half away from zero, saturate)."""
    info = np.iinfo(dtype)
    scaled = np.asarray(x, dtype=np.float32) / np.float32(scale)
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_array(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """TFLite's DEQUANTIZE: (q - zero_point) * scale, in float32."""
    return ((q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)
