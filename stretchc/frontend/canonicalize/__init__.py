"""Canonicalization: small ONNX-level rewrites between validation and lowering.

`canonicalize(model, ctx, dump_dir=...)` runs `REWRITES` in order on the validated model. After every rewrite
that changed it, the model is checked again (onnx.checker) and its value types re-inferred: a rewrite that
leaves an invalid model is a bug in stretchc (internal error naming the rewrite). With
`--dump-dir`, the model is written as `onnx-00-input.onnx` and, after each rewrite that changed it,
`onnx-NN-after-<rewrite>.onnx` (NN = the rewrite's position, so names are stable across runs); each dump
is a plain ONNX model that `stretchc compile` accepts.

Order matters: functions are inlined first (their bodies hold CastLikes and Constants); compile-time
inputs and Constant nodes become initializers, then shape computations are folded into initializers, before
the opset conversion (the converter and the later rewrites read constant values and static shapes: split
sizes, reduction axes, Resize scales, Reshape targets); the rewrites that spell out or
replace single ops come last, on the model at the opset onnx2tf reads.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from stretchc.errors import StretchError
from stretchc.frontend.canonicalize.cast_like_to_cast import CastLikeToCast
from stretchc.frontend.canonicalize.constants_to_initializers import ConstantsToInitializers
from stretchc.frontend.canonicalize.convert_opset import ConvertOpset
from stretchc.frontend.canonicalize.expand_prelu import ExpandPrelu
from stretchc.frontend.canonicalize.explicit_parameters import ExplicitParameters
from stretchc.frontend.canonicalize.fold_const_inputs import FoldConstInputs
from stretchc.frontend.canonicalize.fold_shapes import FoldShapes
from stretchc.frontend.canonicalize.hard_sigmoid_to_relu6 import HardSigmoidToRelu6
from stretchc.frontend.canonicalize.inline_functions import InlineFunctions
from stretchc.frontend.canonicalize.resize_to_matmul import ResizeToMatmul
from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext
from stretchc.frontend.canonicalize.split_to_slices import SplitToSlices

REWRITES: tuple[Rewrite, ...] = (
    InlineFunctions(),
    FoldConstInputs(),
    ConstantsToInitializers(),
    FoldShapes(),
    ConvertOpset(),
    CastLikeToCast(),
    ExplicitParameters(),
    SplitToSlices(),
    ExpandPrelu(),
    HardSigmoidToRelu6(),
    ResizeToMatmul(),
)

__all__ = ["REWRITES", "Rewrite", "RewriteContext", "canonicalize", "dump_name"]


def dump_name(index: int, rewrite: Rewrite | None) -> str:
    """`onnx-00-input.onnx`, `onnx-NN-after-<rewrite>.onnx`."""
    return f"onnx-{index:02d}-{'input' if rewrite is None else 'after-' + rewrite.name}.onnx"


def _dump(dump_dir: Path | None, name: str, model: onnx.ModelProto) -> None:
    if dump_dir is not None:
        dump_dir.mkdir(parents=True, exist_ok=True)
        (dump_dir / name).write_bytes(model.SerializeToString(deterministic=True))


def _recheck(model: onnx.ModelProto, rewrite: Rewrite) -> None:
    """Check the rewritten model and refresh its inferred value types (a failure is stretchc's bug)."""
    if model.ir_version < 4:  # before IR 4 every initializer must also be listed as a graph input
        listed = {vi.name for vi in model.graph.input}
        model.graph.input.extend(
            onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in model.graph.initializer if t.name not in listed
        )
    try:
        onnx.checker.check_model(model)
        del model.graph.value_info[:]
        model.CopyFrom(onnx.shape_inference.infer_shapes(model, strict_mode=False))
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StretchError("internal", f"rewrite {rewrite.name} left an invalid model: {first}") from None


def canonicalize(
    model: onnx.ModelProto, ctx: RewriteContext, *, rewrites: tuple[Rewrite, ...] = REWRITES, dump_dir: Path | None = None
) -> onnx.ModelProto:
    """A canonical copy of `model` (the argument is not modified); see the module docstring."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    _dump(dump_dir, dump_name(0, None), out)
    for index, rewrite in enumerate(rewrites, start=1):
        if rewrite.run(out, ctx):
            _recheck(out, rewrite)
            _dump(dump_dir, dump_name(index, rewrite), out)
    return out
