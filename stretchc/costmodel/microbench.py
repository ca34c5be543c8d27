"""Kernel micro-benchmarks: the cost model's CPU parameters measured on the machine that runs them.

`KERNELS` are single-op TFLite models, one per kernel class and shape the cost model distinguishes (dense k x k
and 1 x 1 convolutions, depthwise convolutions, fully connected layers, elementwise, pooling, concatenation), at
the sizes networks run them. `measure` builds each at float32 and int8 (the int8 form by TFLite's own calibrator
and quantizer, as a compile quantizes), times it with LiteRT's CPU kernels (XNNPACK, the kernels the C++ runtime's
CPU partitions run: both load the ai-edge-litert wheel's libLiteRt.so) on one thread, and returns the minimum
over the runs. `fit` then finds the parameters of the cost model's formula (stretchc.costmodel) that predict
those minimums best: per precision the efficiencies `conv`, `dwconv`, `mem` and the launch cost `op_ms`, and
the dispatch time of one invoke, by non-negative least squares on relative error over the same work features
a compile prices (`CostModel.features` of `profile_node`), so the prediction path is the compile's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from stretchc.backends import fallback
from stretchc.costmodel import CostModel, eff_clamp
from stretchc.costmodel.profile import profile_node
from stretchc.ir import Node, Value
from stretchc.native import NativeProcess
from stretchc.tflite_io import emit_model, import_model

PROCESSOR = fallback().name  # the kernels measured are the CPU's, the processor every target has
DTYPES = ("float32", "int8")
CALIBRATION_SAMPLES = 4


@dataclass(frozen=True)
class Kernel:
    """One micro-benchmark: an op of class `op` on an NHWC input of `size` x `size` x `channels`."""

    op: str  # conv3x3, conv3x3s2, conv1x1, dwconv3x3, dwconv3x3s2, fc, add, maxpool, avgpool, concat
    size: int
    channels: int
    out_channels: int = 0  # convolutions and fully connected layers
    repeat: int = 1  # the op this many times in a chain (shape-keeping ops: add, stride-1 depthwise convolutions)

    @property
    def name(self) -> str:
        shape = f"{self.op}-{self.size}x{self.size}x{self.channels}" + (f"-{self.out_channels}" if self.out_channels else "")
        return shape + (f"-x{self.repeat}" if self.repeat > 1 else "")


KERNELS: tuple[Kernel, ...] = (
    Kernel("conv3x3", 56, 32, 32), Kernel("conv3x3", 28, 64, 64), Kernel("conv3x3", 14, 128, 128), Kernel("conv3x3", 7, 256, 256),
    Kernel("conv3x3s2", 56, 32, 64), Kernel("conv3x3s2", 112, 3, 32),
    Kernel("conv1x1", 56, 32, 64), Kernel("conv1x1", 28, 128, 128), Kernel("conv1x1", 14, 256, 256), Kernel("conv1x1", 7, 512, 512),
    Kernel("dwconv3x3", 112, 32), Kernel("dwconv3x3", 56, 64), Kernel("dwconv3x3", 28, 128), Kernel("dwconv3x3", 14, 256),
    Kernel("dwconv3x3", 7, 512), Kernel("dwconv3x3s2", 56, 64),
    Kernel("fc", 1, 1024, 1000), Kernel("fc", 1, 512, 512),
    Kernel("add", 56, 64), Kernel("add", 28, 128), Kernel("add", 14, 256),
    Kernel("maxpool", 56, 64), Kernel("avgpool", 28, 128), Kernel("concat", 28, 64),
    # chains: one invoke, many kernel launches, so a launch's cost and an invoke's separate
    Kernel("add", 28, 128, repeat=8), Kernel("dwconv3x3", 14, 256, repeat=8),
)


def _const(name: str, shape: tuple[int, ...], rng: np.random.Generator, scale: float) -> Value:
    return Value(name, shape, "float32", data=(rng.standard_normal(shape) * scale).astype(np.float32))


def float_graph(k: Kernel, seed: int = 0) -> tuple[list[Node], list[Value], list[Value]]:
    """The kernel as TFLite IR: its nodes, inputs and outputs (float32; weights seeded, He-scaled)."""
    if k.repeat > 1 and k.op not in ("add", "dwconv3x3"):
        raise ValueError(f"{k.op} keeps no shape to chain: repeat must be 1")
    rng = np.random.default_rng(seed)
    s, c, o = k.size, k.channels, k.out_channels
    x = Value("x", (1, s, s, c), "float32")
    inputs = [x]
    if k.op.startswith("conv"):
        kh = 1 if k.op == "conv1x1" else 3
        stride = 2 if k.op.endswith("s2") else 1
        w = _const("w", (o, kh, kh, c), rng, (2.0 / (kh * kh * c)) ** 0.5)
        y = Value("y", (1, -(-s // stride), -(-s // stride), o), "float32")
        attrs = {"options": "Conv2DOptions", "padding": "SAME", "strideH": stride, "strideW": stride, "dilationHFactor": 1,
                 "dilationWFactor": 1, "fusedActivationFunction": "RELU", "version": 1}
        nodes = [Node("tfl.CONV_2D", [x, w, _const("b", (o,), rng, 0.0)], [y], attrs)]
    elif k.op.startswith("dwconv"):
        stride = 2 if k.op.endswith("s2") else 1
        attrs = {"options": "DepthwiseConv2DOptions", "padding": "SAME", "strideH": stride, "strideW": stride, "depthMultiplier": 1,
                 "dilationHFactor": 1, "dilationWFactor": 1, "fusedActivationFunction": "RELU", "version": 1}
        nodes, y = [], x
        for i in range(k.repeat):
            w = _const(f"w{i}", (1, 3, 3, c), rng, (2.0 / 9) ** 0.5)
            out = Value(f"y{i}", (1, -(-y.shape[1] // stride), -(-y.shape[2] // stride), c), "float32")
            nodes.append(Node("tfl.DEPTHWISE_CONV_2D", [y, w, _const(f"b{i}", (c,), rng, 0.0)], [out], dict(attrs)))
            y = out
    elif k.op == "fc":
        x = Value("x", (1, c), "float32")
        inputs = [x]
        w = _const("w", (o, c), rng, (2.0 / c) ** 0.5)
        y = Value("y", (1, o), "float32")
        attrs = {"options": "FullyConnectedOptions", "fusedActivationFunction": "NONE", "keepNumDims": False, "version": 1}
        nodes = [Node("tfl.FULLY_CONNECTED", [x, w, _const("b", (o,), rng, 0.0)], [y], attrs)]
    elif k.op == "add":
        x2 = Value("x2", (1, s, s, c), "float32")
        inputs = [x, x2]
        nodes, y = [], x
        for i in range(k.repeat):
            out = Value(f"y{i}", (1, s, s, c), "float32")
            nodes.append(Node("tfl.ADD", [y, x2], [out], {"options": "AddOptions", "fusedActivationFunction": "NONE", "version": 1}))
            y = out
    elif k.op in ("maxpool", "avgpool"):
        y = Value("y", (1, s // 2, s // 2, c), "float32")
        attrs = {"options": "Pool2DOptions", "padding": "VALID", "strideH": 2, "strideW": 2, "filterHeight": 2, "filterWidth": 2,
                 "fusedActivationFunction": "NONE", "version": 1}
        nodes = [Node("tfl.MAX_POOL_2D" if k.op == "maxpool" else "tfl.AVERAGE_POOL_2D", [x], [y], attrs)]
    elif k.op == "concat":
        x2 = Value("x2", (1, s, s, c), "float32")
        inputs = [x, x2]
        y = Value("y", (1, s, s, 2 * c), "float32")
        nodes = [Node("tfl.CONCATENATION", [x, x2], [y], {"options": "ConcatenationOptions", "axis": 3, "fusedActivationFunction": "NONE", "version": 1})]
    else:
        raise ValueError(f"unknown micro-benchmark op {k.op!r}")
    return nodes, inputs, [y]


@dataclass(frozen=True)
class Measurement:
    """A micro-benchmark's minimum latency over its runs, and the work the cost model sees in it."""

    kernel: str
    dtype: str
    ms: float
    nodes: tuple[Node, ...]  # the model's ops as a compile would profile them (QUANTIZE/DEQUANTIZE included)


