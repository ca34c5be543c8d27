"""Deterministic text form of a Module, one line per node, and its parser.

The same module always prints to the same bytes. `parse_module(print_module(m))` gives back a module that
prints identically, so a dump can be read back as test input. Constants with more than
`INLINE_CONST_LIMIT` elements are printed as a digest only (`sha256:` and the first 16 hex digits of the
SHA-256 of their bytes), which keeps the text small and diffable. Their data lives in a `ConstantStore`, a
folder of content-addressed files (`--dump-dir` writes one, `constants/`, next to its dumps); given that
folder, the parser restores the real data. Without it, the parser fills them with zeros that remember the
digest, so they print back unchanged (enough for structure passes and structure tests).

Lines starting with `#` are comments; a `reproducer {...}` line (see stretchc/reproducer.py) describes how
the module was made and is skipped by the parser.

    # stretchc IR v1
    module "example"
    input %input: f32[1,64,64,3] {"dtype":"float32","layout":"NCHW","name":"input","perm":[0,2,3,1],"shape":[1,3,64,64]}
    const %c3: f32[16] = [0.5, ...]
    const %c4: f32[16,3,3,3] = sha256:0123456789abcdef
    %v5: f32[1,32,32,16] = tfl.CONV_2D(%input, %c4, %c3) {"options":"Conv2DOptions",...} region=stem processor=cpu loc="..."
    output %logits {...}
    region {"kind":"stem","name":"stem",...}
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import numpy as np

from stretchc.errors import StretchError
from stretchc.ir import BufferSlot, Graph, Module, Node, Partition, QuantParams, Region, SyncPoint, TensorInfo, Value

HEADER = "# stretchc IR v1"
INLINE_CONST_LIMIT = 16
_SHORT = {"float32": "f32", "float16": "f16", "int32": "i32", "int64": "i64", "int8": "i8", "uint8": "u8", "int16": "i16", "bool": "i1"}
_LONG = {v: k for k, v in _SHORT.items()}


# A node's tags, printed `key=value` after its attributes when set (`lane` only for a processor's second lane on).
NODE_TAGS = ("region", "processor", "precision", "partition", "lane")


def _partition_dict(p: Partition) -> dict[str, object]:
    """A partition's fields for its line: `lane` only when it is not the processor's first, as a node's tag."""
    d = asdict(p)
    if not p.lane:
        del d["lane"]
    return d


