"""Check the lowering against ONNX Runtime once, before any pass runs.

onnx2tf sometimes converts a model without complaint into one that computes something else (a Concat on
the wrong axis after its layout change, integer division done in floating point). `check_lowering` runs
the canonical ONNX model (ONNX Runtime) and the lowered float model (LiteRT) on one seeded input and:
- picks, for every output, the layout under which the two agree (a shape like [1,16,16,16] reads the same
  channel-first and channel-last);
- refuses the model (`unsupported-op`, naming the output and the node that computes it) when no layout
  agrees within `RTOL * max|reference| + ATOL`.
When ONNX Runtime itself cannot run the model, the check is skipped with a note (`lowering-unchecked`).

Seeded input: floats uniform in [0, 1), integers uniform in [1, 8) (never a zero divisor), booleans True;
when ONNX Runtime refuses those integers (an index out of range), integers 1.
"""

from __future__ import annotations

import numpy as np
import onnx

from stretchc.console import get_console
from stretchc.errors import StretchError, first_line
from stretchc.frontend.validate import node_label
from stretchc.ir import TensorInfo
from stretchc.litert import load_interpreter

Layout = tuple[str, tuple[int, ...] | None]
RTOL = 1e-3
ATOL = 1e-5


def seeded_input(info: TensorInfo, rng: np.random.Generator, *, small_integers: bool) -> np.ndarray:
    """The check's input for one model input, in the ONNX layout."""
    dtype = np.dtype(info.dtype)
    if dtype.kind == "f":
        return rng.random(info.shape).astype(dtype)
    if dtype.kind in "iu" and small_integers:
        return rng.integers(1, 8, info.shape).astype(dtype)
    return np.ones(info.shape, dtype)


def _error(got: np.ndarray, ref: np.ndarray) -> float:
    """max |got - ref| over the elements, NaN where both are NaN counting as equal, NaN vs a number as inf."""
    g, r = got.astype(np.float64), ref.astype(np.float64)
    both_nan = np.isnan(g) & np.isnan(r)
    diff = np.where(both_nan, 0.0, np.abs(g - r))
    return float(np.max(np.nan_to_num(diff, nan=np.inf), initial=0.0))


def _from_bundle(arr: np.ndarray, layout: Layout, shape: tuple[int, ...]) -> np.ndarray:
    name, perm = layout
    return np.transpose(arr, np.argsort(perm)) if name == "NCHW" and perm else arr.reshape(shape)


def _reference(model: onnx.ModelProto, inputs: list[TensorInfo], file: str) -> tuple[dict[str, np.ndarray], list[np.ndarray]] | None:
    """The seeded feeds and ONNX Runtime's outputs for them, or None (with a note) when it cannot run the model."""
    import onnxruntime as ort  # lazy: onnxruntime's native library, loaded only to check a lowering

    options = ort.SessionOptions()
    options.log_severity_level = 3  # its warnings would reach the user's terminal
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime's own errors (NOT_IMPLEMENTED, INVALID_GRAPH, ...): nothing to compare with
        get_console().note("lowering-unchecked", f"ONNX Runtime cannot load the model to check the lowering ({first_line(str(exc))})", file=file)
        return None
    for small_integers in (True, False):
        rng = np.random.default_rng(0)
        feeds = {i.name: seeded_input(i, rng, small_integers=small_integers) for i in inputs}
        try:
            return feeds, list(session.run(None, feeds))
        except Exception as exc:  # e.g. an integer input used as an index, out of range
            failure = first_line(str(exc))
    get_console().note("lowering-unchecked", f"ONNX Runtime cannot run the model to check the lowering ({failure})", file=file)
    return None


def _lowered(tflite: bytes, feeds: list[np.ndarray | None], file: str) -> list[np.ndarray]:
    """The lowered model's outputs for inputs given in its own order and layout (None: zeros)."""
    try:
        it = load_interpreter(model_content=tflite)
        for detail, arr in zip(it.get_input_details(), feeds):
            value = np.zeros(detail["shape"], detail["dtype"]) if arr is None else arr.astype(detail["dtype"]).reshape(detail["shape"])
            it.set_tensor(detail["index"], value)
        it.invoke()
        return [it.get_tensor(d["index"]) for d in it.get_output_details()]
    except (ValueError, RuntimeError) as exc:
        raise StretchError("unsupported-op", f"the lowered model cannot run in TFLite: {first_line(str(exc))}", file=file) from None


def check_lowering(
    model: onnx.ModelProto,
    tflite: bytes,
    inputs: list[TensorInfo],
    lowered_inputs: list[str | None],
    outputs: list[tuple[str, tuple[int, ...]]],
    options: list[list[Layout]],
    *,
    file: str,
) -> list[Layout]:
    """The layout of every output (see the module docstring); raises StretchError when the lowering is wrong.

    `lowered_inputs` names, for every input of the lowered model in its order, the ONNX input it carries
    (None for one the bundle leaves out, which gets zeros); `outputs` are the ONNX outputs (name, shape)
    and `options` their candidate layouts, most likely first.
    """
    producers = {o: n for n in model.graph.node for o in n.output}

    def refuse(name: str, why: str) -> StretchError:
        node = producers.get(name)
        where = f" (computed by op {node.op_type} of node {node_label(node)!r})" if node is not None else ""
        return StretchError("unsupported-op", f"onnx2tf lowers output {name!r}{where} wrongly: {why}", file=file, node=node_label(node) if node else None)

    for (name, shape), opts in zip(outputs, options):
        if not opts:
            raise refuse(name, f"its lowered shape does not match the ONNX shape {list(shape)}")
    checked = _reference(model, inputs, file)
    if checked is None:
        return [opts[0] for opts in options]
    feeds, reference = checked
    infos = {i.name: i for i in inputs}
    ordered: list[np.ndarray | None] = []
    for name in lowered_inputs:
        info = infos.get(name) if name is not None else None
        if info is None:
            ordered.append(None)  # an input the bundle leaves out: nothing reads it
        else:
            ordered.append(np.transpose(feeds[info.name], info.perm) if info.layout == "NCHW" and info.perm else feeds[info.name])
    got = _lowered(tflite, ordered, file)
    settled = []
    for (name, shape), opts, g, ref in zip(outputs, options, got, reference):
        errors: list[tuple[float, Layout]] = [(_error(_from_bundle(g, o, shape), ref), o) for o in opts]
        err, best = min(errors, key=lambda e: e[0])
        tol = RTOL * float(np.max(np.abs(np.nan_to_num(ref.astype(np.float64))), initial=0.0)) + ATOL
        if not err <= tol:
            raise refuse(name, f"it differs from ONNX Runtime by {err:.3g} (tolerance {tol:.3g}) on a seeded input")
        settled.append(best)
    return settled
