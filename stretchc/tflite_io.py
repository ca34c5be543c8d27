"""Import a TFLite flatbuffer into the IR, and emit IR nodes back as a standalone TFLite flatbuffer.

No pass edits flatbuffers: they edit the IR, and `emit_model` writes whatever subset of it a partition
needs. Uses the object API shipped in `ai_edge_litert.schema_py_generated` (fast to import).

Import contract: subgraph 0 only; control-flow ops and custom ops are refused; every tensor becomes a
`Value` named `v<index>` (constants `c<index>`), except graph inputs and outputs, which the caller may
rename to the ONNX names. Each node's `loc` is the TFLite name of its first output tensor.
Emit contract: deterministic bytes for the same nodes; buffer 0 is the empty sentinel; one signature
`serving_default` whose input and output names are the IR value names.
"""

from __future__ import annotations

from typing import Callable

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as S

from stretchc.ir import Graph, IRError, Node, QuantParams, Value

_TYPE_TO_DTYPE = {
    S.TensorType.FLOAT32: "float32",
    S.TensorType.FLOAT16: "float16",
    S.TensorType.INT32: "int32",
    S.TensorType.INT64: "int64",
    S.TensorType.INT8: "int8",
    S.TensorType.UINT8: "uint8",
    S.TensorType.INT16: "int16",
    S.TensorType.BOOL: "bool",
}
_DTYPE_TO_TYPE = {v: k for k, v in _TYPE_TO_DTYPE.items()}
_OPS = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
_OP_CODES = {k: v for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
_OPTIONS = {v: k for k, v in vars(S.BuiltinOptions).items() if not k.startswith("_")}
_ACT = {v: k for k, v in vars(S.ActivationFunctionType).items() if not k.startswith("_")}
_PAD = {v: k for k, v in vars(S.Padding).items() if not k.startswith("_")}
# Option fields stored by name rather than by number, so dumps read naturally.
_ENUM_FIELDS = {"fusedActivationFunction": (_ACT, vars(S.ActivationFunctionType)), "padding": (_PAD, vars(S.Padding))}
_CONTROL_FLOW = {"IF", "WHILE", "CALL_ONCE", "CALL", "DELEGATE", "STABLEHLO_COMPOSITE"}


class TFLiteImportError(Exception):
    """The flatbuffer uses something the IR cannot represent (message names it)."""


def _options_to_attrs(op: S.OperatorT) -> dict[str, object]:
    if op.builtinOptionsType == S.BuiltinOptions.NONE or op.builtinOptions is None:
        return {}
    attrs: dict[str, object] = {"options": _OPTIONS[op.builtinOptionsType]}
    for key, val in sorted(vars(op.builtinOptions).items()):
        if key in _ENUM_FIELDS:
            val = _ENUM_FIELDS[key][0].get(val, val)
        elif isinstance(val, np.ndarray):
            val = [int(x) for x in val.tolist()]
        elif isinstance(val, (np.integer, np.floating, np.bool_)):
            val = val.item()
        attrs[key] = val
    return attrs


def _attrs_to_options(attrs: dict[str, object]) -> tuple[int, object | None]:
    name = attrs.get("options")
    if name is None:
        return S.BuiltinOptions.NONE, None
    opts = getattr(S, f"{name}T")()
    for key, val in attrs.items():
        if key in ("options", "version"):
            continue
        if key in _ENUM_FIELDS and isinstance(val, str):
            val = _ENUM_FIELDS[key][1][val]
        elif isinstance(val, list):
            val = np.array(val, dtype=np.int32)
        setattr(opts, key, val)
    return getattr(S.BuiltinOptions, name), opts


def _quant_of(t: S.TensorT) -> QuantParams | None:
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    zps = q.zeroPoint if q.zeroPoint is not None else np.zeros(len(q.scale), dtype=np.int64)
    return QuantParams(
        scale=tuple(float(s) for s in q.scale),
        zero_point=tuple(int(z) for z in zps),
        axis=int(q.quantizedDimension),
    )


def import_model(buf: bytes, *, tensor_names: bool = False) -> Graph:
    """Parse a TFLite flatbuffer (subgraph 0) into a Graph. Raises TFLiteImportError for what the IR lacks.

    With `tensor_names`, values are named by their TFLite tensor names (which must be unique), e.g. to read
    back a model `emit_model` wrote, whose tensors carry IR value names."""
    model = S.ModelT.InitFromPackedBuf(buf, 0)
    if not model.subgraphs:
        raise TFLiteImportError("the model has no subgraph")
    sg = model.subgraphs[0]
    graph = Graph()
    inputs = [int(i) for i in (sg.inputs if sg.inputs is not None else [])]
    values: dict[int, Value] = {}
    for idx, t in enumerate(sg.tensors):
        if t.type not in _TYPE_TO_DTYPE:
            raise TFLiteImportError(f"tensor {t.name!r} has unsupported type {t.type}")
        dtype = _TYPE_TO_DTYPE[t.type]
        shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        data = None
        buffer = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        if buffer is not None and buffer.data is not None and len(buffer.data) > 0:
            data = np.frombuffer(bytes(buffer.data), dtype=np.dtype(dtype)).reshape(shape).copy()
        name = f"c{idx}" if data is not None else f"v{idx}"
        values[idx] = Value(name, shape, dtype, quant=_quant_of(t), data=data)
    names_of = {idx: (t.name.decode() if isinstance(t.name, bytes) else str(t.name)) for idx, t in enumerate(sg.tensors)}
    if tensor_names:
        if len(set(names_of.values())) != len(names_of):
            raise TFLiteImportError("two tensors share a name")
        for idx, v in values.items():
            v.name = names_of[idx]
    graph.inputs = [values[i] for i in inputs]
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        kind = _OPS.get(builtin, f"UNKNOWN_{builtin}")
        if kind == "CUSTOM" or kind in _CONTROL_FLOW:
            custom = code.customCode.decode() if code.customCode else ""
            raise TFLiteImportError(f"op {kind}{' ' + custom if custom else ''} is not supported")
        attrs = _options_to_attrs(op)
        ins = [values[int(i)] if int(i) >= 0 else None for i in op.inputs]
        outs = [values[int(i)] for i in op.outputs]
        attrs["version"] = _own_version(kind, int(code.version), ins)
        graph.nodes.append(Node(f"tfl.{kind}", ins, outs, attrs, loc=names_of[int(op.outputs[0])]))
    graph.outputs = [values[int(i)] for i in sg.outputs]
    return graph


def _own_version(kind: str, version: int, inputs: list[Value | None]) -> int:
    """The version this op instance needs, where the converter gave every op of a kind the highest one.

    TFLite's converter writes one OperatorCode per kind, so when any CONV_2D of a model is grouped
    (version 6), every CONV_2D gets version 6. A partition cut from the model must carry the version of its
    own ops: the Hexagon delegate, for one, accepts CONV_2D only up to version 3. Versions follow TFLite's
    op_version rules: 1 float, 3 int8 (per-channel), 6 grouped.
    """
    if kind != "CONV_2D" or version != 6 or len(inputs) < 2 or inputs[0] is None or inputs[1] is None:
        return version
    x, w = inputs[0], inputs[1]
    if len(x.shape) != 4 or len(w.shape) != 4 or x.shape[3] != w.shape[3]:
        return version  # really grouped
    return {"float32": 1, "int8": 3}.get(x.dtype, version)


def _tensor(v: Value, buffer: int) -> S.TensorT:
    t = S.TensorT()
    t.shape = np.array(v.shape, dtype=np.int32)
    t.type = _DTYPE_TO_TYPE[v.dtype]
    t.buffer = buffer
    t.name = v.name.encode()
    if v.quant is not None:
        q = S.QuantizationParametersT()
        q.scale = np.array(v.quant.scale, dtype=np.float32)
        q.zeroPoint = np.array(v.quant.zero_point, dtype=np.int64)
        q.quantizedDimension = v.quant.axis
        t.quantization = q
    return t


def emit_model(
    nodes: list[Node], inputs: list[Value], outputs: list[Value], *, description: str = "stretchc",
    resolve: Callable[[Value], Value] | None = None,
) -> bytes:
    """Write `nodes` (in order) as a standalone TFLite model with the given boundary inputs and outputs.
    `resolve` maps a value the nodes read to the value to write in its place (e.g. past a sync node)."""
    model = S.ModelT()
    model.version = 3
    model.description = description.encode()
    model.buffers = [S.BufferT()]  # buffer 0: the empty sentinel
    model.operatorCodes = []
    sg = S.SubGraphT()
    sg.tensors, sg.operators = [], []
    tensor_index: dict[int, int] = {}
    code_index: dict[tuple[str, int], int] = {}

    def index_of(v: Value) -> int:
        if resolve is not None:
            v = resolve(v)
        if id(v) not in tensor_index:
            buffer = 0
            if v.is_const:
                b = S.BufferT()
                b.data = np.frombuffer(np.ascontiguousarray(v.data).tobytes(), dtype=np.uint8)
                model.buffers.append(b)
                buffer = len(model.buffers) - 1
            tensor_index[id(v)] = len(sg.tensors)
            sg.tensors.append(_tensor(v, buffer))
        return tensor_index[id(v)]

    for v in inputs:
        if v.is_const:
            raise IRError(f"partition input {v.name!r} is a constant")
        index_of(v)
    for node in nodes:
        if not node.op.startswith("tfl."):
            raise IRError(f"cannot emit {node.op} into a TFLite model")
        version = int(node.attrs.get("version", 1))  # type: ignore[arg-type]
        key = (node.kind, version)
        if key not in code_index:
            oc = S.OperatorCodeT()
            code = _OP_CODES[node.kind]
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = version
            code_index[key] = len(model.operatorCodes)
            model.operatorCodes.append(oc)
        op = S.OperatorT()
        op.opcodeIndex = code_index[key]
        op.inputs = np.array([index_of(v) if v is not None else -1 for v in node.inputs], dtype=np.int32)
        op.outputs = np.array([index_of(v) for v in node.outputs], dtype=np.int32)
        op.builtinOptionsType, op.builtinOptions = _attrs_to_options(node.attrs)
        sg.operators.append(op)
    sg.inputs = np.array([tensor_index[id(v)] for v in inputs], dtype=np.int32)
    sg.outputs = np.array([index_of(v) for v in outputs], dtype=np.int32)
    sg.name = b"main"
    model.subgraphs = [sg]
    sig = S.SignatureDefT()
    sig.signatureKey = b"serving_default"
    sig.subgraphIndex = 0
    sig.inputs = [_tensor_map(v.name, tensor_index[id(v)]) for v in inputs]
    sig.outputs = [_tensor_map(v.name, tensor_index[id(v)]) for v in outputs]
    model.signatureDefs = [sig]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _tensor_map(name: str, index: int) -> S.TensorMapT:
    tm = S.TensorMapT()
    tm.name = name.encode()
    tm.tensorIndex = index
    return tm
