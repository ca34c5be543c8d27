"""Turn the lowered TFLite flatbuffer into a Module whose inputs and outputs carry the ONNX names and layouts.

onnx2tf keeps input and output order and turns rank-3/4/5 channel-first tensors channel-last. We match
each ONNX input and output to its TFLite tensor by position, check the sizes agree, and record the
permutation (ONNX -> bundle) that the runtimes apply at the model boundary. When an output's shape reads
the same in both layouts ([1,16,16,16]), one run of both models on a seeded input settles it.

Every node's `loc` becomes the name of the ONNX tensor its first output holds, read back from the tokens
the lowering put into the TFLite tensor names (`provenance.py`), or None for a node that holds none (a
PAD onnx2tf put in front of a conv, a layout transpose); the node producing a model output holds it.
"""

from __future__ import annotations

import re

import numpy as np
import onnx

from stretchc.errors import StretchError
from stretchc.frontend.provenance import holder_tokens, onnx_names
from stretchc.ir import Graph, Module, TensorInfo, Value
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
CHANNEL_LAST = {3: (0, 2, 1), 4: (0, 2, 3, 1), 5: (0, 2, 3, 4, 1)}  # rank -> the channel-last permutation onnx2tf applies


def _onnx_io(vi: onnx.ValueInfoProto) -> tuple[str, tuple[int, ...], str]:
    tt = vi.type.tensor_type
    shape = tuple(int(d.dim_value) if d.dim_value > 0 else 1 for d in tt.shape.dim)
    return vi.name, shape, _ONNX_DTYPES.get(tt.elem_type, "float32")


def onnx_inputs(model: onnx.ModelProto) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, dtype) of the model's real inputs (initializers excluded; dynamic dims as 1)."""
    inits = {t.name for t in model.graph.initializer}
    return [_onnx_io(i) for i in model.graph.input if i.name not in inits]


def _candidates(onnx_shape: tuple[int, ...], value: Value) -> list[tuple[str, tuple[int, ...] | None]]:
    """Layouts under which the lowered tensor can be the ONNX one, most likely first.

    onnx2tf makes rank-3/4/5 tensors channel-last, so that comes first; `as-is` second (a tensor whose
    shape reads the same both ways, like [1,16,16,16], fits both); `reshape` when only the sizes agree.
    """
    found: list[tuple[str, tuple[int, ...] | None]] = []
    perm = CHANNEL_LAST.get(len(onnx_shape))
    if perm is not None and tuple(onnx_shape[p] for p in perm) == tuple(value.shape):
        found.append(("NCHW", perm))
    if tuple(value.shape) == onnx_shape:
        found.append(("as-is", None))
    if not found and int(np.prod(onnx_shape)) == int(np.prod(value.shape)):
        found.append(("reshape", None))
    if not found:
        raise StretchError("internal", f"lowered tensor {value.name} {list(value.shape)} does not match ONNX shape {list(onnx_shape)}")
    return found


def _settle_outputs(
    model: onnx.ModelProto, tflite: bytes, inputs: list[TensorInfo], choices: list[list[tuple[str, tuple[int, ...] | None]]]
) -> list[tuple[str, tuple[int, ...] | None]]:
    """For outputs whose layout the shapes leave open, run both models once and keep the layout that agrees."""
    if all(len(c) == 1 for c in choices):
        return [c[0] for c in choices]
    import onnxruntime as ort

    from stretchc.litert import load_interpreter

    rng = np.random.default_rng(0)
    feeds = {i.name: rng.random(i.shape).astype(i.dtype) for i in inputs}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    reference = session.run(None, feeds)
    it = load_interpreter(model_content=tflite)
    for info, detail in zip(inputs, it.get_input_details()):
        arr = feeds[info.name]
        it.set_tensor(detail["index"], np.transpose(arr, info.perm) if info.perm else arr.reshape(detail["shape"]))
    it.invoke()
    settled = []
    for ref, detail, options in zip(reference, it.get_output_details(), choices):
        got = it.get_tensor(detail["index"])

        def error(choice: tuple[str, tuple[int, ...] | None]) -> float:
            layout, perm = choice
            back = np.transpose(got, np.argsort(perm)) if perm else got.reshape(ref.shape)
            return float(np.max(np.abs(back - ref)))

        settled.append(min(options, key=error))
    return settled


def _set_locs(graph: Graph, model: onnx.ModelProto) -> None:
    """Replace each node's TFLite tensor name by the ONNX tensor its first output holds (module docstring)."""
    names = onnx_names(model)
    for node, k in zip(graph.nodes, holder_tokens([n.loc for n in graph.nodes])):
        node.loc = names[k] if k is not None and k < len(names) else None


def build_module(model: onnx.ModelProto, tflite: bytes, *, name: str, file: str) -> Module:
    """The IR module of the lowered model, with ONNX-level I/O descriptions."""
    try:
        graph = import_model(tflite)
    except TFLiteImportError as exc:
        raise StretchError("unsupported-op", f"the lowered model uses {exc}", file=file) from None
    module = Module(graph=graph, name=name)
    _set_locs(graph, model)
    model_ins = onnx_inputs(model)
    onnx_outputs = [_onnx_io(o) for o in model.graph.output]
    if len(model_ins) != len(graph.inputs) or len(onnx_outputs) != len(graph.outputs):
        raise StretchError("internal", "the lowered model's inputs or outputs do not match the ONNX model's", file=file)
    # onnx2tf turns every channel-first input channel-last; an output's layout may need a trial run to settle.
    input_layouts = [_candidates(shape, v)[0] for (_, shape, _), v in zip(model_ins, graph.inputs)]
    input_infos = [
        TensorInfo(name=n, value=n, shape=shape, dtype=dt, layout=lay, perm=perm)
        for (n, shape, dt), (lay, perm) in zip(model_ins, input_layouts)
    ]
    output_layouts = _settle_outputs(model, tflite, input_infos, [_candidates(shape, v) for (_, shape, _), v in zip(onnx_outputs, graph.outputs)])
    taken = {v.name for v in graph.values()}
    for infos, onnx_io, values, layouts in (
        (module.inputs, model_ins, graph.inputs, input_layouts),
        (module.outputs, onnx_outputs, graph.outputs, output_layouts),
    ):
        for (oname, oshape, odtype), value, (layout, perm) in zip(onnx_io, values, layouts):
            safe = re.sub(r"[^\w.\-]", "_", oname)  # IR names must print as single tokens
            new_name = safe if safe not in taken else f"{safe}.onnx"
            taken.discard(value.name)
            taken.add(new_name)
            value.name = new_name
            if value.producer is not None and value.producer.outputs[0] is value:
                value.producer.loc = oname
            infos.append(TensorInfo(name=oname, value=new_name, shape=oshape, dtype=odtype, layout=layout, perm=perm))
    return module
