"""Turn the lowered TFLite flatbuffer into a Module whose inputs and outputs carry the ONNX names and layouts.

onnx2tf keeps input and output order and turns rank-3/4/5 channel-first tensors channel-last. We match
each ONNX input and output to its TFLite tensor by position, check the sizes agree, and record the
permutation (ONNX -> bundle) that the runtimes apply at the model boundary.
"""

from __future__ import annotations

import re

import numpy as np
import onnx

from stretchc.errors import StretchError
from stretchc.ir import Module, TensorInfo, Value
from stretchc.tflite_io import TFLiteImportError, import_model

_ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.BOOL: "bool",
}
_CHANNEL_LAST = {3: (0, 2, 1), 4: (0, 2, 3, 1), 5: (0, 2, 3, 4, 1)}


def _onnx_io(vi: onnx.ValueInfoProto) -> tuple[str, tuple[int, ...], str]:
    tt = vi.type.tensor_type
    shape = tuple(int(d.dim_value) if d.dim_value > 0 else 1 for d in tt.shape.dim)
    return vi.name, shape, _ONNX_DTYPES.get(tt.elem_type, "float32")


def _match(onnx_shape: tuple[int, ...], value: Value) -> tuple[str, tuple[int, ...] | None]:
    if tuple(value.shape) == onnx_shape:
        return "as-is", None
    perm = _CHANNEL_LAST.get(len(onnx_shape))
    if perm is not None and tuple(onnx_shape[p] for p in perm) == tuple(value.shape):
        return "NCHW", perm
    if int(np.prod(onnx_shape)) == int(np.prod(value.shape)) and len(onnx_shape) != len(value.shape):
        return "reshape", None
    raise StretchError("internal", f"lowered tensor {value.name} {list(value.shape)} does not match ONNX shape {list(onnx_shape)}")


def build_module(model: onnx.ModelProto, tflite: bytes, *, name: str, file: str) -> Module:
    """The IR module of the lowered model, with ONNX-level I/O descriptions."""
    try:
        graph = import_model(tflite)
    except TFLiteImportError as exc:
        raise StretchError("unsupported-op", f"the lowered model uses {exc}", file=file) from None
    module = Module(graph=graph, name=name)
    inits = {t.name for t in model.graph.initializer}
    onnx_inputs = [_onnx_io(i) for i in model.graph.input if i.name not in inits]
    onnx_outputs = [_onnx_io(o) for o in model.graph.output]
    if len(onnx_inputs) != len(graph.inputs) or len(onnx_outputs) != len(graph.outputs):
        raise StretchError("internal", "the lowered model's inputs or outputs do not match the ONNX model's", file=file)
    taken = {v.name for v in graph.values()}
    for infos, values in ((module.inputs, graph.inputs), (module.outputs, graph.outputs)):
        for (oname, oshape, odtype), value in zip(onnx_inputs if infos is module.inputs else onnx_outputs, values):
            layout, perm = _match(oshape, value)
            safe = re.sub(r"[^\w.\-]", "_", oname)  # IR names must print as single tokens
            new_name = safe if safe not in taken else f"{safe}.onnx"
            taken.discard(value.name)
            taken.add(new_name)
            value.name = new_name
            infos.append(TensorInfo(name=oname, value=new_name, shape=oshape, dtype=odtype, layout=layout, perm=perm))
    return module
