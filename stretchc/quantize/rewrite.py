"""Splice quantized partitions into the IR, and plan one conversion per boundary tensor whose dtypes differ.

Every float value of the module has *forms*: itself (float32), and an int8 and a uint8 twin named
`<name>.i8` / `<name>.u8` that share the scale of the one calibration (uint8: zero point + 128). A quantized
partition computes in its form (int8, or uint8 for the Hexagon delegate's legacy form): its ops, taken from a
quantized variant of the whole model (`stretchc.quantize.calibrate`), read and write the forms of its dtype.
A float partition reads and writes float32 values.

After the splice, a form that is read (or is a model output) but produced by nobody gets one conversion from
the form that is produced: QUANTIZE to int8/uint8, DEQUANTIZE to float32. It runs where
`stretchc.precision.converts_in_producer` says (in the producer's partition, or in the one consumer's), so a
boundary tensor is converted once, never once per consumer. Model inputs are produced by the host, which runs
no ops: the bundle holds a model input that only 8-bit partitions of one dtype read in that dtype, and a model
output computed in 8 bits in its 8-bit form, and the runtime converts them at the model boundary (where it
applies the layout permutation too); `io_dtype` (`--io-dtype int8|uint8`) holds every model input and output in
that dtype. A partition that reads a model input in another dtype than the bundle holds converts it itself (the
model boundary is the one place where several partitions may convert the same tensor).

Own scales: TFLite's quantizer gives the inputs of a same-scale op (CONCATENATION, MAX_POOL_2D, RESHAPE, ...) the
op's scale, so a small tensor concatenated with a large one may keep only a few of int8's levels. Inside one
partition that is what the whole int8 model computes; at a sync point it is what the next partition reads, and
verify holds it to the sync-point bound. A value that crosses a partition boundary, whose producer's int8 kernel
takes any output scale (FREE_OUTPUT_SCALE) and whose shared scale is at least OWN_SCALE_RATIO times coarser than
its own calibrated one (`own_scales`), is produced in an *own* form `<name>.own.i8` (`.own.u8`) with its own
scale; every partition that reads it requantizes it (one QUANTIZE, 8-bit to 8-bit) into the shared scale right
before its ops, `<name>.<partition>.i8`, so each partition computes what the whole int8 model computes while the
tensor that crosses keeps its precision. The requantization is recorded as a conversion of the sync point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stretchc.errors import StretchError
from stretchc.ir import HOST, Graph, Module, Node, QuantParams, Value
from stretchc.precision import QUANTIZED, converts_in_producer

SUFFIX = {"int8": ".i8", "uint8": ".u8"}
OWN = ".own"  # the infix of a value's own-scale forms

# Ops whose TFLite int8 kernels requantize their result into any output scale (no same-scale constraint).
FREE_OUTPUT_SCALE = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "ADD", "SUB", "MUL"})
# A boundary value keeps its own scale when the shared one is at least this many times coarser: it then holds at
# most 1/16 of int8's levels (4 bits), about 24 dB below its own precision, which a typical activation (own-scale
# rounding noise some 40 dB below it) cannot lose and keep a 20 dB sync-point bound. Ratios up to a few (the
# branches of a join concatenated with similar ranges) stay shared: no conversion.
OWN_SCALE_RATIO = 16.0


@dataclass
class Quantized:
    """A partition's quantized ops (already reading and writing forms of `dtype`), and how its weights were quantized."""

    partition: str
    nodes: list[Node]
    dtype: str  # "int8" or "uint8"
    weights: str  # stretchc.quantize.calibrate.WEIGHTS


