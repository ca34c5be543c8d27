"""The stretchc IR: a small mutable dataflow graph with typed fields and use lists kept by the IR itself.

- `Value`: a tensor (name, shape, dtype, optional quantization, optional constant data), its producer and
  its uses. Uses are maintained by `Node` construction, `Node.set_input` and `Graph.replace_all_uses`;
  nothing else may touch them.
- `Node`: an op with a dialect prefix (`tfl.CONV_2D`, `stretch.sync`), inputs (a `None` input is an omitted
  optional operand), outputs, attributes (the op's builtin options as plain values), and the fields the
  passes fill in: `region`, `processor`, `precision` (the dtype the op computes in: one of `PRECISIONS`),
  `partition`; `loc` is where the op came from: the name of the ONNX tensor it computes, or None (see
  `stretchc/frontend/module.py`). A pass that replaces a node by several gives each the original `loc`; the
  last of them in graph order is the one whose first output holds that ONNX tensor (`holders`); a
  conversion to another dtype (QUANTIZE, DEQUANTIZE) has no `loc` and holds what its input holds.
- `Graph`: nodes in execution (topological) order, graph inputs and outputs.
- `Module`: the graph plus what the passes derive (regions, partitions, sync points, buffer plan) and the
  model's I/O description (ONNX names and layouts).

`Module.verify()` checks every structural invariant; the pass manager calls it after every pass.

The IR is the bottom layer of the compiler: it imports no other stretchc module (which processors exist is the
backends' to say, `stretchc.backends`; `verify` is told them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Iterable, Iterator, Sequence

import numpy as np

DTYPE_SIZES = {"float32": 4, "float16": 2, "int32": 4, "int64": 8, "int8": 1, "uint8": 1, "int16": 2, "bool": 1}
# The dtypes a node or partition computes in (what each means, and the policies that choose among them:
# stretchc/precision.py).
PRECISIONS = ("float32", "float16", "int8", "uint8")
# The runtime's side of the bundle's model inputs and outputs, named where a partition would be: the producer of a
# model input's sync point, a consumer of a model output's, and where a conversion at the model boundary runs.
HOST = "host"


class IRError(Exception):
    """An IR invariant does not hold (a bug in a pass or the importer)."""


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization `real = (q - zero_point) * scale`; per-axis when `len(scale) > 1`."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_axis(self) -> bool:
        return len(self.scale) > 1


class Value:
    """A tensor in the graph. Constants carry `data`; everything else is produced by a node or is a graph input."""

    __slots__ = ("name", "shape", "dtype", "quant", "data", "producer", "uses")

    def __init__(
        self,
        name: str,
        shape: Iterable[int],
        dtype: str,
        *,
        quant: QuantParams | None = None,
        data: np.ndarray | None = None,
    ) -> None:
        if dtype not in DTYPE_SIZES:
            raise IRError(f"value {name!r}: unsupported dtype {dtype!r}")
        self.name = name
        self.shape: tuple[int, ...] = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.quant = quant
        self.data = data
        self.producer: Node | None = None
        self.uses: list[tuple[Node, int]] = []

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * DTYPE_SIZES[self.dtype] if self.shape else DTYPE_SIZES[self.dtype]

    @property
    def users(self) -> list[Node]:
        """Distinct consumer nodes, in use order."""
        seen: dict[int, Node] = {}
        for node, _ in self.uses:
            seen.setdefault(id(node), node)
        return list(seen.values())

    def __repr__(self) -> str:
        return f"Value({self.name!r}, {self.dtype}{list(self.shape)})"


def const_input(node: Node, i: int) -> bool:
    """Whether input `i` of `node` exists and is a constant (weights, static parameters)."""
    return i < len(node.inputs) and node.inputs[i] is not None and node.inputs[i].is_const  # type: ignore[union-attr]


def groups_of(node: Node) -> int:
    """The number of groups of a CONV_2D (1 when it is not grouped or not a float NHWC conv we can split): the
    convolutions ungroup-convs splits it into, which the cost model counts as its kernel launches."""
    if node.kind != "CONV_2D" or len(node.inputs) < 2:
        return 1
    x, w = node.inputs[0], node.inputs[1]
    if x is None or w is None or len(x.shape) != 4 or len(w.shape) != 4 or w.shape[3] in (0, x.shape[3]):
        return 1
    if x.shape[3] % w.shape[3] or w.shape[0] % (x.shape[3] // w.shape[3]):
        return 1
    return x.shape[3] // w.shape[3]


class Node:
    """One op. Construct with inputs and outputs; the node registers itself as their user and producer."""

    __slots__ = ("op", "inputs", "outputs", "attrs", "region", "processor", "precision", "partition", "lane", "loc")

    def __init__(
        self,
        op: str,
        inputs: Iterable[Value | None],
        outputs: Iterable[Value],
        attrs: dict[str, object] | None = None,
        *,
        loc: str | None = None,
    ) -> None:
        if "." not in op:
            raise IRError(f"op {op!r} lacks a dialect prefix")
        self.op = op
        self.inputs: list[Value | None] = list(inputs)
        self.outputs: list[Value] = list(outputs)
        self.attrs: dict[str, object] = dict(attrs or {})
        self.region: str | None = None
        self.processor: str | None = None
        self.precision: str | None = None
        self.partition: str | None = None
        self.lane: int | None = None  # its processor's lane, when the processor has several (None: the first)
        self.loc = loc
        for i, v in enumerate(self.inputs):
            if v is not None:
                v.uses.append((self, i))
        for v in self.outputs:
            if v.producer is not None:
                raise IRError(f"value {v.name!r} already has a producer")
            v.producer = self

    @property
    def kind(self) -> str:
        """The op name without its dialect, e.g. CONV_2D."""
        return self.op.split(".", 1)[1]

    @property
    def name(self) -> str:
        """A stable name for messages: the first output's name."""
        return self.outputs[0].name if self.outputs else self.op

    def set_input(self, index: int, value: Value | None) -> None:
        old = self.inputs[index]
        if old is not None:
            old.uses.remove((self, index))
        self.inputs[index] = value
        if value is not None:
            value.uses.append((self, index))

    def detach(self) -> None:
        """Drop this node's uses and producer links (call before removing it from the graph)."""
        for i, v in enumerate(self.inputs):
            if v is not None:
                v.uses.remove((self, i))
        for v in self.outputs:
            v.producer = None

    def __repr__(self) -> str:
        return f"Node({self.op}, {self.name!r})"


