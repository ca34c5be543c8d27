"""Precision: the dtype a partition computes in, the processors that run each one, and the `--precision` policies.

Precisions:
- `float32`;
- `float16`: a GPU partition whose delegate computes in fp16 (the partition file stays float32; the manifest's
  delegate option `precision: fp16` asks for it);
- `int8`: TFLite's int8 quantization spec, from one calibration of the whole model, so every tensor has one
  scale and zero point shared by its producer and all its consumers;
- `uint8`: the Hexagon delegate's legacy asymmetric form of int8 (`--hexagon-dtype uint8`; the same numbers).

A partition's boundary tensors are in its *form*: float32 for float32 and float16 partitions (the GPU delegate
converts fp16 internally), int8 or uint8 for quantized ones. Where a producer's form differs from a consumer's,
one conversion (QUANTIZE or DEQUANTIZE) is planned at the boundary.

Policies (`--precision`, `assign-delegates{precision=...}`):
- `float`: CPU and GPU float32; the DSP int8 (it has no float path);
- `fp16-gpu`: as `float`, but GPU partitions fp16;
- `int8`: every partition int8, as the NN-Stretch prototype runs (one full-int8 model);
- `auto`: per region the fastest precision its processor runs (priced by the cost model together with the
  placement), int8 only with calibration data; quantize-partitions then demotes partitions to float until every
  model output keeps `--min-sqnr` dB against the float model on held-out samples.
"""

from __future__ import annotations

import numpy as np

PRECISIONS = ("float32", "float16", "int8", "uint8")
POLICIES = ("auto", "float", "int8", "fp16-gpu")
QUANTIZED = ("int8", "uint8")

# What each processor runs (facts/tflite-delegates.md): the CPU float32 and int8 kernels; the GPU delegate
# float32, fp16, or an int8 model (which it dequantizes internally); the Hexagon delegate only quantized models.
SUPPORTED: dict[str, tuple[str, ...]] = {"cpu": ("float32", "int8"), "gpu": ("float32", "float16", "int8"), "dsp": ("int8",)}
# Processors that run float <-> 8-bit conversions themselves (the Hexagon delegate leaves QUANTIZE from float and
# DEQUANTIZE on the CPU; it does run 8-bit <-> 8-bit requantization).
FLOAT_CONVERSIONS: dict[str, bool] = {"cpu": True, "gpu": True, "dsp": False}
# The precisions each fixed policy prefers, first supported wins.
_POLICY_PREFERENCE: dict[str, tuple[str, ...]] = {"float": ("float32",), "fp16-gpu": ("float16", "float32"), "int8": ("int8",)}


def form(precision: str) -> str:
    """The dtype of a partition's boundary tensors at `precision`."""
    return "float32" if precision in ("float32", "float16") else precision


def choices(policy: str, processor: str, *, calibrated: bool) -> tuple[str, ...]:
    """The precisions `policy` lets a region on `processor` take, most preferred first.

    A fixed policy gives one precision (the DSP is int8 under every policy). `auto` gives everything the
    processor runs, without the quantized ones when there is no calibration data (except on the DSP, which has
    nothing else: placing a region there without calibration data is refused elsewhere).
    """
    supported = SUPPORTED[processor]
    if policy == "auto":
        usable = tuple(p for p in supported if calibrated or p not in QUANTIZED)
        return usable or supported
    for p in _POLICY_PREFERENCE[policy]:
        if p in supported:
            return (p,)
    return supported[:1]


def converts(processor: str, src: str, dst: str) -> bool:
    """Whether a partition on `processor` can run the conversion of a tensor from dtype `src` to `dst`."""
    if src in QUANTIZED and dst in QUANTIZED:
        return True
    return FLOAT_CONVERSIONS[processor]


def converts_in_producer(producer: str, consumers: list[str], src: str, dst: str) -> bool:
    """Where the one conversion of a boundary tensor from `src` to `dst` runs: in the producer's partition when
    its processor can run it; otherwise in the consumer's, when exactly one consumer (a processor name; "host"
    for the model's output, which cannot run anything) reads that dtype and can run it; else in the producer's
    anyway (the op then runs on the CPU inside it). Never one conversion per consumer."""
    if converts(producer, src, dst):
        return True
    return not (len(consumers) == 1 and consumers[0] in FLOAT_CONVERSIONS and converts(consumers[0], src, dst))


def quantize_array(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """`x` as `dtype` with `scale` and `zero_point`, as TFLite's QUANTIZE does (round half away from zero, saturate)."""
    info = np.iinfo(dtype)
    scaled = np.asarray(x, dtype=np.float32) / np.float32(scale)
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_array(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """TFLite's DEQUANTIZE: (q - zero_point) * scale, in float32."""
    return ((q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)