class Forms:
    """The float32, int8 and uint8 forms of the module's values (see the module docstring)."""

    def __init__(self, module: Module, reference: Graph | None, own: dict[str, QuantParams] | None = None) -> None:
        self.values = module.graph.value_map()
        self.extra: dict[tuple[str, str, bool], Value] = {}
        # int8 scale and zero point of every activation, from a quantized variant of the whole model.
        self.quant: dict[str, QuantParams] = {}
        if reference is not None:
            self.quant = {v.name: v.quant for v in reference.values() if not v.is_const and v.dtype == "int8" and v.quant is not None}
        # The boundary values that cross in their own int8 scale (`own_scales`), and that scale.
        self.own: dict[str, QuantParams] = dict(own or {})

    def get(self, name: str, dtype: str, like: Value | None = None, *, own: bool = False) -> Value:
        """The `dtype` form of value `name` (created on first use; `like` gives the shape when `name` is new); with
        `own`, its own-scale form (`name` must be in `self.own`, `dtype` 8-bit)."""
        if dtype not in QUANTIZED:
            v = self.values.get(name)
            if v is not None and v.dtype == dtype:
                return v
        key = (name, dtype, own)
        if key not in self.extra:
            base = self.values.get(name, like)
            if base is None:
                raise StretchError("internal", f"no value {name!r} to take a {dtype} form of")
            quant = None
            if dtype in QUANTIZED:
                q = self.own.get(name) if own else self.quant.get(name)
                if q is None:
                    raise StretchError("internal", f"value {name!r} has no {'own ' if own else ''}int8 scale from the calibration")
                quant = _shifted(q, dtype)
            self.extra[key] = Value(name + (OWN if own else "") + SUFFIX.get(dtype, ""), base.shape, dtype, quant=quant)
        return self.extra[key]

    def boundary(self, name: str, dtype: str) -> Value:
        """The `dtype` form in which a partition computing in `dtype` reads or writes boundary value `name`: its
        own-scale form when it has one and `dtype` is 8-bit, else its form."""
        return self.get(name, dtype, own=dtype in QUANTIZED and name in self.own)

    def names(self) -> list[str]:
        """Names that have a quantized form, in creation order."""
        return list(dict.fromkeys(name for name, dtype, _ in self.extra if dtype in QUANTIZED))


def _shifted(q: QuantParams, dtype: str) -> QuantParams:
    """Int8 quantization `q` as `dtype` (uint8: the zero point + 128)."""
    shift = 128 if dtype == "uint8" else 0
    return QuantParams(scale=q.scale, zero_point=tuple(z + shift for z in q.zero_point), axis=q.axis)


def own_scales(module: Module, variant: Graph, own: dict[str, QuantParams], quantized: set[str]) -> dict[str, QuantParams]:
    """The values that cross a partition boundary in their own scale (see the module docstring), with it: produced
    in a partition of `quantized` (names) by an op of FREE_OUTPUT_SCALE in `variant` (the whole model quantized),
    read in another partition, not a model output, whose shared scale in `variant` is at least OWN_SCALE_RATIO
    times its own (`own`: each tensor's own calibrated quantization). In value order: deterministic."""
    g = module.graph
    outputs = {v.name for v in g.outputs}
    kinds = {v.name: n.kind for n in variant.nodes for v in n.outputs}
    shared = {v.name: v.quant for v in variant.values() if not v.is_const and v.dtype == "int8" and v.quant is not None}
    found: dict[str, QuantParams] = {}
    for n in g.nodes:
        if n.partition not in quantized:
            continue
        for v in n.outputs:
            q, mine = shared.get(v.name), own.get(v.name)
            if q is None or mine is None or v.name in outputs or kinds.get(v.name) not in FREE_OUTPUT_SCALE:
                continue
            if any(u.partition != n.partition for u, _ in v.uses) and q.scale[0] >= OWN_SCALE_RATIO * mine.scale[0]:
                found[v.name] = mine
    return found


def partition_nodes(module: Module, partition: str, variant: Graph) -> list[Node]:
    """The ops of a quantized variant that compute `partition`: those whose outputs are named after the
    partition's float values, plus any op the quantizer added, with the partition of the op feeding it (or,
    when only model inputs feed it, of the op it feeds)."""
    home: dict[str, str | None] = {v.name: n.partition for n in module.graph.nodes for v in n.outputs}
    where: dict[int, str | None] = {}
    for n in variant.nodes:
        found = next((home[v.name] for v in n.outputs if v.name in home), None)
        if found is None:
            feeding = [v for v in n.inputs if v is not None and not v.is_const and v.name in home]
            found = home[feeding[0].name] if feeding else None
            for v in n.outputs:
                home[v.name] = found
        where[id(n)] = found
    for n in reversed(variant.nodes):
        if where[id(n)] is None:
            users = [u for v in n.outputs for u in v.users]
            where[id(n)] = where.get(id(users[0])) if users else None
    picked = [n for n in variant.nodes if where[id(n)] == partition]
    floats = [n for n in module.graph.nodes if n.partition == partition]
    produced = {v.name for n in floats for v in n.outputs}
    if sum(1 for n in picked if any(v.name in produced for v in n.outputs)) != len(floats):
        raise StretchError("internal", f"partition {partition}: the quantized model's ops do not match the float ops")
    return picked