def model_bytes(k: Kernel, dtype: str, native: NativeProcess) -> bytes:
    """The kernel's TFLite model at `dtype` (int8: calibrated on seeded random inputs, quantized by TFLite)."""
    nodes, inputs, outputs = float_graph(k)
    model = emit_model(nodes, inputs, outputs, description=f"stretchc micro-benchmark {k.name}")
    if dtype == "float32":
        return model
    rng = np.random.default_rng(1)
    samples = [[rng.standard_normal(v.shape).astype(np.float32) for v in inputs] for _ in range(CALIBRATION_SAMPLES)]
    return native.quantize(native.calibrate(model, samples), per_channel=True, per_channel_dense=True)


def time_model(model: bytes, *, runs: int, warmup: int) -> float:
    """The minimum latency (ms) of one invoke of `model` on one CPU thread over `runs` timed runs."""
    from stretchc.litert import load_interpreter

    it = load_interpreter(model_content=model, num_threads=1)
    rng = np.random.default_rng(2)
    for d in it.get_input_details():
        it.set_tensor(d["index"], rng.standard_normal(d["shape"]).astype(d["dtype"]) if d["dtype"] == np.float32 else np.zeros(d["shape"], d["dtype"]))
    for _ in range(warmup):
        it.invoke()
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        it.invoke()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def measure(
    kernels: tuple[Kernel, ...] = KERNELS, *, runs: int = 50, warmup: int = 5, progress: Callable[[int, int, str], None] | None = None,
) -> list[Measurement]:
    """Every kernel at every dtype of `DTYPES`, timed on this machine (see the module docstring)."""
    out = []
    jobs = [(k, d) for k in kernels for d in DTYPES]
    with NativeProcess() as native:
        for i, (k, dtype) in enumerate(jobs):
            if progress is not None:
                progress(i, len(jobs), f"{k.name} {dtype}")
            model = model_bytes(k, dtype, native)
            out.append(Measurement(k.name, dtype, time_model(model, runs=runs, warmup=warmup), tuple(import_model(model).nodes)))
    return out


