"""One clean line for a failure of the lowering: onnx2tf giving up, or TensorFlow's TFLite converter refusing.

Both become `unsupported-op` errors that name the ONNX op and its node whenever they can be known:
- onnx2tf converts node by node; when a node's converter raises, the node is the `graph_node` argument of
  the converter frame on the traceback (an onnx_graphsurgeon node), matched to the model by its outputs
  (named by the provenance tokens the lowering gave them, `stretchc/frontend/provenance.py`);
- TensorFlow's converter names the TensorFlow op it has no TFLite kernel for; `TF_OPS` says which ONNX
  ops onnx2tf turns into it, and the node is named when the model has exactly one such node.
Messages carry no terminal colour codes and no multi-line dumps: the most specific line of the reason.
"""

from __future__ import annotations

import re
from types import TracebackType
from typing import Any

import onnx

from stretchc.errors import StretchError, first_line
from stretchc.frontend.provenance import TOKEN_PREFIX, onnx_names
from stretchc.frontend.validate import node_label

# Lines that frame a reason without being one (Keras' and onnx2tf's wrappers around the real message).
_FRAMING = (
    "Exception encountered when calling layer",
    "Call arguments received",
    "Traceback (most recent call last)",
    "The trace log is below",
    "Read this and deal with it",
)
# TensorFlow ops onnx2tf produces that TFLite has no built-in kernel for, and the ONNX ops they come from.
TF_OPS: dict[str, tuple[str, ...]] = {
    "ScaleAndTranslate": ("Resize",),
    "ResizeBicubic": ("Resize",),
    "AddV2": ("Add", "Sum"),
    "Sub": ("Sub",),
    "Mul": ("Mul",),
    "RealDiv": ("Div",),
    "FloorDiv": ("Div",),
    "Minimum": ("Min", "Clip"),
    "Maximum": ("Max", "Clip"),
    "PadV2": ("Pad",),
    "MirrorPad": ("Pad",),
    "SplitV": ("Split",),
    "Less": ("Less", "Clip"),
}


def _reason(text: str) -> str:
    """The most specific line of a third-party message (framing lines skipped)."""
    lines = [first_line(ln) for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_FRAMING)]
    return (useful or lines or ["no message"])[0]


def _frames(tb: TracebackType | None) -> list[Any]:
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def _original_name(name: str, names: list[str]) -> str:
    """The model's name for a tensor onnx2tf saw as a provenance token (`stretchc.v<k>`), else `name`."""
    index = name[len(TOKEN_PREFIX) :] if name.startswith(TOKEN_PREFIX) else ""
    return names[int(index)] if index.isdigit() and int(index) < len(names) else name


def _failing_node(exc: BaseException, model: onnx.ModelProto) -> tuple[str, str] | None:
    """(op, node label) of the node whose onnx2tf converter raised `exc`, when the traceback shows it."""
    names = onnx_names(model)
    for frame in reversed(_frames(exc.__traceback__)):
        kwargs = frame.f_locals.get("kwargs")
        gs_node = frame.f_locals.get("graph_node") or (kwargs.get("graph_node") if isinstance(kwargs, dict) else None)
        if gs_node is None or not hasattr(gs_node, "op"):
            continue
        outputs = {_original_name(str(getattr(o, "name", "")), names) for o in getattr(gs_node, "outputs", [])}
        node = next((n for n in model.graph.node if outputs & set(n.output)), None)
        return str(gs_node.op), node_label(node) if node is not None else str(gs_node.name)
    return None


def onnx2tf_error(exc: BaseException, printed: str, model: onnx.ModelProto, *, file: str) -> StretchError:
    """The error for onnx2tf giving up with `exc` (`printed`: what onnx2tf printed before)."""
    if isinstance(exc, SystemExit):  # onnx2tf printed its reason, then called sys.exit(1)
        errors = [ln for ln in printed.splitlines() if "ERROR" in ln]
        reason = _reason(re.sub(r"^.*?ERROR:\s*", "", first_line(errors[-1], 1000))) if errors else "onnx2tf stopped"
    else:
        reason = f"{type(exc).__name__}: {_reason(str(exc))}"
    found = _failing_node(exc, model)
    if found is None:
        return StretchError("unsupported-op", f"onnx2tf cannot lower the model: {reason}", file=file)
    op, label = found
    return StretchError("unsupported-op", f"onnx2tf cannot lower op {op} of node {label!r}: {reason}", file=file, node=label)


def converter_error(exc: BaseException, model: onnx.ModelProto, *, file: str) -> StretchError:
    """The error for TensorFlow's TFLite converter refusing the model onnx2tf built."""
    text = str(exc)
    details = re.findall(r"^\s*tf\.(\w+)\(([^)]*)\)", text, flags=re.MULTILINE)
    named = re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)
    tf_op = details[0][0] if details else (named[0] if named else None)
    if tf_op is None:
        return StretchError("unsupported-op", f"TensorFlow's TFLite converter cannot convert the lowered model: {_reason(text)}", file=file)
    types = sorted(set(re.findall(r"tensor<[^>]*?x?([a-z]+\d+)>", details[0][1]))) if details else []
    on = f" on {'/'.join(types)} tensors" if types else ""
    candidates = [n for n in model.graph.node if n.op_type in TF_OPS.get(tf_op, ())]
    origin = f" (from op {candidates[0].op_type} of node {node_label(candidates[0])!r})" if len(candidates) == 1 else ""
    return StretchError(
        "unsupported-op",
        f"onnx2tf lowers the model to TensorFlow op {tf_op}{on}{origin}, which TFLite has no built-in kernel for",
        file=file,
        node=node_label(candidates[0]) if len(candidates) == 1 else None,
    )