def adopt(nodes: list[Node], forms: Forms, dtype: str, partition: str) -> None:
    """Make a variant's ops (those of `partition`) read and write the `dtype` forms of their values (int8
    activations become uint8 ones for a uint8 partition); they get their own constants, named
    `<partition>.<name>`, so the variant's other ops (and other variants) keep theirs. A value with an own scale
    (`forms.own`) is written in its own-scale form, and read through one requantization into its shared scale
    per partition (a QUANTIZE appended to `nodes`, see the module docstring)."""
    consts: dict[int, Value] = {}
    shared: dict[str, Value] = {}  # own-scale value -> its requantization into the shared scale, in this partition
    requants: list[Node] = []
    for n in nodes:
        for i, v in enumerate(n.inputs):
            if v is None:
                continue
            if v.is_const:
                if id(v) not in consts:
                    consts[id(v)] = Value(f"{partition}.{v.name}", v.shape, v.dtype, quant=v.quant, data=v.data)
                n.set_input(i, consts[id(v)])
                continue
            d = _form_dtype(v, dtype)
            if d in QUANTIZED and v.name in forms.own:
                if v.name not in shared:
                    src = forms.get(v.name, d, like=v, own=True)
                    shared[v.name] = Value(f"{v.name}.{partition}{SUFFIX[d]}", v.shape, d, quant=forms.get(v.name, d, like=v).quant)
                    requants.append(conversion(src, shared[v.name]))
                n.set_input(i, shared[v.name])
                continue
            n.set_input(i, forms.get(v.name, d, like=v))
        for k, v in enumerate(n.outputs):
            if v.dtype == "int8" and forms.quant.get(v.name) != v.quant:
                raise StretchError("internal", f"value {v.name!r}: quantized variants disagree on its scale")
            d = _form_dtype(v, dtype)
            new = forms.get(v.name, d, like=v, own=d in QUANTIZED and v.name in forms.own)
            if new.producer is not None:
                raise StretchError("internal", f"value {new.name!r} would have two producers")
            v.producer = None
            n.outputs[k] = new
            new.producer = n
    nodes += requants


def conversion(src: Value, dst: Value) -> Node:
    """The op converting `src` into `dst`: QUANTIZE into an 8-bit dtype (from float32, or a requantization from
    8 bits), DEQUANTIZE into float32."""
    op = "tfl.QUANTIZE" if dst.dtype in QUANTIZED else "tfl.DEQUANTIZE"
    version = (2 if src.dtype == "int8" else 1) if op == "tfl.DEQUANTIZE" else 1  # TFLite's op_version rules
    return Node(op, [src], [dst], {"version": version})  # no loc: it holds what src holds (Graph.holders)


def _form_dtype(v: Value, dtype: str) -> str:
    return dtype if v.dtype == "int8" else v.dtype


def splice(module: Module, quantized: list[Quantized], forms: Forms, io_dtype: str) -> int:
    """Replace each quantized partition's float ops by its quantized ones, put the model's inputs and outputs
    in `io_dtype`, and add the conversions (see the module docstring). Returns the number of conversions."""
    g = module.graph
    parts = {p.name: p for p in module.partitions}
    for q in quantized:
        old = [n for n in g.nodes if n.partition == q.partition]
        region_of = {v.name: (n.region, n.loc) for n in old for v in n.outputs}
        first = g.nodes.index(old[0])
        for n in old:
            n.detach()
        gone = {id(n) for n in old}
        g.nodes = [n for n in g.nodes if id(n) not in gone]
        p = parts[q.partition]
        suffix = SUFFIX[q.dtype]
        for n in q.nodes:  # region and provenance of the float op with the same output
            out = n.outputs[0].name if n.outputs else ""
            out = out[: -len(suffix)] if out.endswith(suffix) else out
            out = out[: -len(OWN)] if out.endswith(OWN) else out
            if _requantizes_own(n):  # adopt's, after the ops that read it: the region of its first reader, no loc
                n.region, n.loc = n.outputs[0].users[0].region, None
            else:
                # The quantizer names a tensor's int8 twin `<tensor>_int8`: it comes from the same ONNX tensor.
                n.region, n.loc = region_of.get(out) or region_of.get(re.sub(r"_u?int8$", "", out), (p.regions[0], None))
            n.processor, n.precision, n.partition = p.processor, p.precision, p.name
        g.nodes[first:first] = q.nodes
    _model_io(module, forms, io_dtype)
    count = 0
    for name in forms.names():
        produced = [v for v in _all_forms(forms, name) if v.producer is not None or v in g.inputs]
        if len(produced) != 1:
            raise StretchError("internal", f"value {name!r} is produced {len(produced)} times across its dtypes")
        src = produced[0]
        for v in _all_forms(forms, name):
            if v is not src and (v.uses or v in g.outputs):
                count += _convert(module, src, v)
    g.nodes = _topo_sort(g.nodes)
    return count


