"""Kernel micro-benchmarks: the cost model's CPU parameters measured on the machine that runs them.

`KERNELS` are single-op TFLite models, one per kernel class and shape the cost model distinguishes (dense k x k
and 1 x 1 convolutions, depthwise convolutions, fully connected layers, elementwise, pooling, concatenation), at
the sizes networks run them, two or more per shape class (`profile.SHAPE_CLASSES`), and chains (a launch's cost
apart from an invoke's; weights beyond the last-level cache). `measure` builds each at float32 and int8 (the int8 form by TFLite's own calibrator
and quantizer, as a compile quantizes), times it with LiteRT's CPU kernels (XNNPACK, the kernels the C++ runtime's
CPU partitions run: both load the ai-edge-litert wheel's libLiteRt.so) on one thread, and returns the minimum
over the runs. `fit` then finds the parameters of the cost model's formula (stretchc.costmodel) that predict
those minimums best: per precision the efficiencies `conv`, `dwconv`, `mem` and the launch cost `op_ms`, and
the dispatch time of one invoke, by non-negative least squares on relative error over the same work features
a compile prices (`CostModel.features` of `profile_node`), so the prediction path is the compile's; those from
the kernels of no shape class (`profile.SHAPE_CLASSES`). Then per precision and shape class the factor on the base
price that the class's kernels measure (the median over them): XNNPACK has no fast path for a 7 x 7 depthwise
window, leaves quantized RELU and average pooling to TFLite's reference kernels, and so on. Last, from the chains
whose weights overflow the last-level cache, the bandwidth at which those weights are read again every run (a
single op's stay in cache between runs; a network's do not).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Mapping

import numpy as np

from stretchc.backends import fallback
from stretchc.costmodel import ELTWISE, SHAPE_CLASSES, CostModel, eff_clamp
from stretchc.costmodel.profile import OpProfile, profile_node
from stretchc.ir import Node, Value
from stretchc.native import NativeProcess
from stretchc.tflite_io import emit_model, import_model

PROCESSOR = fallback().name  # the kernels measured are the CPU's, the processor every target has
DTYPES = ("float32", "int8")
CALIBRATION_SAMPLES = 4


@dataclass(frozen=True)
class Kernel:
    """One micro-benchmark: an op of class `op` on an NHWC input of `size` x `size` x `channels`."""

    # conv3x3, conv3x3s2, conv1x1, dwconv3x3, dwconv3x3s2, dwconv7x7, dwconv7x7s2, fc, add, relu, maxpool, avgpool
    # (2 x 2, stride 2), avgpool3x3 (stride 1, SAME), subsample (1 x 1 window, stride 2), pad, concat
    op: str
    size: int
    channels: int
    out_channels: int = 0  # convolutions and fully connected layers
    repeat: int = 1  # the op this many times in a chain (shape-keeping ops: add, relu, stride-1 depthwise and square 1 x 1 convolutions)

    @property
    def name(self) -> str:
        shape = f"{self.op}-{self.size}x{self.size}x{self.channels}" + (f"-{self.out_channels}" if self.out_channels else "")
        return shape + (f"-x{self.repeat}" if self.repeat > 1 else "")


KERNELS: tuple[Kernel, ...] = (
    Kernel("conv3x3", 56, 32, 32), Kernel("conv3x3", 28, 64, 64), Kernel("conv3x3", 14, 128, 128), Kernel("conv3x3", 7, 256, 256),
    Kernel("conv3x3s2", 56, 32, 64),
    Kernel("conv1x1", 28, 128, 128), Kernel("conv1x1", 14, 256, 256), Kernel("conv1x1", 7, 512, 512),
    # channel counts off the kernels' tiles and small feature maps, as networks run them beside the tidy shapes
    Kernel("conv3x3", 28, 24, 24), Kernel("conv3x3", 14, 72, 72), Kernel("conv3x3", 4, 200, 200),
    Kernel("conv1x1", 28, 24, 72), Kernel("conv1x1", 14, 72, 200), Kernel("conv1x1", 4, 200, 200),
    Kernel("dwconv3x3", 112, 32), Kernel("dwconv3x3", 56, 64), Kernel("dwconv3x3", 28, 128), Kernel("dwconv3x3", 14, 256),
    Kernel("dwconv3x3", 7, 512), Kernel("dwconv3x3s2", 56, 64),
    Kernel("fc", 1, 1024, 1000), Kernel("fc", 1, 512, 512),
    Kernel("add", 56, 64), Kernel("add", 28, 128), Kernel("add", 14, 256),
    Kernel("maxpool", 56, 64),
    # chains: one invoke, many kernel launches, so a launch's cost and an invoke's separate
    Kernel("add", 28, 128, repeat=8), Kernel("dwconv3x3", 14, 256, repeat=8),
    # weights beyond the last-level cache (a network's, unlike a single op's): 48 x 1 M weights, 192 MB at float32
    Kernel("conv1x1", 4, 1024, 1024, repeat=48), Kernel("conv1x1", 7, 1024, 1024, repeat=48),
    # shape classes (profile.SHAPE_CLASSES), two or more each: conv-narrow, dwconv-large, dwconv-5x5, relu, avgpool,
    # subsample, pad-narrow, pad, concat; eltwise: the add and max-pool kernels above
    Kernel("conv3x3s2", 112, 3, 32), Kernel("conv1x1", 56, 32, 64), Kernel("conv1x1", 56, 16, 96), Kernel("conv3x3", 56, 10, 32),
    Kernel("dwconv7x7", 28, 88), Kernel("dwconv7x7s2", 56, 32),
    Kernel("dwconv5x5", 28, 240), Kernel("dwconv5x5", 14, 672), Kernel("dwconv5x5s2", 28, 144),
    Kernel("relu", 28, 128), Kernel("relu", 56, 32),
    Kernel("avgpool", 28, 128), Kernel("avgpool3x3", 28, 128),
    Kernel("subsample", 56, 64), Kernel("subsample", 28, 128),
    Kernel("pad", 112, 3), Kernel("pad", 56, 8), Kernel("pad", 56, 32), Kernel("pad", 28, 64),
    Kernel("concat", 28, 64), Kernel("concat", 56, 16),
)


def _const(name: str, shape: tuple[int, ...], rng: np.random.Generator, scale: float) -> Value:
    return Value(name, shape, "float32", data=(rng.standard_normal(shape) * scale).astype(np.float32))


def float_graph(k: Kernel, seed: int = 0) -> tuple[list[Node], list[Value], list[Value]]:
    """The kernel as TFLite IR: its nodes, inputs and outputs (float32; weights seeded, He-scaled)."""
    if k.repeat > 1 and k.op not in ("add", "dwconv3x3", "dwconv7x7", "relu") and not (k.op == "conv1x1" and k.channels == k.out_channels):
        raise ValueError(f"{k.op} keeps no shape to chain: repeat must be 1")
    rng = np.random.default_rng(seed)
    s, c, o = k.size, k.channels, k.out_channels
    x = Value("x", (1, s, s, c), "float32")
    inputs = [x]
    if k.op.startswith("conv"):
        kh = 1 if k.op == "conv1x1" else 3
        stride = 2 if k.op.endswith("s2") else 1
        attrs = {"options": "Conv2DOptions", "padding": "SAME", "strideH": stride, "strideW": stride, "dilationHFactor": 1,
                 "dilationWFactor": 1, "fusedActivationFunction": "RELU", "version": 1}
        nodes, y = [], x
        for i in range(k.repeat):  # a chain: each its own weights
            w = _const(f"w{i}", (o, kh, kh, c), rng, (2.0 / (kh * kh * c)) ** 0.5)
            out = Value(f"y{i}", (1, -(-y.shape[1] // stride), -(-y.shape[2] // stride), o), "float32")
            nodes.append(Node("tfl.CONV_2D", [y, w, _const(f"b{i}", (o,), rng, 0.0)], [out], dict(attrs)))
            y = out
    elif k.op.startswith("dwconv"):
        stride = 2 if k.op.endswith("s2") else 1
        kh = int(k.op[len("dwconv")])  # dwconv3x3, dwconv7x7s2, ...
        attrs = {"options": "DepthwiseConv2DOptions", "padding": "SAME", "strideH": stride, "strideW": stride, "depthMultiplier": 1,
                 "dilationHFactor": 1, "dilationWFactor": 1, "fusedActivationFunction": "RELU", "version": 1}
        nodes, y = [], x
        for i in range(k.repeat):
            w = _const(f"w{i}", (1, kh, kh, c), rng, (2.0 / (kh * kh)) ** 0.5)
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
    elif k.op == "relu":
        nodes, y = [], x
        for i in range(k.repeat):
            out = Value(f"y{i}", (1, s, s, c), "float32")
            nodes.append(Node("tfl.RELU", [y], [out], {"version": 1}))
            y = out
    elif k.op in ("maxpool", "avgpool", "avgpool3x3", "subsample"):
        window, stride, padding = {"avgpool3x3": (3, 1, "SAME"), "subsample": (1, 2, "VALID")}.get(k.op, (2, 2, "VALID"))
        out = -(-s // stride) if padding == "SAME" else (s - window) // stride + 1
        y = Value("y", (1, out, out, c), "float32")
        attrs = {"options": "Pool2DOptions", "padding": padding, "strideH": stride, "strideW": stride, "filterHeight": window,
                 "filterWidth": window, "fusedActivationFunction": "NONE", "version": 1}
        nodes = [Node("tfl.MAX_POOL_2D" if k.op == "maxpool" else "tfl.AVERAGE_POOL_2D", [x], [y], attrs)]
    elif k.op == "pad":
        pads = Value("pads", (4, 2), "int32", data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32))
        y = Value("y", (1, s + 2, s + 2, c), "float32")
        nodes = [Node("tfl.PAD", [x, pads], [y], {"options": "PadOptions", "version": 1})]
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

    @cached_property
    def ops(self) -> tuple[OpProfile, ...]:
        """The profiles of its nodes (computed once: every fit of a calibration reads them)."""
        return tuple(p for p in (profile_node(n) for n in self.nodes) if p is not None)

    @cached_property
    def shape_class(self) -> str:
        """The shape class it measures ("" for the base kernels)."""
        return next((o.shape_class for o in self.ops if o.shape_class), "")


def model_bytes(k: Kernel, dtype: str, native: NativeProcess) -> bytes:
    """The kernel's TFLite model at `dtype` (int8: calibrated on seeded random inputs, quantized by TFLite)."""
    nodes, inputs, outputs = float_graph(k)
    model = emit_model(nodes, inputs, outputs, description=f"stretchc micro-benchmark {k.name}")
    if dtype == "float32":
        return model
    rng = np.random.default_rng(1)
    samples = [[rng.standard_normal(v.shape).astype(np.float32) for v in inputs] for _ in range(CALIBRATION_SAMPLES)]
    return native.quantize(native.calibrate(model, samples), per_channel=True, per_channel_dense=True)


