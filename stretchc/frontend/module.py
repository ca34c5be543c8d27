"""Turn the lowered TFLite flatbuffer into a Module whose inputs and outputs carry the ONNX names and layouts.

onnx2tf names the lowered model's inputs after the ONNX inputs and keeps the outputs in order; it turns
rank-3/4/5 channel-first tensors channel-last. We match inputs by name (by position when onnx2tf renamed
them), outputs by position, check the sizes agree, and record the permutation (ONNX -> bundle) that the
runtimes apply at the model boundary. `check_lowering` then runs both models once on a seeded input: it
settles the layout of outputs whose shape reads the same both ways and refuses a lowering that computes
something else than the ONNX model. An output whose lowered shape fits no layout because ONNX shape inference
left some of its dimensions unknown is refused as that, naming the dimensions.

A model input the lowered model does not read is either unread by the ONNX model too (at most its shape is
used): it is left out of the bundle, with a note; or the ONNX model reads it and the lowering fixed its value
at conversion time: refused, asking for its value with `--const-input`.

Every node's `loc` becomes the name of the ONNX tensor its first output holds, read back from the tokens
the lowering put into the TFLite tensor names (`provenance.py`), or None for a node that holds none (a
PAD onnx2tf put in front of a conv, a layout transpose); the node producing a model output holds it.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
from ai_edge_litert import schema_py_generated as S

from stretchc.console import get_console
from stretchc.errors import StretchError
from stretchc.frontend.lowering_check import check_lowering
from stretchc.frontend.parts import concat_parts
from stretchc.frontend.provenance import holder_tokens, onnx_names
from stretchc.frontend.validate import node_label
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
# Ops that read only the shape of an input, which is static by the time the model is lowered.
_SHAPE_ONLY = {"Shape", "Size"}

Layout = tuple[str, tuple[int, ...] | None]


def _onnx_io(vi: onnx.ValueInfoProto) -> tuple[str, tuple[int, ...], str]:
    tt = vi.type.tensor_type
    shape = tuple(int(d.dim_value) if d.dim_value > 0 else 1 for d in tt.shape.dim)
    return vi.name, shape, _ONNX_DTYPES.get(tt.elem_type, "float32")


def onnx_inputs(model: onnx.ModelProto) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, dtype) of the model's real inputs (initializers excluded; dynamic dims as 1)."""
    inits = {t.name for t in model.graph.initializer}
    return [_onnx_io(i) for i in model.graph.input if i.name not in inits]


def _subgraph_names(graph: onnx.GraphProto) -> set[str]:
    """Every tensor name a subgraph (an If or Loop body) reads, including the outer-scope ones it captures."""
    names: set[str] = set()
    for node in graph.node:
        names.update(node.input)
        for attr in node.attribute:
            for sub in [attr.g, *attr.graphs] if attr.HasField("g") or attr.graphs else []:
                names |= _subgraph_names(sub)
    return names


def value_readers(model: onnx.ModelProto, name: str) -> list[onnx.NodeProto]:
    """The nodes that read the value (not just the shape) of tensor `name`."""
    readers = []
    for node in model.graph.node:
        captured = any(name in _subgraph_names(sub) for attr in node.attribute for sub in ([attr.g] if attr.HasField("g") else list(attr.graphs)))
        if captured or (name in node.input and node.op_type not in _SHAPE_ONLY):
            readers.append(node)
    return readers


def unread_inputs(model: onnx.ModelProto) -> list[str]:
    """The model's inputs whose values no node reads (at most their static shapes are used)."""
    outputs = {o.name for o in model.graph.output}
    return [name for name, _, _ in onnx_inputs(model) if name not in outputs and not value_readers(model, name)]


def _candidates(onnx_shape: tuple[int, ...], value: Value) -> list[Layout]:
    """Layouts under which the lowered tensor can be the ONNX one, most likely first.

    onnx2tf makes rank-3/4/5 tensors channel-last, so that comes first; `as-is` second (a tensor whose
    shape reads the same both ways, like [1,16,16,16], fits both); `reshape` when only the sizes agree.
    """
    found: list[Layout] = []
    perm = CHANNEL_LAST.get(len(onnx_shape))
    if perm is not None and tuple(onnx_shape[p] for p in perm) == tuple(value.shape):
        found.append(("NCHW", perm))
    if tuple(value.shape) == onnx_shape:
        found.append(("as-is", None))
    if not found and int(np.prod(onnx_shape)) == int(np.prod(value.shape)):
        found.append(("reshape", None))
    return found


def _io_names(tflite: bytes) -> tuple[list[str], list[str]]:
    """The names of the lowered model's input and output tensors, in order."""
    sg = S.ModelT.InitFromPackedBuf(tflite, 0).subgraphs[0]

    def name(i: int) -> str:
        raw = sg.tensors[int(i)].name
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    return [name(i) for i in (sg.inputs if sg.inputs is not None else [])], [name(i) for i in (sg.outputs if sg.outputs is not None else [])]


def _match_inputs(model: onnx.ModelProto, tflite: bytes, values: list[Value], file: str) -> dict[str, Value]:
    """ONNX input name -> lowered input value: by name, then (onnx2tf renames some, e.g. `x:0` to `x__0`)
    the remaining ones in order, which onnx2tf keeps."""
    names = [n for n, _, _ in onnx_inputs(model)]
    tfl_names, _ = _io_names(tflite)
    matched = {n: v for n, v in zip(tfl_names, values) if n in names}
    rest_onnx = [n for n in names if n not in matched]
    rest_tfl = [v for n, v in zip(tfl_names, values) if n not in matched]
    if rest_tfl and len(rest_tfl) != len(rest_onnx):  # onnx2tf renamed some inputs and dropped others
        raise StretchError("unsupported-op", f"the lowered model's inputs {tfl_names} cannot be matched to the ONNX inputs {names}", file=file)
    matched.update(zip(rest_onnx, rest_tfl))
    return matched