@dataclass
class Region:
    """A piece of the fork/join structure found by find-branches.

    kind: "stem" (before the first stage's branches), "branch", "join" (a stage's join and the trunk after
    it up to the next stage), "head" (after the last join), or "main" (a model with no branches).
    """

    name: str
    kind: str
    stage: int | None = None
    branch: int | None = None


@dataclass
class Partition:
    """A contiguous piece of the graph that runs on one processor, at one precision, as one TFLite model."""

    name: str
    processor: str
    regions: list[str]
    inputs: list[str] = field(default_factory=list)  # boundary value names, in order
    outputs: list[str] = field(default_factory=list)
    precision: str = "float32"
    lane: int = 0  # which of its processor's lanes runs it (`lane_name`): a processor may run several partitions at once


def lane_name(processor: str, lane: int) -> str:
    """A lane's name: the processor's own for its first lane, `<processor>.<lane>` for the others."""
    return processor if lane == 0 else f"{processor}.{lane}"


@dataclass
class SyncPoint:
    """A boundary value: one producer (a partition, or `HOST` for a model input) and its consumers (partitions, and
    `HOST` for a model output)."""

    name: str
    value: str
    producer: str
    consumers: list[str]
    slot: str
    kind: str  # "fork" (one producer, several consumers), "join" (feeds a node with several producers' inputs), "edge"


@dataclass
class BufferSlot:
    """A region of the shared arena. Several sync points may alias one slot when their lifetimes do not overlap."""

    name: str
    offset: int
    size: int
    dtype: str
    shape: tuple[int, ...]