@dataclass(frozen=True)
class Fitted:
    """The measured parameters: per dtype {conv, dwconv, mem, op_ms} of the CPU's kernel family under the target's
    protocol, the dispatch time of one invoke, and each micro-benchmark's error under them (%)."""

    kinds: Mapping[str, Mapping[str, float]]
    dispatch_ms: float
    errors_pct: Mapping[str, float]


def _ops(m: Measurement) -> list[Any]:
    return [p for p in (profile_node(n) for n in m.nodes) if p is not None]


def measured_peaks(raw: Mapping[str, Any], measurements: list[Measurement]) -> dict[str, Any]:
    """`raw` (a one-cluster CPU target's contents) with the peaks the measurements show: the clock at which the
    cluster's FP32 FLOP/cycle gives the fastest float32 dense convolution measured (a boost clock is what runs,
    and no file states it), and as the memory's bandwidth the fastest data movement of an elementwise, pooling or
    concatenation kernel at either dtype (small tensors stay in cache, beyond what a large copy reaches). So no
    measured kernel beats its peak, and the efficiencies the fit finds are fractions of what this machine does."""
    gflops = [sum(o.flops for o in _ops(m)) / (m.ms * 1e6) for m in measurements if m.dtype == "float32" and all(o.cls == "conv" for o in _ops(m))]
    cm = CostModel(raw)
    gbps = [
        sum(o.elems for o in _ops(m)) * cm.execution(PROCESSOR, m.dtype).width / (m.ms * 1e6)
        for m in measurements if all(o.cls == "mem" for o in _ops(m))
    ]
    out = {**raw, PROCESSOR: {**raw[PROCESSOR], "clusters": [dict(c) for c in raw[PROCESSOR]["clusters"]]}, "memory": dict(raw["memory"])}
    cluster = out[PROCESSOR]["clusters"][0]
    if gflops:
        cluster["fmax_ghz"] = round(max(gflops) / float(cluster["fp32_flop_per_cycle"]), 3)
    if gbps:
        out["memory"]["peak_gbps"] = round(max(max(gbps), float(raw["memory"]["peak_gbps"])), 1)
    return out