ROUNDS = 5  # each micro-benchmark's runs, spread over this many passes through all of them


def random_input(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Seeded data for a model input: standard normal for floats, uniform over the whole range for integers. Never
    constant: some kernels run faster on data whose branches all go one way (TFLite's int8 RELU takes about a third
    of its time on zeros), which a network's activations never are."""
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


class Timer:
    """One model loaded in LiteRT on one CPU thread, its inputs set (`random_input`), warmed up; `best` is the fastest invoke
    seen so far (ms)."""

    def __init__(self, model: bytes, warmup: int) -> None:
        from stretchc.litert import load_interpreter  # lazy: LiteRT's native library, loaded when a model runs

        self.it = load_interpreter(model_content=model, num_threads=1)
        rng = np.random.default_rng(2)
        for d in self.it.get_input_details():
            self.it.set_tensor(d["index"], random_input(rng, tuple(d["shape"]), np.dtype(d["dtype"])))
        for _ in range(warmup):
            self.it.invoke()
        self.best = float("inf")

    def run(self, runs: int) -> None:
        for _ in range(runs):
            t = time.perf_counter()
            self.it.invoke()
            self.best = min(self.best, (time.perf_counter() - t) * 1e3)


def time_model(model: bytes, *, runs: int, warmup: int) -> float:
    """The minimum latency (ms) of one invoke of `model` on one CPU thread over `runs` timed runs."""
    timer = Timer(model, warmup)
    timer.run(runs)
    return timer.best


def measure(
    kernels: tuple[Kernel, ...] = KERNELS, *, runs: int = 50, warmup: int = 5, progress: Callable[[int, int, str], None] | None = None,
) -> list[Measurement]:
    """Every kernel at every dtype of `DTYPES`, timed on this machine (see the module docstring): the minimum over
    `runs` runs, taken in `ROUNDS` passes through all the micro-benchmarks, so that each is sampled across the
    whole calibration and a spell of interference on a shared machine (a neighbour, a clock change) weighs on all of
    them alike instead of on the few timed during it."""
    jobs = [(k, d) for k in kernels for d in DTYPES]
    rounds = min(ROUNDS, runs)
    per_round = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]
    models = []
    with NativeProcess() as native:
        for i, (k, dtype) in enumerate(jobs):
            if progress is not None:
                progress(i, len(jobs), f"building {k.name} {dtype}")
            models.append(model_bytes(k, dtype, native))
    timers = [Timer(model, warmup) for model in models]
    for r, n in enumerate(per_round):
        if progress is not None:
            progress(r, rounds, f"timing pass {r + 1} of {rounds}")
        for timer in timers:
            timer.run(n)
    return [Measurement(k.name, dtype, timer.best, tuple(import_model(model).nodes)) for (k, dtype), model, timer in zip(jobs, models, timers)]