@dataclass
class TensorInfo:
    """A model input or output as the ONNX model sees it, and how the bundle's tensor relates to it."""

    name: str  # ONNX name
    value: str  # IR value name
    shape: tuple[int, ...]  # ONNX shape
    dtype: str
    layout: str  # "NCHW" when the bundle tensor is NHWC and the runtime transposes; "as-is" otherwise
    perm: tuple[int, ...] | None = None  # ONNX -> bundle permutation when layout != "as-is"
    # An output a concatenation writes: the sizes of its parts along `part_axis` (ONNX layout), each held to the
    # accuracy bound by itself (stretchc/frontend/parts.py); () for a tensor of one part.
    parts: tuple[int, ...] = ()
    part_axis: int = 0

    def part_cuts(self, *, bundle: bool) -> list[tuple[str, tuple[slice, ...]]]:
        """`output_parts` of this tensor, selecting in the ONNX layout or with `bundle` in the bundle's ([] for one part)."""
        if len(self.parts) < 2:
            return []
        axis = self.perm.index(self.part_axis) if bundle and self.perm is not None else self.part_axis
        return output_parts(self.name, self.part_axis, self.parts, at=axis)


def output_parts(name: str, axis: int, sizes: Sequence[int], *, at: int | None = None) -> list[tuple[str, tuple[slice, ...]]]:
    """Each of `sizes` consecutive parts along ONNX axis `axis` of output `name`: its check's name,
    `NAME[start:stop]@axis`, and the index tuple selecting it along axis `at` (default `axis`) of an array."""
    out, start = [], 0
    for size in sizes:
        cut = (slice(None),) * (axis if at is None else at) + (slice(start, start + size),)
        out.append((f"{name}[{start}:{start + size}]@{axis}", cut))
        start += size
    return out