def _columns(cm: CostModel, m: Measurement) -> np.ndarray:
    """The measurement's row: its work features in its dtype's block of four, then 1 for the dispatch."""
    row = np.zeros(4 * len(DTYPES) + 1)
    block = DTYPES.index(m.dtype)
    row[4 * block: 4 * block + 4] = cm.features(_ops(m), PROCESSOR, m.dtype)
    row[-1] = 1.0
    return row


def fit(target: Any, measurements: list[Measurement]) -> Fitted:
    """The parameters that predict `measurements` on `target` with the least squared relative error (non-negative
    least squares over x = per dtype [1/conv, 1/dwconv, 1/mem, op_ms], then dispatch; an efficiency beyond its
    clamp is held at the clamp and the rest fitted again)."""
    from scipy.optimize import nnls  # lazy: SciPy, only a calibration needs it

    cm = CostModel(target)
    a = np.array([_columns(cm, m) for m in measurements])
    t = np.array([m.ms for m in measurements])
    kinds = [cm.execution(PROCESSOR, d).kind for d in DTYPES]
    fixed: dict[int, float] = {}
    for _ in range(4 * len(DTYPES)):
        free = [j for j in range(a.shape[1]) if j not in fixed]
        rest = t - sum((a[:, j] * v for j, v in fixed.items()), np.zeros_like(t))
        solved, _ = nnls(a[:, free] / t[:, None], rest / t)
        x = np.zeros(a.shape[1])
        x[free] = solved
        for j, v in fixed.items():
            x[j] = v
        beyond = {}
        for b, kind in enumerate(kinds):
            for c, cls in enumerate(("conv", "dwconv", "mem")):
                j = 4 * b + c
                low, high = eff_clamp(kind, cls)
                if j not in fixed and (x[j] < 1.0 / high or x[j] > 1.0 / low):  # x is 1 / efficiency
                    beyond[j] = 1.0 / high if x[j] < 1.0 / high else 1.0 / low
        if not beyond:
            break
        fixed.update(beyond)
    params = {
        kind: {"conv": 1.0 / x[4 * b], "dwconv": 1.0 / x[4 * b + 1], "mem": 1.0 / x[4 * b + 2], "op_ms": float(x[4 * b + 3])}
        for b, kind in enumerate(kinds)
    }
    predicted = a @ x
    errors = {f"{m.kernel} {m.dtype}": float(100.0 * (p - m.ms) / m.ms) for m, p in zip(measurements, predicted)}
    return Fitted({k: {c: round(float(v), 6) for c, v in p.items()} for k, p in params.items()}, round(float(x[-1]), 6), errors)


def left_out_errors(target: Any, measurements: list[Measurement]) -> dict[str, float]:
    """"kernel dtype" -> the error (%) of its prediction by a fit over every other micro-benchmark."""
    out = {}
    for i, m in enumerate(measurements):
        rest = measurements[:i] + measurements[i + 1:]
        fitted = fit(target, rest)
        cm = CostModel(target)
        params = fitted.kinds[cm.execution(PROCESSOR, m.dtype).kind]
        x = np.array([1.0 / params["conv"], 1.0 / params["dwconv"], 1.0 / params["mem"], params["op_ms"]])
        predicted = float(cm.features(_ops(m), PROCESSOR, m.dtype) @ x) + fitted.dispatch_ms
        out[f"{m.kernel} {m.dtype}"] = 100.0 * (predicted - m.ms) / m.ms
    return out


__all__ = ["DTYPES", "KERNELS", "Fitted", "Kernel", "Measurement", "fit", "float_graph", "left_out_errors", "measure", "measured_peaks", "model_bytes", "time_model"]