@dataclass(frozen=True)
class Fitted:
    """The measured parameters: per dtype {conv, dwconv, mem, op_ms, shape_classes, weight_gbps} of the CPU's kernel
    family under the target's protocol (`shape_classes`: shape class -> factor; `weight_gbps` where the weights of a
    chain beyond the cache measured it), the dispatch time of one invoke, the last-level cache they assume (MiB;
    None: unknown), and each micro-benchmark's error under them (%)."""

    kinds: Mapping[str, Mapping[str, Any]]
    dispatch_ms: float
    errors_pct: Mapping[str, float]
    cache_mb: float | None = None

    def measured(self) -> dict[str, Any]:
        """The parameters as a target file's `measured` section holds them (without its points)."""
        out: dict[str, Any] = {"kinds": dict(self.kinds), "dispatch_ms": {PROCESSOR: self.dispatch_ms}}
        return out if self.cache_mb is None else {**out, "cache_mb": self.cache_mb}


def _beyond_cache(cm: CostModel, m: Measurement, cache_mb: float | None) -> bool:
    """Whether the micro-benchmark's weights (at its dtype) are more than the last-level cache holds."""
    weights = sum(o.weights for o in m.ops) * cm.execution(PROCESSOR, m.dtype).width
    return cache_mb is not None and weights > cache_mb * (1 << 20)