def _j(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _type(v: Value) -> str:
    text = f"{_SHORT[v.dtype]}[{','.join(str(d) for d in v.shape)}]"
    if v.quant is not None:
        scales = ",".join(repr(float(s)) for s in v.quant.scale)
        zps = ",".join(str(z) for z in v.quant.zero_point)
        axis = f"@{v.quant.axis}" if v.quant.per_axis else ""
        text += f"q({scales}:{zps}{axis})"
    return text


class _ElidedConst(np.ndarray):
    """Zeros standing in for a constant printed as a digest; remembers the digest so it prints back the same."""

    digest: str

    def __array_finalize__(self, obj: object) -> None:
        self.digest = getattr(obj, "digest", "")


def content_digest(data: bytes) -> str:
    """The short content address used in IR text and constant stores: 16 hex digits of the SHA-256."""
    return hashlib.sha256(data).hexdigest()[:16]


def _const(v: Value) -> str:
    assert v.data is not None
    if isinstance(v.data, _ElidedConst) and v.data.digest:
        return f"sha256:{v.data.digest}"
    if v.data.size <= INLINE_CONST_LIMIT:
        return _j([x.item() for x in v.data.reshape(-1)])
    return f"sha256:{content_digest(np.ascontiguousarray(v.data).tobytes())}"


class ConstantStore:
    """A folder of content-addressed data: `<digest><suffix>` (`.bin`: an array's raw bytes, C order, this
    machine's byte order; `.json`: a document). Each content is written once, however many dumps share it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str, suffix: str = ".bin") -> Path:
        return self.root / f"{digest}{suffix}"

    def put(self, data: bytes, suffix: str = ".bin") -> str:
        """Store `data` unless already there; return its digest."""
        digest = content_digest(data)
        path = self.path(digest, suffix)
        if not path.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)  # a reader never sees a half-written file under its final name
        return digest

    def put_array(self, data: np.ndarray) -> str:
        return self.put(np.ascontiguousarray(data).tobytes())

    def get(self, digest: str, suffix: str = ".bin") -> bytes:
        """The stored content; StretchError("bad-ir") when it is missing or does not match its digest."""
        path = self.path(digest, suffix)
        try:
            data = path.read_bytes()
        except OSError:
            raise StretchError("bad-ir", f"constant store has no sha256:{digest} (was the dump copied without its constants/ folder?)", file=str(path)) from None
        if content_digest(data) != digest:
            raise StretchError("bad-ir", f"stored content does not match its digest sha256:{digest}", file=str(path))
        return data

    def get_array(self, digest: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        data = self.get(digest)
        expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if len(data) != expected:
            raise StretchError("bad-ir", f"sha256:{digest} holds {len(data)} bytes; a {dtype}{list(shape)} needs {expected}", file=str(self.path(digest)))
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def elided_constants(module: Module) -> Iterator[np.ndarray]:
    """The data of every constant that prints as a digest (what a dump's constant store must hold).

    Zeros standing in for constants parsed without their store are skipped: their real data is unknown.
    """
    seen: set[int] = set()
    for node in module.graph.nodes:
        for v in node.inputs:
            if v is None or v.data is None or id(v) in seen:
                continue
            seen.add(id(v))
            if v.data.size > INLINE_CONST_LIMIT and not isinstance(v.data, _ElidedConst):
                yield v.data


def has_missing_constants(module: Module) -> bool:
    """Whether some constant was parsed without its data (zeros standing in; see `parse_module`)."""
    return any(isinstance(v.data, _ElidedConst) for v in module.graph.values() if v.data is not None)


def print_module(module: Module) -> str:
    """The module as deterministic text (see the module docstring for the format)."""
    g = module.graph
    lines = [HEADER, f"module {_j(module.name)}"]
    infos = {t.value: t for t in module.inputs}
    for v in g.inputs:
        info = infos.get(v.name)
        lines.append(f"input %{v.name}: {_type(v)}" + (f" {_j(_info_dict(info))}" if info else ""))
    seen: set[int] = set()
    for node in g.nodes:
        for v in node.inputs:
            if v is not None and v.is_const and id(v) not in seen:
                seen.add(id(v))
                lines.append(f"const %{v.name}: {_type(v)} = {_const(v)}")
    for node in g.nodes:
        outs = ", ".join(f"%{v.name}: {_type(v)}" for v in node.outputs)
        args = ", ".join(f"%{v.name}" if v is not None else "_" for v in node.inputs)
        line = f"{outs} = {node.op}({args}) {_j(node.attrs)}"
        for key in NODE_TAGS:
            val = getattr(node, key)
            if val is not None:
                line += f" {key}={val}"
        if node.loc is not None:
            line += f" loc={_j(node.loc)}"
        lines.append(line)
    out_infos = {t.value: t for t in module.outputs}
    for v in g.outputs:
        info = out_infos.get(v.name)
        lines.append(f"output %{v.name}" + (f" {_j(_info_dict(info))}" if info else ""))
    lines += [f"region {_j(asdict(r))}" for r in module.regions]
    lines += [f"partition {_j(_partition_dict(p))}" for p in module.partitions]
    lines += [f"sync {_j(asdict(s))}" for s in module.sync_points]
    lines += [f"buffer {_j(asdict(b))}" for b in module.buffers]
    if module.buffers:
        lines.append(f"arena {module.arena_size}")
    return "\n".join(lines) + "\n"


def _info_dict(info: TensorInfo) -> dict[str, object]:
    d = asdict(info)
    del d["value"]
    if not info.parts:  # a tensor of one part (most): its line as before parts existed
        del d["parts"], d["part_axis"]
    return d


_TYPE_RE = re.compile(r"^(\w+)\[([\d,]*)\](?:q\(([^:]*):([^@)]*)(?:@(\d+))?\))?$")
_DEF_RE = re.compile(r"^%(\S+?): (\S+)$")
_NODE_RE = re.compile(r"^(?P<outs>.*?) = (?P<op>[\w.]+)\((?P<args>[^)]*)\) (?P<attrs>\{.*?\})(?P<rest>(?: (?:region|processor|precision|partition|lane)=\S+)*)(?: loc=(?P<loc>\".*\"))?$")


def _parse_type(text: str, where: str) -> tuple[str, tuple[int, ...], QuantParams | None]:
    m = _TYPE_RE.match(text)
    if not m or m.group(1) not in _LONG:
        raise StretchError("bad-ir", f"{where}: bad type {text!r}")
    shape = tuple(int(d) for d in m.group(2).split(",") if d)
    quant = None
    if m.group(3) is not None:
        quant = QuantParams(
            scale=tuple(float(s) for s in m.group(3).split(",")),
            zero_point=tuple(int(z) for z in m.group(4).split(",")),
            axis=int(m.group(5) or 0),
        )
    return _LONG[m.group(1)], shape, quant


def parse_module(text: str, *, file: str | None = None, constants: Path | None = None) -> Module:
    """Parse the text form back into a Module. Raises StretchError("bad-ir") naming the line.

    With `constants` (a `ConstantStore` folder), constants printed as digests get their real data back;
    without it they are zeros that remember their digest.
    """
    store = ConstantStore(constants) if constants is not None else None
    lines = text.splitlines()
    if not lines or lines[0] != HEADER:
        raise StretchError("bad-ir", f"missing header {HEADER!r}", file=file)
    graph = Graph()
    module = Module(graph=graph)
    values: dict[str, Value] = {}

    def lookup(name: str, where: str) -> Value:
        if name not in values:
            raise StretchError("bad-ir", f"{where}: undefined value %{name}", file=file)
        return values[name]

    for lineno, line in enumerate(lines[1:], start=2):
        where = f"line {lineno}"
        try:
            head, _, rest = line.partition(" ")
            if not line.strip() or line.startswith("#"):
                continue
            if head == "module":
                module.name = json.loads(rest)
            elif head == "input":
                decl, _, info = rest.partition(" {")
                name, vtype = _DEF_RE.match(decl).groups()  # type: ignore[union-attr]
                dtype, shape, quant = _parse_type(vtype, where)
                values[name] = v = Value(name, shape, dtype, quant=quant)
                graph.inputs.append(v)
                if info:
                    module.inputs.append(_info_from(json.loads("{" + info), name))
            elif head == "const":
                decl, _, init = rest.partition(" = ")
                name, vtype = _DEF_RE.match(decl).groups()  # type: ignore[union-attr]
                dtype, shape, quant = _parse_type(vtype, where)
                if init.startswith("sha256:") and store is not None:
                    data = store.get_array(init[len("sha256:") :], dtype, shape)
                elif init.startswith("sha256:"):
                    data = np.zeros(shape, dtype=dtype).view(_ElidedConst)
                    data.digest = init[len("sha256:") :]
                else:
                    data = np.array(json.loads(init), dtype=dtype).reshape(shape)
                values[name] = Value(name, shape, dtype, quant=quant, data=data)
            elif head == "output":
                name, _, info = rest.partition(" ")
                graph.outputs.append(lookup(name.lstrip("%"), where))
                if info:
                    module.outputs.append(_info_from(json.loads(info), name.lstrip("%")))
            elif head == "region":
                module.regions.append(Region(**json.loads(rest)))
            elif head == "partition":
                module.partitions.append(Partition(**json.loads(rest)))
            elif head == "sync":
                module.sync_points.append(SyncPoint(**json.loads(rest)))
            elif head == "buffer":
                d = json.loads(rest)
                d["shape"] = tuple(d["shape"])
                module.buffers.append(BufferSlot(**d))
            elif head == "arena":
                module.arena_size = int(rest)
            elif head.startswith("%"):
                graph.nodes.append(_parse_node(line, values, lookup, where))
            elif head == "reproducer":
                continue  # how the module was made (stretchc/reproducer.py), not part of it
            else:
                raise StretchError("bad-ir", f"{where}: unknown line kind {head!r}")
        except StretchError as err:
            raise StretchError("bad-ir", err.message, file=err.location.file or file) from None
        except (ValueError, AttributeError, TypeError, KeyError) as exc:
            raise StretchError("bad-ir", f"{where}: cannot parse ({exc})", file=file) from None
    return module


def _info_from(d: dict[str, object], value: str) -> TensorInfo:
    perm = d.get("perm")
    return TensorInfo(
        name=str(d["name"]),
        value=value,
        shape=tuple(d["shape"]),  # type: ignore[arg-type]
        dtype=str(d["dtype"]),
        layout=str(d["layout"]),
        perm=tuple(perm) if perm is not None else None,  # type: ignore[arg-type]
        parts=tuple(d.get("parts", ())),  # type: ignore[arg-type]
        part_axis=int(d.get("part_axis", 0)),  # type: ignore[call-overload]
    )


def _parse_node(line: str, values: dict[str, Value], lookup, where: str) -> Node:  # type: ignore[no-untyped-def]
    m = _NODE_RE.match(line)
    if not m:
        raise StretchError("bad-ir", f"{where}: malformed node line")
    ins: list[Value | None] = []
    for arg in (a.strip() for a in m.group("args").split(",") if a.strip()):
        ins.append(None if arg == "_" else lookup(arg.lstrip("%"), where))
    outs = []
    for decl in m.group("outs").split(", "):
        name, vtype = _DEF_RE.match(decl).groups()  # type: ignore[union-attr]
        dtype, shape, quant = _parse_type(vtype, where)
        if name in values:
            raise StretchError("bad-ir", f"{where}: %{name} is defined twice")
        values[name] = v = Value(name, shape, dtype, quant=quant)
        outs.append(v)
    loc = json.loads(m.group("loc")) if m.group("loc") else None
    node = Node(m.group("op"), ins, outs, json.loads(m.group("attrs")), loc=loc)
    for field in m.group("rest").split():
        key, _, val = field.partition("=")
        setattr(node, key, int(val) if key == "lane" else val)
    return node