def _requantizes_own(n: Node) -> bool:
    """Whether `n` is one of `adopt`'s requantizations of an own-scale form into the shared scale."""
    src = n.inputs[0] if n.kind == "QUANTIZE" and n.inputs else None
    return src is not None and src.dtype in SUFFIX and src.name.endswith(OWN + SUFFIX[src.dtype])


def _all_forms(forms: Forms, name: str) -> list[Value]:
    out = [v for (n, _, _), v in forms.extra.items() if n == name]
    base = forms.values.get(name)
    return ([base] if base is not None and base not in out else []) + out


def _model_io(module: Module, forms: Forms, io_dtype: str) -> None:
    """Hold each float model input and output in the bundle as `io_dtype` when that is 8-bit; otherwise an input
    that only partitions of one 8-bit dtype read, and an output computed in 8 bits, in that dtype (the runtime
    converts at the model boundary, as it applies the layout permutation there). The TensorInfo follows."""
    g = module.graph
    for infos, values, is_input in ((module.inputs, g.inputs, True), (module.outputs, g.outputs, False)):
        for info in infos:
            old = forms.values[info.value]
            if old.dtype != "float32":
                continue
            if io_dtype in QUANTIZED:
                want = io_dtype
            else:
                forms_of = [v for v in _all_forms(forms, info.value) if (v.uses if is_input else v.producer is not None)]
                dtypes = {v.dtype for v in forms_of}
                if len(dtypes) != 1 or next(iter(dtypes)) not in QUANTIZED:
                    continue
                want = dtypes.pop()
            new = forms.get(info.value, want)
            values[values.index(old)] = new
            info.value = new.name


def _convert(module: Module, src: Value, dst: Value) -> int:
    """Add the conversion src -> dst where it belongs; a model input read in several partitions is converted
    in each of them (one twin of `dst` per extra partition). Returns the number of conversion nodes added."""
    g = module.graph
    readers = list(dict.fromkeys(u.partition for u, _ in dst.uses))
    parts = {p.name: p for p in module.partitions}
    if src.producer is None:  # a model input: the host runs no ops
        targets = [dst]
        for k, reader in enumerate(readers[1:], start=1):
            twin = Value(f"{dst.name}.{k}", dst.shape, dst.dtype, quant=dst.quant)
            for user, idx in list(dst.uses):
                if user.partition == reader:
                    user.set_input(idx, twin)
            targets.append(twin)
        for reader, target in zip(readers, targets):
            _insert(g, src, target, parts[str(reader)], before=next(u for u, _ in target.uses))
        return len(targets)
    host = parts[str(src.producer.partition)]
    consumers = [parts[str(r)].processor for r in readers] + ([HOST] if dst in g.outputs else [])
    if converts_in_producer(host.processor, consumers, src.dtype, dst.dtype):
        _insert(g, src, dst, host, after=src.producer)
    else:
        _insert(g, src, dst, parts[str(readers[0])], before=next(u for u, _ in dst.uses))
    return 1


def _insert(g: Graph, src: Value, dst: Value, part, *, after: Node | None = None, before: Node | None = None) -> None:  # type: ignore[no-untyped-def]
    node = conversion(src, dst)
    anchor = after if after is not None else before
    assert anchor is not None
    node.region, node.processor, node.precision, node.partition = anchor.region, part.processor, part.precision, part.name
    if after is not None:
        g.insert_after(after, node)
    else:
        g.nodes.insert(g.nodes.index(before), node)


def _topo_sort(nodes: list[Node]) -> list[Node]:
    """A topological order that keeps the given order wherever it is already valid (iterative)."""
    producer = {id(v): n for n in nodes for v in n.outputs}
    done: set[int] = set()
    order: list[Node] = []
    for start in nodes:
        stack = [(start, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in done:
                continue
            if expanded:
                done.add(id(node))
                order.append(node)
                continue
            stack.append((node, True))
            for v in reversed(node.inputs):
                if v is not None and id(v) in producer and id(producer[id(v)]) not in done:
                    stack.append((producer[id(v)], False))
    return order