def measured_peaks(raw: Mapping[str, Any], measurements: list[Measurement]) -> dict[str, Any]:
    """`raw` (a one-cluster CPU target's contents) with the peaks the measurements show: the clock at which the
    cluster's FP32 FLOP/cycle gives the fastest float32 dense convolution measured (a boost clock is what runs,
    and no file states it), and as the memory's bandwidth the fastest data movement of an elementwise, pooling or
    concatenation kernel at either dtype (small tensors stay in cache, beyond what a large copy reaches). So no
    measured kernel beats its peak, and the efficiencies the fit finds are fractions of what this machine does.
    Base kernels and elementwise ones only: the other shape classes are priced off these peaks."""
    base = [m for m in measurements if m.shape_class in ("", ELTWISE)]
    gflops = [sum(o.flops for o in m.ops) / (m.ms * 1e6) for m in base if m.dtype == "float32" and all(o.cls == "conv" for o in m.ops)]
    cm = CostModel(raw)
    gbps = [sum(o.elems for o in m.ops) * cm.execution(PROCESSOR, m.dtype).width / (m.ms * 1e6) for m in base if all(o.cls == "mem" for o in m.ops)]
    out = {**raw, PROCESSOR: {**raw[PROCESSOR], "clusters": [dict(c) for c in raw[PROCESSOR]["clusters"]]}, "memory": dict(raw["memory"])}
    cluster = out[PROCESSOR]["clusters"][0]
    if gflops:
        cluster["fmax_ghz"] = round(max(gflops) / float(cluster["fp32_flop_per_cycle"]), 3)
    if gbps:
        out["memory"]["peak_gbps"] = round(max(max(gbps), float(raw["memory"]["peak_gbps"])), 1)
    return out


