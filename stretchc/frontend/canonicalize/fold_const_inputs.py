"""fold-const-inputs: model inputs whose values are given at compile time become initializers.

`stretchc compile --const-input NAME=FILE.npy`: node tests, and exporters that keep parameters as inputs,
feed a Reshape's shape, a Resize's scales or a Clip's bounds through graph inputs. The lowering needs those
values when it converts the model, so the user gives them once, at compile time; the input becomes an
initializer of the same name (the tensor keeps its name) and the bundle no longer takes it. The array must
have the input's element type and agree with every static dimension it declares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from stretchc.errors import StretchError
from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext


def _check_value(vi: onnx.ValueInfoProto, value: np.ndarray, file: str) -> None:
    tt = vi.type.tensor_type
    expected = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
    if value.dtype != expected:
        raise StretchError("bad-input-data", f"--const-input {vi.name}: dtype {value.dtype}, but the input is {expected}", file=file)
    if tt.HasField("shape"):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if len(dims) != value.ndim or any(d is not None and d != s for d, s in zip(dims, value.shape)):
            shown = [d if d is not None else "?" for d in dims]
            raise StretchError(
                "bad-input-data", f"--const-input {vi.name}: shape {list(value.shape)}, but the input has shape {shown}", file=file
            )


@dataclass(frozen=True)
class FoldConstInputs(Rewrite):
    """Turns the inputs given with --const-input into initializers."""

    name = "fold-const-inputs"
    summary = "inputs given at compile time (--const-input) become initializers of the same name"

    def run(self, model: onnx.ModelProto, ctx: RewriteContext) -> bool:
        if not ctx.const_inputs:
            return False
        g = model.graph
        inits = {t.name for t in g.initializer}
        inputs = {vi.name: vi for vi in g.input if vi.name not in inits}
        for name in sorted(ctx.const_inputs):
            if name not in inputs:
                raise StretchError(
                    "usage", f"--const-input names {name!r}, but the model's inputs are {', '.join(sorted(inputs)) or 'none'}", file=ctx.file
                )
            _check_value(inputs[name], ctx.const_inputs[name], ctx.const_input_files.get(name, ctx.file))
        for name in sorted(ctx.const_inputs):
            g.initializer.append(numpy_helper.from_array(ctx.const_inputs[name], name))
        kept = [vi for vi in g.input if vi.name not in ctx.const_inputs]
        del g.input[:]
        g.input.extend(kept)
        return True
