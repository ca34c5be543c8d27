"""Compare a bundle with ONNX Runtime on seeded or given inputs: per model output and per sync point.

Outputs are compared by name. Each sync point is compared with the ONNX tensor it carries, which the
manifest names (`onnx_tensor`, from the names the lowering carries through onnx2tf:
`stretchc/frontend/provenance.py`), in the bundle's layout: the same shape, the channel-last permutation of
the ONNX shape (rank 3-5), or, when only the element counts agree, the same elements in order. A shape
that reads the same both ways ([1,8,8,8]) is compared both ways and the closer one kept.

Every check decides the verdict, each against its own tolerance: it passes when
`max|bundle - onnx| <= atol + rtol * max|onnx|`, with `atol` defaulting to 1e-4 x max|onnx| of that
tensor, but at least 1e-6 (`DEFAULT_ATOL_FLOOR`: what float32 math libraries differ by near zero); for a bundle with int8 partitions, or with `min_sqnr`, when its SQNR (dB, over all samples) is at
least `min_sqnr` (default 20 dB) for an output (and for each part of an output a Concat writes, checked as
`NAME[start:stop]@axis` beside the whole: one SQNR over a detector's boxes and scores measures the boxes alone;
stretchc/frontend/parts.py), and at least the smaller of `min_sqnr` and 20 dB for a sync
point: the bound is the user's accuracy goal for what the model computes, while an intermediate tensor
carries quantization noise that the rest of the network averages down (its SQNR is often a few dB below the
outputs'), so a sync point fails on its own only when it is no longer recognisably its tensor (a wrong
weight, partition or layout). An int8 sync point is dequantized with its scale and zero point (the
manifest's `quant`) before it is compared. A NaN or an infinity on either side (the bundle's or ONNX
Runtime's, even where both agree) fails its check as not comparable: no tolerance or SQNR says anything about
it, and agreeing NaNs are no evidence that the bundle computes the model (the check names the first one: its
side, position and input). A sync point whose ONNX tensor is unknown (the manifest names none, the model has no such
tensor, or its element count differs) cannot be checked: the report lists it as unmatched, with why, and
the verdict says how many were not checked. Classifier outputs ([1, K]) also report top-1 agreement, and
with `labels` (one class per input) top-1 accuracy of the float model and the bundle (stretchc/top1.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import onnx

from stretchc.top1 import OutputAccuracy, Top1
from stretchc.analyses import HeldOutInputs
from stretchc.console import Console, get_console
from stretchc.errors import StretchError
from stretchc.bundle.manifest import compiled_shapes
from stretchc.frontend.module import CHANNEL_LAST, onnx_inputs, unread_inputs
from stretchc.frontend.parts import concat_parts
from stretchc.frontend.validate import load_model
from stretchc.ir import output_parts
from stretchc.precision import DEFAULT_MIN_SQNR, QUANTIZED, dequantize_array, sync_point_bound
from stretchc.runtime.host import HostRuntime

DEFAULT_RELATIVE_ATOL = 1e-4
DEFAULT_SAMPLES = 3  # seeded inputs verify runs without --input: seeds 0, 1, 2 (`compile --verify` without held-out data too)
# The default atol never goes below this: float32 math libraries differ by ~1e-7 absolute near zero (ONNX Runtime's
# Sigmoid gives 1.5e-7 for an exact 2.2e-8 at a logit of -17.7 on PP-OCR's text detector), so on an output whose
# values are all tiny, 1e-4 x max|ref| alone would be tighter than the reference itself.
DEFAULT_ATOL_FLOOR = 1e-6
SEEDED_INT_HIGH = 8  # seeded integer inputs (other than 8-bit) are uniform in [0, 8): valid indices into small tables


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
    unmatched: str | None = None  # why the sync point could not be compared (then nothing else is set)
    nonfinite: str | None = None  # the first NaN or infinity either side held: the check fails, not comparable

    @property
    def checked(self) -> bool:
        return self.unmatched is None

    @property
    def ok(self) -> bool:
        """Compared, finite and within tolerance (an unmatched sync point is not ok: it was not compared)."""
        if not self.checked or self.nonfinite is not None:
            return False
        if self.min_sqnr is not None:
            return self.sqnr_db is not None and self.sqnr_db >= self.min_sqnr
        return self.max_abs_error <= self.tolerance

    def failure(self) -> str:
        what = f"output {self.name}" if self.kind == "output" else f"sync point {self.name} (ONNX tensor {self.onnx_tensor!r})"
        if self.nonfinite is not None:
            return f"{what}: not comparable: {self.nonfinite} (verify compares finite values only)"
        if self.min_sqnr is not None:
            return f"{what}: SQNR {self.sqnr_db:.1f} dB is below {self.min_sqnr:.1f} dB"
        return f"{what}: max abs error {self.max_abs_error:.3e} exceeds tolerance {self.tolerance:.3e}"


@dataclass
class VerifyReport:
    samples: int
    checks: list[Check] = field(default_factory=list)
    top1_agreement: dict[str, float] = field(default_factory=dict)  # classifier outputs: share of equal argmax
    quantized: bool = False  # the bundle has int8 partitions
    accuracy: list[OutputAccuracy] = field(default_factory=list)  # with labels: top-1 per classifier output

    @property
    def failed(self) -> list[Check]:
        """Compared checks outside tolerance, outputs first, then sync points in manifest (execution) order."""
        return [c for c in self.checks if c.checked and not c.ok]

    @property
    def unmatched(self) -> list[Check]:
        return [c for c in self.checks if not c.checked]

    @property
    def ok(self) -> bool:
        return not self.failed

    def verdict(self) -> str:
        text = "PASS" if self.ok else "FAIL"
        if self.unmatched:
            syncs = sum(c.kind == "sync" for c in self.checks)
            text += f" ({len(self.unmatched)} of {syncs} sync points not checked: {', '.join(c.name for c in self.unmatched)})"
        return text

    def table(self) -> str:
        rows = [f"verification against ONNX Runtime on {self.samples} input(s):"]
        rows.append(f"  {'':<6} {'name':<14} {'onnx tensor':<28} {'max|err|':>11} {'max|ref|':>10} {'tol':>10} {'SQNR dB':>8}  result")
        for c in self.checks:
            if not c.checked or c.nonfinite is not None:
                why = f"not checked: {c.unmatched}" if not c.checked else f"FAIL, not comparable: {c.nonfinite}"
                rows.append(f"  {c.kind:<6} {c.name:<14} {c.onnx_tensor[-28:]:<28} {'-':>11} {'-':>10} {'-':>10} {'-':>8}  {why}")
                continue
            verdict = "ok" if c.ok else ("below min SQNR" if c.min_sqnr is not None else "FAIL")
            tol = f"{c.tolerance:10.3e}" if c.min_sqnr is None else f"{'>=' + format(c.min_sqnr, '.1f') + 'dB':>10}"
            sqnr = f"{c.sqnr_db:8.1f}" if c.sqnr_db is not None and np.isfinite(c.sqnr_db) else f"{'inf' if c.sqnr_db == np.inf else '-inf':>8}"
            rows.append(
                f"  {c.kind:<6} {c.name:<14} {c.onnx_tensor[-28:]:<28} {c.max_abs_error:11.3e} {c.max_abs_reference:10.3e} {tol} {sqnr}  {verdict}"
            )
        for name, agree in self.top1_agreement.items():
            rows.append(f"  top-1 agreement {name}: {100 * agree:.1f}% of {self.samples} input(s)")
        rows += [f"  {a.line()}" for a in self.accuracy]
        rows.append("  verdict: " + self.verdict())
        return "\n".join(rows)

    def present(self, console: Console) -> None:
        """Print the table; warn (`verify-unchecked`) when sync points could not be compared."""
        console.out(self.table())
        if self.unmatched:
            names = ", ".join(f"{c.name} ({c.unmatched})" for c in self.unmatched)
            console.warn("verify-unchecked", f"{len(self.unmatched)} sync point(s) could not be compared with the model: {names}")

    def raise_if_failed(self) -> None:
        """Raise verify-failed naming the first failing sync point in execution order (where the bundle
        first leaves the model: the place to look), else the first failing output."""
        bad = self.failed
        if bad:
            first = next((c for c in bad if c.kind == "sync"), bad[0])
            more = f" ({len(bad)} checks fail)" if len(bad) > 1 else ""
            raise StretchError("verify-failed", first.failure() + more)


def abs_error(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|got - ref| elementwise (float64): 0 where both hold the same NaN or infinity, inf where only one is not finite."""
    g = np.asarray(got, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        err = np.abs(g - r)
    err[(g == r) | (np.isnan(g) & np.isnan(r))] = 0.0
    err[np.isnan(err)] = np.inf
    return err


def first_nonfinite(arr: np.ndarray, side: str, sample: int) -> str | None:
    """Where `arr` (`side`'s value on input number `sample`) first holds a NaN or an infinity, or None."""
    a = np.asarray(arr)
    if not np.issubdtype(a.dtype, np.inexact):
        return None
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    pos = np.unravel_index(int(np.argmax(bad)), a.shape)
    return f"{side} gives {a[pos]} at {[int(i) for i in pos]} on input {sample}"


@dataclass
class ErrorStats:
    """A check's numbers accumulated over samples: max|err| (NaN-aware, `abs_error`), max|ref|, signal and noise
    power, and the first NaN or infinity either side held (`first_nonfinite`)."""

    max_err: float = 0.0
    max_ref: float = 0.0
    signal: float = 0.0
    noise: float = 0.0
    samples: int = 0
    nonfinite: str | None = None

    def add(self, got: np.ndarray, ref: np.ndarray) -> None:
        self.samples += 1
        if self.nonfinite is None:
            self.nonfinite = first_nonfinite(got, "the bundle", self.samples) or first_nonfinite(ref, "ONNX Runtime", self.samples)
        err = abs_error(got, ref)
        r = np.asarray(ref, dtype=np.float64)
        finite = r[np.isfinite(r)]
        self.max_err = max(self.max_err, float(np.max(err, initial=0.0)))
        self.max_ref = max(self.max_ref, float(np.max(np.abs(finite), initial=0.0)))
        self.signal += float(np.sum(np.square(finite)))
        self.noise += float(np.sum(np.square(err)))

    def check(self, kind: str, name: str, onnx_tensor: str, atol: float | None, rtol: float, min_sqnr: float | None) -> Check:
        tol = (atol if atol is not None else max(DEFAULT_RELATIVE_ATOL * self.max_ref, DEFAULT_ATOL_FLOOR)) + rtol * self.max_ref
        return Check(kind, name, onnx_tensor, self.max_err, self.max_ref, tol, sqnr(self.signal, self.noise), min_sqnr, nonfinite=self.nonfinite)


def sqnr(signal_power: float, noise_power: float) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when the noise is zero, -inf when it is infinite)."""
    if noise_power <= 0.0:
        return float("inf")
    if not np.isfinite(noise_power):
        return float("-inf")
    return float(10.0 * np.log10(max(signal_power, 1e-300) / noise_power))


def layouts(bundle_shape: tuple[int, ...], onnx_shape: tuple[int, ...]) -> list[tuple[int, ...] | None]:
    """The ways an ONNX tensor may lie in a bundle tensor: the permutation to apply to it, or None (its
    elements in order, reshaped to the bundle's shape); empty when the element counts differ."""
    found: list[tuple[int, ...] | None] = []
    perm = CHANNEL_LAST.get(len(onnx_shape))
    if perm is not None and tuple(onnx_shape[p] for p in perm) == bundle_shape:
        found.append(perm)
    if bundle_shape == onnx_shape or (not found and int(np.prod(bundle_shape)) == int(np.prod(onnx_shape))):
        found.append(None)
    return found


def _with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of the model that also outputs the named intermediate tensors."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    present = {o.name for o in m.graph.output}
    infos = {vi.name: vi for vi in m.graph.value_info}
    for name in names:
        if name not in present:
            m.graph.output.append(infos[name] if name in infos else onnx.ValueInfoProto(name=name))
            present.add(name)
    return m


def _fixed_inputs(model: onnx.ModelProto, const_inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ONNX Runtime's feeds for the model inputs the bundle does not take: the compile-time values
    (--const-input), and zeros for inputs the model never reads (the compiler left them out)."""
    fixed = dict(const_inputs)
    shapes = {name: (shape, dtype) for name, shape, dtype in onnx_inputs(model)}
    for name in unread_inputs(model):
        fixed.setdefault(name, np.zeros(shapes[name][0], shapes[name][1]))
    return fixed


def _check_same_interface(model: onnx.ModelProto, manifest: dict[str, Any], model_path: Path, fixed: dict[str, np.ndarray]) -> None:
    """Refuse a model whose inputs or outputs are not the bundle's (verifying against the wrong model)."""
    ins = sorted(name for name, _, _ in onnx_inputs(model) if name not in fixed)
    outs = sorted(o.name for o in model.graph.output)
    b_ins = sorted(i["name"] for i in manifest["inputs"])
    b_outs = sorted(o["name"] for o in manifest["outputs"])
    if (ins, outs) != (b_ins, b_outs):
        raise StretchError(
            "bad-input-data",
            f"the model's inputs {ins} and outputs {outs} are not the bundle's ({b_ins} and {b_outs}): is it the model the bundle was compiled from?",
            file=str(model_path),
        )


def random_tensor(rng: np.random.Generator, shape: list[int], dtype: str) -> np.ndarray:
    """A seeded random input: floats uniform in [0, 1), bools half True, 8-bit integers over their whole
    range, other integers uniform in [0, SEEDED_INT_HIGH)."""
    kind = np.dtype(dtype)
    if kind == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(kind, np.integer):
        info = np.iinfo(kind)
        lo, hi = (int(info.min), int(info.max) + 1) if kind.itemsize == 1 else (0, SEEDED_INT_HIGH)
        return rng.integers(lo, hi, size=shape).astype(kind)
    return rng.random(shape).astype(kind)


def seeded_feed(inputs: Iterable[tuple[str, Sequence[int], str]], seed: int) -> dict[str, np.ndarray]:
    """One seeded random array (see `random_tensor`) for each (name, shape, dtype) input, from `seed`."""
    rng = np.random.default_rng(seed)
    return {name: random_tensor(rng, list(shape), dtype) for name, shape, dtype in inputs}


def seeded_inputs(manifest: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """`seeded_feed` for a bundle's model inputs."""
    return seeded_feed(((i["name"], i["shape"], i["dtype"]) for i in manifest["inputs"]), seed)


def verify_bundle(
    bundle: Path | HostRuntime,
    model_path: Path,
    *,
    inputs: list[dict[str, np.ndarray]] | None = None,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    atol: float | None = None,
    rtol: float = 0.0,
    min_sqnr: float | None = None,
    labels: np.ndarray | None = None,
    labels_source: str = "",
    const_inputs: dict[str, np.ndarray] | None = None,
) -> VerifyReport:
    """Run bundle and ONNX model on the same inputs and report the errors (see module docstring).

    `labels`: the class of every input (in `inputs` order; `labels_source` is the file, named in errors).
    `bundle` may be a `HostRuntime` the caller loaded already (the bundle is then not read again).
    """
    import onnxruntime as ort  # lazy: onnxruntime's native library, loaded only to verify

    runtime = bundle if isinstance(bundle, HostRuntime) else HostRuntime(bundle)
    manifest = runtime.manifest
    model = load_model(model_path, const_inputs=const_inputs or {}, compiled_shapes=compiled_shapes(manifest))
    fixed = _fixed_inputs(model, const_inputs or {})
    _check_same_interface(model, manifest, model_path, fixed)
    model_io = {i["sync"] for i in manifest["inputs"]} | {o["sync"] for o in manifest["outputs"]}
    syncs = [s for s in manifest["sync_points"] if s["name"] not in model_io]
    tensors = {o for n in model.graph.node for o in n.output if o} | {i.name for i in model.graph.input}
    unmatched: dict[str, str] = {}
    for s in syncs:
        if "onnx_tensor" not in s:
            unmatched[s["name"]] = "the manifest names no ONNX tensor for it"
        elif s["onnx_tensor"] not in tensors:
            unmatched[s["name"]] = "the model has no tensor of that name"
    named = sorted({s["onnx_tensor"] for s in syncs if s["name"] not in unmatched})
    session = ort.InferenceSession(_with_outputs(model, named).SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    feeds = inputs if inputs is not None else [seeded_inputs(manifest, seed + k) for k in range(samples)]
    outputs = {o["name"]: ErrorStats() for o in manifest["outputs"]}
    # an output of parts (stretchc/frontend/parts.py): each part checked by itself too
    parted = {name: output_parts(name, axis, sizes) for name, (axis, sizes) in concat_parts(model).items() if name in outputs}
    part_stats = {(name, label): ErrorStats() for name, parts in parted.items() for label, _ in parts}
    # per sync point: one accumulator per layout the ONNX tensor may have in the bundle
    sync_stats: dict[str, list[tuple[tuple[int, ...] | None, ErrorStats]]] = {}
    top1: dict[str, list[int]] = {}
    accuracy = Top1(labels, source=labels_source) if labels is not None else None
    for feed in feeds:
        captured: dict[str, np.ndarray] = {}
        got = runtime.run(feed, capture=captured)
        ref = dict(zip(names, session.run(None, {**fixed, **feed})))
        if accuracy is not None:
            accuracy.add(ref, got)
        for o in manifest["outputs"]:
            r = np.asarray(ref[o["name"]])
            outputs[o["name"]].add(got[o["name"]], r)
            for label, cut in parted.get(o["name"], []):
                part_stats[(o["name"], label)].add(np.asarray(got[o["name"]])[cut], r[cut])
            finite = bool(np.isfinite(r).all() and np.isfinite(got[o["name"]]).all())  # NaNs have no argmax to agree on
            if r.ndim == 2 and r.shape[0] == 1 and r.shape[1] > 1 and finite:
                top1.setdefault(o["name"], []).append(int(np.argmax(got[o["name"]]) == np.argmax(r)))
        for s in syncs:
            if s["name"] in unmatched:
                continue
            value = np.asarray(captured[s["name"]])
            if s["quant"] is not None:
                value = dequantize_array(value, s["quant"]["scale"][0], s["quant"]["zero_point"][0])
            r = np.asarray(ref[s["onnx_tensor"]])
            if s["name"] not in sync_stats:
                options = layouts(tuple(value.shape), tuple(r.shape))
                if not options:
                    unmatched[s["name"]] = f"its shape {list(value.shape)} cannot hold the ONNX tensor's {list(r.shape)}"
                    continue
                sync_stats[s["name"]] = [(perm, ErrorStats()) for perm in options]
            for perm, stats in sync_stats[s["name"]]:
                stats.add(value, np.transpose(r, perm) if perm is not None else r.reshape(value.shape))
    quantized = any(p["precision"] in QUANTIZED for p in manifest["partitions"])
    if min_sqnr is None and quantized and atol is None:
        min_sqnr = DEFAULT_MIN_SQNR  # a bundle with int8 partitions, unless --atol is given
    report = VerifyReport(samples=len(feeds), quantized=quantized)
    report.top1_agreement = {k: float(np.mean(v)) for k, v in top1.items()}
    report.accuracy = accuracy.results() if accuracy is not None else []
    for name, stats in outputs.items():
        report.checks.append(stats.check("output", name, name, atol, rtol, min_sqnr))
        for label, _ in parted.get(name, []):
            report.checks.append(part_stats[(name, label)].check("output", label, name, atol, rtol, min_sqnr))
    for s in syncs:
        if s["name"] in unmatched:
            report.checks.append(Check("sync", s["name"], s.get("onnx_tensor", ""), 0.0, 0.0, 0.0, unmatched=unmatched[s["name"]]))
            continue
        closest = min(sync_stats[s["name"]], key=lambda layout: layout[1].max_err)[1]
        sync_min_sqnr = None if min_sqnr is None else sync_point_bound(min_sqnr)
        report.checks.append(closest.check("sync", s["name"], s["onnx_tensor"], atol, rtol, sync_min_sqnr))
    return report


def verify_staged(
    staging: Path, model_path: Path, analyses: Any, *, atol: float | None = None, rtol: float = 0.0, const_inputs: dict[str, np.ndarray] | None = None
) -> VerifyReport:
    """`compile --verify`'s check of a staged bundle before it is installed: on the calibration samples the compile
    held out (what the accuracy guard measured on: inputs like the ones the bundle will see) where there are any,
    else on seeded random inputs. `analyses`: the compile's (`stretchc.analyses.Analyses`)."""
    held = analyses.get(HeldOutInputs)
    inputs = held.feeds if held is not None and held.feeds else None
    if inputs is not None:
        get_console().note("verify", f"--verify: measured on {len(inputs)} calibration sample(s) held out of calibration")
    return verify_bundle(staging, model_path, inputs=inputs, atol=atol, rtol=rtol, const_inputs=const_inputs)