def _columns(cm: CostModel, ops: list[Any], dtype: str) -> np.ndarray:
    """The ops' row: their work features (every shape-class factor 1) in their dtype's block of four, 1 for the dispatch."""
    row = np.zeros(4 * len(DTYPES) + 1)
    block = DTYPES.index(dtype)
    row[4 * block: 4 * block + 4] = cm.features(ops, PROCESSOR, dtype, shape_classes=False)
    row[-1] = 1.0
    return row


def _base_fit(cm: CostModel, measurements: list[Measurement]) -> np.ndarray:
    """x = per dtype [1/conv, 1/dwconv, 1/mem, op_ms], then the dispatch: the non-negative least squares on relative
    error over `measurements`, an efficiency beyond its clamp held at the clamp and the rest fitted again."""
    from scipy.optimize import nnls  # lazy: SciPy, only a calibration needs it

    a = np.array([_columns(cm, m.ops, m.dtype) for m in measurements])
    t = np.array([m.ms for m in measurements])
    kinds = [cm.execution(PROCESSOR, d).kind for d in DTYPES]
    fixed: dict[int, float] = {}
    x = np.zeros(a.shape[1])
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
    return x


def _factors(cm: CostModel, x: np.ndarray, measurements: list[Measurement]) -> dict[str, dict[str, float]]:
    """dtype -> shape class -> the median over the class's micro-benchmarks of (measured - the base price of their
    other ops, of the class's kernel launches and of the dispatch) / the base price of the class's ops' compute and
    data movement (at least 0.1: a class is never free)."""
    found: dict[tuple[str, str], list[float]] = {}
    for m in measurements:
        cls = m.shape_class
        if not cls:
            continue
        ops = m.ops
        work = _columns(cm, [o for o in ops if o.shape_class == cls], m.dtype)
        launches = 4 * DTYPES.index(m.dtype) + 3  # a class's factor scales its compute and data movement, not its launches
        inside = float(work[:launches] @ x[:launches])
        outside = float(_columns(cm, [o for o in ops if o.shape_class != cls], m.dtype) @ x) + work[launches] * x[launches]
        found.setdefault((m.dtype, cls), []).append(max((m.ms - outside) / inside, 0.1))
    out: dict[str, dict[str, float]] = {d: {} for d in DTYPES}
    for (dtype, cls), fs in sorted(found.items(), key=lambda kv: (kv[0][0], SHAPE_CLASSES.index(kv[0][1]))):
        out[dtype][cls] = round(float(np.median(fs)), 3)
    return out


def _weight_gbps(cm: CostModel, x: np.ndarray, measurements: list[Measurement], cache_mb: float) -> dict[str, float]:
    """dtype -> the median over the chains whose weights are beyond the cache of (the bytes of the weights beyond it)
    / (measured - their base price): the bandwidth at which a network's weights come from memory (none for a dtype
    whose chains took no longer than their base price)."""
    found: dict[str, list[float]] = {}
    for m in measurements:
        if m.shape_class or not _beyond_cache(cm, m, cache_mb):
            continue
        ops = m.ops
        width = cm.execution(PROCESSOR, m.dtype).width
        weights = sum(o.weights for o in ops) * width
        extra = m.ms - float(_columns(cm, ops, m.dtype) @ x)
        if extra > 0:
            found.setdefault(m.dtype, []).append((weights - cache_mb * (1 << 20)) / (extra * 1e6))
    return {d: round(float(np.median(v)), 2) for d, v in sorted(found.items())}


