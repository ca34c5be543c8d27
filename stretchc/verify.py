"""Compare a bundle with ONNX Runtime on seeded or given inputs: per model output and per sync point.

Outputs are compared by name. A sync point carries a lowered tensor whose ONNX name the lowering does not
keep, so each sync point is compared with the ONNX intermediate tensor of the same size (after the layout
permutation) that it matches best; the report names that tensor. A check passes when
`max|bundle - onnx| <= atol + rtol * max|onnx|`, with `atol` defaulting to 1e-4 x max|onnx output|; for a
bundle with int8 (DSP) partitions, or with `min_sqnr`, a check passes when its SQNR (dB, over all samples)
is at least `min_sqnr` (default 20 dB). Classifier outputs ([1, K]) also report top-1 agreement, and with
`labels` (one class per input) top-1 accuracy of the float model and the bundle (stretchc/accuracy.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import onnx

from stretchc.accuracy import OutputAccuracy, Top1
from stretchc.errors import StretchError
from stretchc.frontend.module import onnx_inputs
from stretchc.frontend.validate import load_model
from stretchc.runtime.host import HostRuntime

DEFAULT_RELATIVE_ATOL = 1e-4
DEFAULT_QUANTIZED_MIN_SQNR = 20.0  # dB: the pass criterion of a bundle with int8 (DSP) partitions, unless --atol is given


@dataclass
class Check:
    kind: str  # "output" | "sync"
    name: str
    onnx_tensor: str
    max_abs_error: float
    max_abs_reference: float
    tolerance: float
    sqnr_db: float | None = None  # 10 log10(sum ref^2 / sum (bundle - ref)^2) over all samples
    min_sqnr: float | None = None  # when set, the check passes on SQNR instead of max|err| (quantized bundles)

    @property
    def ok(self) -> bool:
        if self.min_sqnr is not None:
            return self.sqnr_db is not None and self.sqnr_db >= self.min_sqnr
        return self.max_abs_error <= self.tolerance


@dataclass
class VerifyReport:
    samples: int
    checks: list[Check] = field(default_factory=list)
    top1_agreement: dict[str, float] = field(default_factory=dict)  # classifier outputs: share of equal argmax
    quantized: bool = False  # the bundle has int8 (DSP) partitions
    accuracy: list[OutputAccuracy] = field(default_factory=list)  # with labels: top-1 per classifier output

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks if c.kind == "output")

    def table(self) -> str:
        rows = [f"verification against ONNX Runtime on {self.samples} input(s):"]
        rows.append(f"  {'':<6} {'name':<14} {'onnx tensor':<28} {'max|err|':>11} {'max|ref|':>10} {'tol':>10} {'SQNR dB':>8}  result")
        for c in self.checks:
            verdict = "ok" if c.ok else ("FAIL" if c.kind == "output" else ("below min SQNR" if c.min_sqnr is not None else "above tol"))
            tol = f"{c.tolerance:10.3e}" if c.min_sqnr is None else f"{'>=' + format(c.min_sqnr, '.1f') + 'dB':>10}"
            sqnr = f"{c.sqnr_db:8.1f}" if c.sqnr_db is not None and np.isfinite(c.sqnr_db) else f"{'inf':>8}"
            rows.append(
                f"  {c.kind:<6} {c.name:<14} {c.onnx_tensor[:28]:<28} {c.max_abs_error:11.3e} {c.max_abs_reference:10.3e} {tol} {sqnr}  {verdict}"
            )
        for name, agree in self.top1_agreement.items():
            rows.append(f"  top-1 agreement {name}: {100 * agree:.1f}% of {self.samples} input(s)")
        rows += [f"  {a.line()}" for a in self.accuracy]
        rows.append("  verdict: " + ("PASS" if self.ok else "FAIL"))
        return "\n".join(rows)

    def raise_if_failed(self) -> None:
        if not self.ok:
            bad = [c for c in self.checks if c.kind == "output" and not c.ok]
            worst = max(bad, key=lambda c: c.max_abs_error / max(c.tolerance, 1e-30))
            if worst.min_sqnr is not None:
                raise StretchError("verify-failed", f"output {worst.name}: SQNR {worst.sqnr_db:.1f} dB is below {worst.min_sqnr:.1f} dB")
            raise StretchError(
                "verify-failed",
                f"output {worst.name}: max abs error {worst.max_abs_error:.3e} exceeds tolerance {worst.tolerance:.3e}",
            )


def _with_intermediates(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model that also outputs every float intermediate tensor with a known shape."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    present = {o.name for o in m.graph.output}
    for vi in m.graph.value_info:
        if vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and vi.name not in present:
            m.graph.output.append(vi)
    return m


def _check_same_interface(model: onnx.ModelProto, manifest: dict, model_path: Path) -> None:  # type: ignore[type-arg]
    """Refuse a model whose inputs or outputs are not the bundle's (verifying against the wrong model)."""
    ins = sorted(name for name, _, _ in onnx_inputs(model))
    outs = sorted(o.name for o in model.graph.output)
    b_ins = sorted(i["name"] for i in manifest["inputs"])
    b_outs = sorted(o["name"] for o in manifest["outputs"])
    if (ins, outs) != (b_ins, b_outs):
        raise StretchError(
            "bad-input-data",
            f"the model's inputs {ins} and outputs {outs} are not the bundle's ({b_ins} and {b_outs}): is it the model the bundle was compiled from?",
            file=str(model_path),
        )


def seeded_feed(inputs: Iterable[tuple[str, Sequence[int], str]], seed: int) -> dict[str, np.ndarray]:
    """Uniform [0, 1) arrays for (name, shape, dtype) inputs, from `seed`."""
    rng = np.random.default_rng(seed)
    return {name: rng.random(shape).astype(dtype) for name, shape, dtype in inputs}