class Graph:
    """Nodes in execution order, plus graph inputs and outputs."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []

    def values(self) -> Iterator[Value]:
        """Every value once: inputs, then node inputs (constants) and outputs in node order."""
        seen: set[int] = set()
        for v in self.inputs:
            if id(v) not in seen:
                seen.add(id(v))
                yield v
        for node in self.nodes:
            for v in [*node.inputs, *node.outputs]:
                if v is not None and id(v) not in seen:
                    seen.add(id(v))
                    yield v

    def value_map(self) -> dict[str, Value]:
        return {v.name: v for v in self.values()}

    def holders(self) -> dict[str, str]:
        """Value name -> the ONNX tensor it holds: the first output of the last node with each `loc`; and the
        output of a QUANTIZE or DEQUANTIZE without a `loc` (a planned dtype conversion) what its input holds."""
        last: dict[str, Node] = {}
        for node in self.nodes:
            if node.loc is not None and node.outputs:
                last[node.loc] = node
        held = {node.outputs[0].name: loc for loc, node in last.items()}
        for node in self.nodes:  # graph order: a conversion's input is held before its output is
            if node.loc is None and node.kind in ("QUANTIZE", "DEQUANTIZE") and node.inputs[0] is not None and node.inputs[0].name in held:
                held[node.outputs[0].name] = held[node.inputs[0].name]
        return held

    def insert_after(self, anchor: Node, node: Node) -> None:
        self.nodes.insert(self.nodes.index(anchor) + 1, node)

    def replace_all_uses(self, old: Value, new: Value, *, except_node: Node | None = None) -> None:
        for node, idx in list(old.uses):
            if node is not except_node:
                node.set_input(idx, new)
        if except_node is None:
            self.outputs = [new if o is old else o for o in self.outputs]

    def remove(self, node: Node) -> None:
        node.detach()
        self.nodes.remove(node)


@dataclass
class Module:
    """A graph and everything the pipeline has derived about it so far."""

    graph: Graph
    name: str = "model"
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    partitions: list[Partition] = field(default_factory=list)
    sync_points: list[SyncPoint] = field(default_factory=list)
    buffers: list[BufferSlot] = field(default_factory=list)
    arena_size: int = 0

    def region(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    def partition(self, name: str) -> Partition:
        for p in self.partitions:
            if p.name == name:
                return p
        raise KeyError(name)

    def nodes_of(self, *, region: str | None = None, partition: str | None = None) -> list[Node]:
        return [
            n
            for n in self.graph.nodes
            if (region is None or n.region == region) and (partition is None or n.partition == partition)
        ]

    def verify(self, processors: Collection[str] | None = None) -> None:
        """Raise IRError if any invariant is broken. `processors`: the names a node's or partition's processor
        may take (the pass manager gives the backends', `stretchc.backends.processors()`); None leaves the
        names unchecked."""
        g = self.graph
        defined: set[int] = {id(v) for v in g.inputs}
        names: dict[str, int] = {}
        node_ids = {id(n) for n in g.nodes}
        if len(node_ids) != len(g.nodes):
            raise IRError("a node appears twice in the graph")
        for v in g.inputs:
            if v.producer is not None:
                raise IRError(f"graph input {v.name!r} has a producer")
        for node in g.nodes:
            for i, v in enumerate(node.inputs):
                if v is None:
                    continue
                if not v.is_const and id(v) not in defined:
                    raise IRError(f"{node.op} {node.name!r}: input {i} {v.name!r} is used before it is defined")
                if (node, i) not in v.uses:
                    raise IRError(f"{node.op} {node.name!r}: missing use record on {v.name!r}")
            for v in node.outputs:
                if v.producer is not node:
                    raise IRError(f"value {v.name!r}: producer link is wrong")
                if v.is_const:
                    raise IRError(f"value {v.name!r}: a produced value cannot hold constant data")
                defined.add(id(v))
            if node.processor is not None and processors is not None and node.processor not in processors:
                raise IRError(f"{node.name!r}: unknown processor {node.processor!r}")
            if node.precision is not None and node.precision not in PRECISIONS:
                raise IRError(f"{node.name!r}: unknown precision {node.precision!r}")
        for v in g.values():
            prev = names.setdefault(v.name, id(v))
            if prev != id(v):
                raise IRError(f"two values are named {v.name!r}")
            for user, idx in v.uses:
                if id(user) not in node_ids:
                    raise IRError(f"value {v.name!r} is used by a node outside the graph")
                if user.inputs[idx] is not v:
                    raise IRError(f"value {v.name!r}: stale use record")
            if v.producer is not None and id(v.producer) not in node_ids:
                raise IRError(f"value {v.name!r} is produced by a node outside the graph")
        for v in g.outputs:
            if id(v) not in defined:
                raise IRError(f"graph output {v.name!r} is never produced")
        region_names = {r.name for r in self.regions}
        if len(region_names) != len(self.regions):
            raise IRError("duplicate region names")
        for node in g.nodes:
            if self.regions and node.region not in region_names and node.op != "stretch.sync":
                raise IRError(f"{node.name!r} is in no region")
        part_names = {p.name for p in self.partitions}
        for node in g.nodes:
            if self.partitions and node.op != "stretch.sync" and node.partition not in part_names:
                raise IRError(f"{node.name!r} is in no partition")
        for p in self.partitions:
            if processors is not None and p.processor not in processors:
                raise IRError(f"partition {p.name!r}: unknown processor {p.processor!r}")
            if p.precision not in PRECISIONS:
                raise IRError(f"partition {p.name!r}: unknown precision {p.precision!r}")
        end = 0
        for b in sorted(self.buffers, key=lambda b: b.offset):
            if b.offset % 64:
                raise IRError(f"buffer slot {b.name!r} is not 64-byte aligned")
            end = max(end, b.offset + b.size)
        if self.buffers and end > self.arena_size:
            raise IRError("buffer plan exceeds the arena")


def boundary(module: Module, partition: str) -> tuple[list[str], list[str]]:
    """(inputs, outputs) value names of `partition`, in first-use order: the non-constant values its nodes read
    that are produced elsewhere (or are model inputs), and the values it produces that are read elsewhere (or
    are model outputs)."""
    nodes = [n for n in module.graph.nodes if n.partition == partition]
    produced = {id(v) for n in nodes for v in n.outputs}
    inputs: list[str] = []
    for n in nodes:
        for v in n.inputs:
            if v is not None and not v.is_const and id(v) not in produced and v.name not in inputs:
                inputs.append(v.name)
    graph_outputs = {id(v) for v in module.graph.outputs}
    outputs: list[str] = []
    for n in nodes:
        for v in n.outputs:
            used_outside = any(u.partition != partition for u, _ in v.uses)
            if (used_outside or id(v) in graph_outputs) and v.name not in outputs:
                outputs.append(v.name)
    return inputs, outputs