def fit(target: Any, measurements: list[Measurement], cache_mb: float | None = None) -> Fitted:
    """The parameters that predict `measurements` on `target`: the base parameters by `_base_fit` over the
    micro-benchmarks of no shape class whose weights fit in the last-level cache of `cache_mb` MiB, then each shape
    class's factor by `_factors`, and the bandwidth of weights beyond the cache by `_weight_gbps` (see the module
    docstring)."""
    cm = CostModel(target)
    x = _base_fit(cm, [m for m in measurements if not m.shape_class and not _beyond_cache(cm, m, cache_mb)])
    factors = _factors(cm, x, measurements)
    streams = _weight_gbps(cm, x, measurements, cache_mb) if cache_mb is not None else {}
    kinds = {}
    for b, dtype in enumerate(DTYPES):
        p: dict[str, Any] = {"conv": 1.0 / x[4 * b], "dwconv": 1.0 / x[4 * b + 1], "mem": 1.0 / x[4 * b + 2], "op_ms": float(x[4 * b + 3])}
        p = {c: round(float(v), 6) for c, v in p.items()}
        if factors[dtype]:
            p["shape_classes"] = factors[dtype]
        if dtype in streams:
            p["weight_gbps"] = streams[dtype]
        kinds[cm.execution(PROCESSOR, dtype).kind] = p
    fitted = Fitted(kinds, round(float(x[-1]), 6), {}, cache_mb)
    priced = _priced_by(target, fitted)
    errors = {f"{m.kernel} {m.dtype}": 100.0 * (_predict(priced, fitted, m) - m.ms) / m.ms for m in measurements}
    return Fitted(kinds, fitted.dispatch_ms, errors, cache_mb)


def _priced_by(target: Any, fitted: Fitted) -> CostModel:
    """The cost model of `target` with the fitted parameters as its own, as a compile for the calibrated target
    prices with them."""
    raw = target.raw if hasattr(target, "raw") else target
    return CostModel({**raw, "calibration": raw.get("calibration") or "host", "measured": fitted.measured()})


def _predict(cm: CostModel, fitted: Fitted, m: Measurement) -> float:
    cm.stream_weights(sum(o.weights for o in m.ops))  # the micro-benchmark's weights are the whole model's
    return cm.ops_ms(m.ops, PROCESSOR, m.dtype) + fitted.dispatch_ms


def predict(target: Any, fitted: Fitted, m: Measurement) -> float:
    """The latency (ms) `fitted` predicts for micro-benchmark `m` on `target`: its ops priced by the cost model with
    the fitted parameters as the target's own (as a compile for the calibrated target prices them), plus one
    invoke's dispatch; the micro-benchmark's weights are the model's (`CostModel.stream_weights`)."""
    return _predict(_priced_by(target, fitted), fitted, m)


def left_out_errors(target: Any, measurements: list[Measurement], cache_mb: float | None = None) -> dict[str, float]:
    """"kernel dtype" -> the error (%) of its prediction by a fit over every other micro-benchmark."""
    out = {}
    for i, m in enumerate(measurements):
        fitted = fit(target, measurements[:i] + measurements[i + 1:], cache_mb)
        out[f"{m.kernel} {m.dtype}"] = 100.0 * (predict(target, fitted, m) - m.ms) / m.ms
    return out


__all__ = [
    "DTYPES", "KERNELS", "Fitted", "Kernel", "Measurement", "fit", "float_graph", "left_out_errors", "measure", "measured_peaks",
    "model_bytes", "Timer", "predict", "random_input", "time_model",
]


def target_data(raw: dict[str, Any], measurements: list[Measurement], runs: int, warmup: int, cache_mb: float | None) -> dict[str, Any]:
    """The measured target's contents: `raw` with the measured peaks and a `measured` section (the fitted CPU
    parameters, the last-level cache of `cache_mb` MiB they assume, and each micro-benchmark's minimum with its error
    in the fit and left out of it)."""
    raw = measured_peaks(raw, measurements)
    fitted = fit(raw, measurements, cache_mb)
    left = left_out_errors(raw, measurements, cache_mb)
    points = [
        {"kernel": m.kernel, "dtype": m.dtype, "ms": round(m.ms, 5), "error_pct": round(fitted.errors_pct[f"{m.kernel} {m.dtype}"], 1),
         "left_out_pct": round(left[f"{m.kernel} {m.dtype}"], 1)}
        for m in measurements
    ]
    return {**raw, "measured": {"runs": runs, "warmup": warmup, **fitted.measured(), "points": points}}
