"""Compare a bundle with ONNX Runtime on seeded or given inputs: per model output and per sync point.

Outputs are compared by name. A sync point carries a lowered tensor whose ONNX name the lowering does not
keep, so each sync point is compared with the ONNX intermediate tensor of the same size (after the layout
permutation) that it matches best; the report names that tensor. A check passes when
`max|bundle - onnx| <= atol + rtol * max|onnx|`, with `atol` defaulting to 1e-4 x max|onnx output|.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from stretchc.errors import StretchError
from stretchc.frontend.validate import load_model
from stretchc.runtime.host import HostRuntime

DEFAULT_RELATIVE_ATOL = 1e-4


@dataclass
class Check:
    kind: str  # "output" | "sync"
    name: str
    onnx_tensor: str
    max_abs_error: float
    max_abs_reference: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_error <= self.tolerance


@dataclass
class VerifyReport:
    samples: int
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks if c.kind == "output")

    def table(self) -> str:
        rows = [f"verification against ONNX Runtime on {self.samples} input(s):"]
        rows.append(f"  {'':<6} {'name':<14} {'onnx tensor':<28} {'max|err|':>11} {'max|ref|':>10} {'tol':>10}  result")
        for c in self.checks:
            verdict = "ok" if c.ok else ("FAIL" if c.kind == "output" else "above tol")
            rows.append(
                f"  {c.kind:<6} {c.name:<14} {c.onnx_tensor[:28]:<28} {c.max_abs_error:11.3e} {c.max_abs_reference:10.3e} {c.tolerance:10.3e}  {verdict}"
            )
        rows.append("  verdict: " + ("PASS" if self.ok else "FAIL"))
        return "\n".join(rows)

    def raise_if_failed(self) -> None:
        if not self.ok:
            bad = [c for c in self.checks if c.kind == "output" and not c.ok]
            worst = max(bad, key=lambda c: c.max_abs_error / max(c.tolerance, 1e-30))
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


def seeded_inputs(manifest: dict, seed: int) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    return {i["name"]: rng.random(i["shape"]).astype(i["dtype"]) for i in manifest["inputs"]}


def verify_bundle(
    bundle: Path,
    model_path: Path,
    *,
    inputs: list[dict[str, np.ndarray]] | None = None,
    samples: int = 3,
    seed: int = 0,
    atol: float | None = None,
    rtol: float = 0.0,
) -> VerifyReport:
    """Run bundle and ONNX model on the same inputs and report the errors (see module docstring)."""
    import onnxruntime as ort

    runtime = HostRuntime(bundle)
    manifest = runtime.manifest
    model = load_model(model_path)
    session = ort.InferenceSession(_with_intermediates(model).SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    feeds = inputs if inputs is not None else [seeded_inputs(manifest, seed + k) for k in range(samples)]
    out_err: dict[str, float] = {}
    out_ref: dict[str, float] = {}
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
        for o in manifest["outputs"]:
            err = float(np.max(np.abs(got[o["name"]].astype(np.float64) - ref[o["name"]])))
            out_err[o["name"]] = max(out_err.get(o["name"], 0.0), err)
            out_ref[o["name"]] = max(out_ref.get(o["name"], 0.0), float(np.max(np.abs(ref[o["name"]]))))
    report = VerifyReport(samples=len(feeds))
    for o in manifest["outputs"]:
        tol = (atol if atol is not None else DEFAULT_RELATIVE_ATOL * out_ref[o["name"]]) + rtol * out_ref[o["name"]]
        report.checks.append(Check("output", o["name"], o["name"], out_err[o["name"]], out_ref[o["name"]], tol))
    model_io = {i["sync"] for i in manifest["inputs"]} | {o["sync"] for o in manifest["outputs"]}
    for s in manifest["sync_points"]:
        if s["name"] in model_io:
            continue
        if not sync_values[s["name"]]:
            continue
        best = _best_match(sync_values[s["name"]], onnx_values)
        if best is None:
            continue
        name, err, ref_max = best
        tol = (atol if atol is not None else DEFAULT_RELATIVE_ATOL * ref_max) + rtol * ref_max
        report.checks.append(Check("sync", s["name"], name, err, ref_max, tol))
    return report


def _best_match(values: list[np.ndarray], onnx_values: dict[str, list[np.ndarray]]) -> tuple[str, float, float] | None:
    best: tuple[str, float, float] | None = None
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
            best = (name, err, ref_max)
    return best