def seeded_inputs(manifest: dict, seed: int) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    return seeded_feed(((i["name"], i["shape"], i["dtype"]) for i in manifest["inputs"]), seed)


def verify_bundle(
    bundle: Path,
    model_path: Path,
    *,
    inputs: list[dict[str, np.ndarray]] | None = None,
    samples: int = 3,
    seed: int = 0,
    atol: float | None = None,
    rtol: float = 0.0,
    min_sqnr: float | None = None,
    labels: np.ndarray | None = None,
    labels_source: str = "",
) -> VerifyReport:
    """Run bundle and ONNX model on the same inputs and report the errors (see module docstring).

    `labels`: the class of every input (in `inputs` order; `labels_source` is the file, named in errors).
    """
    import onnxruntime as ort

    runtime = HostRuntime(bundle)
    manifest = runtime.manifest
    model = load_model(model_path)
    _check_same_interface(model, manifest, model_path)
    session = ort.InferenceSession(_with_intermediates(model).SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    feeds = inputs if inputs is not None else [seeded_inputs(manifest, seed + k) for k in range(samples)]
    out_err: dict[str, float] = {}
    out_ref: dict[str, float] = {}
    out_pow: dict[str, list[float]] = {}  # name -> [signal power, noise power]
    top1: dict[str, list[int]] = {}
    accuracy = Top1(labels, source=labels_source) if labels is not None else None
    sync_values: dict[str, list[np.ndarray]] = {s["name"]: [] for s in manifest["sync_points"]}
    onnx_values: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for feed in feeds:
        captured: dict[str, np.ndarray] = {}
        got = runtime.run(feed, capture=captured)
        for name, value in captured.items():
            sync_values[name].append(value)
        ref = dict(zip(names, session.run(None, feed)))
        for n in names:
            onnx_values[n].append(ref[n])
        if accuracy is not None:
            accuracy.add(ref, got)
        for o in manifest["outputs"]:
            err = float(np.max(np.abs(got[o["name"]].astype(np.float64) - ref[o["name"]])))
            out_err[o["name"]] = max(out_err.get(o["name"], 0.0), err)
            out_ref[o["name"]] = max(out_ref.get(o["name"], 0.0), float(np.max(np.abs(ref[o["name"]]))))
            acc = out_pow.setdefault(o["name"], [0.0, 0.0])
            acc[0] += float(np.sum(np.square(ref[o["name"]].astype(np.float64))))
            acc[1] += float(np.sum(np.square(got[o["name"]].astype(np.float64) - ref[o["name"]])))
            r = np.asarray(ref[o["name"]])
            if r.ndim == 2 and r.shape[0] == 1 and r.shape[1] > 1:
                top1.setdefault(o["name"], []).append(int(np.argmax(got[o["name"]]) == np.argmax(r)))
    quantized = any(p["processor"] == "dsp" for p in manifest["partitions"])
    if min_sqnr is None and quantized and atol is None:
        min_sqnr = DEFAULT_QUANTIZED_MIN_SQNR
    report = VerifyReport(samples=len(feeds), quantized=quantized)
    report.top1_agreement = {k: float(np.mean(v)) for k, v in top1.items()}
    report.accuracy = accuracy.results() if accuracy is not None else []
    for o in manifest["outputs"]:
        tol = (atol if atol is not None else DEFAULT_RELATIVE_ATOL * out_ref[o["name"]]) + rtol * out_ref[o["name"]]
        report.checks.append(
            Check("output", o["name"], o["name"], out_err[o["name"]], out_ref[o["name"]], tol, sqnr(*out_pow[o["name"]]), min_sqnr)
        )
    model_io = {i["sync"] for i in manifest["inputs"]} | {o["sync"] for o in manifest["outputs"]}
    for s in manifest["sync_points"]:
        if s["name"] in model_io:
            continue
        if not sync_values[s["name"]]:
            continue
        best = _best_match(sync_values[s["name"]], onnx_values)
        if best is None:
            continue
        name, err, ref_max, db = best
        tol = (atol if atol is not None else DEFAULT_RELATIVE_ATOL * ref_max) + rtol * ref_max
        report.checks.append(Check("sync", s["name"], name, err, ref_max, tol, db, min_sqnr))
    return report


def sqnr(signal_power: float, noise_power: float) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when the noise is zero)."""
    if noise_power <= 0.0:
        return float("inf")
    return float(10.0 * np.log10(max(signal_power, 1e-300) / noise_power))


def _best_match(values: list[np.ndarray], onnx_values: dict[str, list[np.ndarray]]) -> tuple[str, float, float, float] | None:
    best: tuple[str, float, float, float] | None = None
    first = values[0]
    for name, refs in onnx_values.items():
        r = refs[0]
        if r.size != first.size:
            continue
        if r.ndim == 4 and first.ndim == 4 and r.shape == (first.shape[0], first.shape[3], first.shape[1], first.shape[2]):
            candidates = [np.transpose(x, (0, 2, 3, 1)) for x in refs]
        elif r.shape == first.shape:
            candidates = refs
        else:
            continue
        err = max(float(np.max(np.abs(v.astype(np.float64) - c))) for v, c in zip(values, candidates))
        ref_max = max(float(np.max(np.abs(c))) for c in candidates)
        if best is None or err < best[1]:
            sig = sum(float(np.sum(np.square(c.astype(np.float64)))) for c in candidates)
            noise = sum(float(np.sum(np.square(v.astype(np.float64) - c))) for v, c in zip(values, candidates))
            best = (name, err, ref_max, sqnr(sig, noise))
    return best