def _drop_unread_inputs(model: onnx.ModelProto, module: Module, matched: dict[str, Value], file: str) -> None:
    """Handle ONNX inputs the lowered model does not read (see the module docstring)."""
    for name, _, _ in onnx_inputs(model):
        value = matched.get(name)
        if value is not None and (value.uses or value in module.graph.outputs):
            continue
        readers = value_readers(model, name)
        if readers:
            node = readers[0]
            raise StretchError(
                "unsupported-op",
                f"input {name!r} feeds op {node.op_type} of node {node_label(node)!r}, but the lowered model does not read it "
                f"(onnx2tf needs its value when converting): give it at compile time with --const-input {name}=FILE.npy",
                file=file,
                node=node_label(node),
            )
        get_console().note("unused-input", f"input {name!r} is not read by the model (at most its shape is); the bundle does not take it", file=file)
        if value is not None:
            module.graph.inputs.remove(value)
            del matched[name]


def _check_outputs_present(model: onnx.ModelProto, module: Module, file: str) -> None:
    outs = [o.name for o in model.graph.output]
    if len(outs) != len(module.graph.outputs):
        producers = {o: n for n in model.graph.node for o in n.output}
        ops = sorted({f"{producers[o].op_type} node {node_label(producers[o])!r}" for o in outs if o in producers})
        raise StretchError(
            "unsupported-op",
            f"the lowered model has {len(module.graph.outputs)} output(s), the ONNX model {len(outs)} ({', '.join(outs)}; "
            f"from {', '.join(ops)}): onnx2tf drops outputs it cannot compute",
            file=file,
        )
    if not module.graph.nodes:
        raise StretchError(
            "unsupported-op",
            "the lowered model has no operators (onnx2tf turned the whole model into a change of layout); a bundle needs at least one",
            file=file,
        )


def _check_unknown_output_dims(model: onnx.ModelProto, lowered: list[list[int]], options: list[list[Layout]], file: str) -> None:
    """Refuse an output whose lowered shape fits no layout because ONNX shape inference left some of its
    dimensions unknown (read as 1 above), saying so: the lowering is not what is wrong then. Canonicalization
    folds shapes computed from Shape (fold-shapes), so what remains is a size that depends on the data."""
    producers = {o: n for n in model.graph.node for o in n.output}
    for vi, shape, opts in zip(model.graph.output, lowered, options):
        dims = vi.type.tensor_type.shape.dim
        unknown = [k for k, d in enumerate(dims) if not (d.HasField("dim_value") and d.dim_value > 0)]
        if opts or not unknown:
            continue
        node = producers.get(vi.name)
        where = f" (computed by op {node.op_type} of node {node_label(node)!r})" if node is not None else ""
        shown = [d.dim_value if k not in unknown else "?" for k, d in enumerate(dims)]
        raise StretchError(
            "unsupported-op",
            f"output {vi.name!r}{where} has shape {shown}: ONNX shape inference cannot work out dimension(s) "
            f"{', '.join(map(str, unknown))} even with static inputs (a size that depends on the data?), and the lowered shape {shape} "
            "cannot be checked against it",
            file=file,
            node=node_label(node) if node is not None else None,
        )


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
    lowered_order = list(graph.inputs)
    matched = _match_inputs(model, tflite, graph.inputs, file)
    _drop_unread_inputs(model, module, matched, file)
    _check_outputs_present(model, module, file)
    model_ins = [io for io in onnx_inputs(model) if io[0] in matched]
    graph.inputs = [matched[n] for n, _, _ in model_ins]
    onnx_outputs = [_onnx_io(o) for o in model.graph.output]
    input_layouts: list[Layout] = []
    for (n, shape, _), value in zip(model_ins, graph.inputs):
        options = _candidates(shape, value)
        if not options:
            raise StretchError("unsupported-op", f"onnx2tf lowers input {n!r} to shape {list(value.shape)}, which does not match its ONNX shape {list(shape)}", file=file)
        input_layouts.append(options[0])  # onnx2tf turns every channel-first input channel-last
    input_infos = [
        TensorInfo(name=n, value=n, shape=shape, dtype=dt, layout=lay, perm=perm)
        for (n, shape, dt), (lay, perm) in zip(model_ins, input_layouts)
    ]
    output_options = [_candidates(shape, v) for (_, shape, _), v in zip(onnx_outputs, graph.outputs)]
    _check_unknown_output_dims(model, [list(v.shape) for v in graph.outputs], output_options, file)
    onnx_name = {id(v): n for n, v in matched.items()}
    output_layouts = check_lowering(
        model,
        tflite,
        input_infos,
        [onnx_name.get(id(v)) for v in lowered_order],
        [(n, shape) for n, shape, _ in onnx_outputs],
        output_options,
        file=file,
    )
    taken = {v.name for v in graph.values()}
    parts = concat_parts(model)  # outputs of parts (a detector head's boxes and scores), each held to the accuracy bound
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
            axis, sizes = parts.get(oname, (0, ()))
            infos.append(TensorInfo(name=oname, value=new_name, shape=oshape, dtype=odtype, layout=layout, perm=perm, parts=sizes, part_axis=axis))
    return module
