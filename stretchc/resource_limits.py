"""Resource limits, checked before the lowering so that TensorFlow never sees a model this machine cannot hold.

`--limit KEY=N` (repeatable; N an integer, optionally with a K/M/G/T suffix of powers of 1024) overrides:

- `input-elements`: all model inputs together (default 2^28, 1 GiB of float32);
- `tensor-bytes`: any one tensor (input, output, intermediate, initializer) with a known shape (default
  2 GiB - 1: TFLite sizes tensors with 32-bit integers);
- `arena-bytes`: the bundle's arena of boundary tensors (default and maximum 4 GiB, what the runtimes
  accept: `schemas/bundle_rules.json` limits.arena_bytes); before the lowering the model's inputs (or its
  outputs) together, which all live in the arena at once, must fit; after the passes, the planned arena;
- `memory-bytes`: every tensor of the model together (default: half of this machine's physical memory).

A model over a limit is refused with `resource-limit` (exit 4), naming the tensor and the limit.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields, replace
from typing import Iterator

import onnx

from stretchc.bundle.format import limits as bundle_limits
from stretchc.errors import StretchError

_ONNX_ITEMSIZE = {
    onnx.TensorProto.FLOAT: 4, onnx.TensorProto.FLOAT16: 2, onnx.TensorProto.BFLOAT16: 2, onnx.TensorProto.DOUBLE: 8,
    onnx.TensorProto.INT8: 1, onnx.TensorProto.UINT8: 1, onnx.TensorProto.INT16: 2, onnx.TensorProto.UINT16: 2,
    onnx.TensorProto.INT32: 4, onnx.TensorProto.UINT32: 4, onnx.TensorProto.INT64: 8, onnx.TensorProto.UINT64: 8,
    onnx.TensorProto.BOOL: 1,
}  # others (strings, complex): counted as 8 bytes per element
_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _runtime_arena_bytes() -> int:
    return bundle_limits()["arena_bytes"]


def _half_of_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError):
        return 8 << 30


@dataclass(frozen=True)
class ResourceLimits:
    """The limits a compile checks (see the module docstring); fields are the --limit keys, in snake case."""

    input_elements: int = 1 << 28
    tensor_bytes: int = (1 << 31) - 1
    arena_bytes: int = field(default_factory=_runtime_arena_bytes)
    memory_bytes: int = field(default_factory=_half_of_memory)


def parse_limits(specs: list[str]) -> ResourceLimits:
    """`--limit KEY=N` options over the defaults."""
    keys = {f.name.replace("_", "-"): f.name for f in fields(ResourceLimits)}
    out = ResourceLimits()
    for spec in specs:
        key, eq, value = spec.partition("=")
        m = re.fullmatch(r"(\d+)([KMGT]?)", value.strip().upper())
        if not eq or key not in keys or m is None or int(m.group(1)) == 0:
            raise StretchError("usage", f"--limit {spec!r}: expected KEY=N with KEY one of {', '.join(keys)} and N a positive integer (suffix K, M, G or T)")
        n = int(m.group(1)) * _SUFFIX[m.group(2)]
        if keys[key] == "arena_bytes" and n > _runtime_arena_bytes():
            raise StretchError("usage", f"--limit arena-bytes={value}: the runtimes accept at most {_runtime_arena_bytes()} bytes")
        out = replace(out, **{keys[key]: n})
    return out


def _shape(vi: onnx.ValueInfoProto) -> list[int] | None:
    if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    dims = vi.type.tensor_type.shape.dim
    return None if any(not d.HasField("dim_value") for d in dims) else [d.dim_value for d in dims]


def _tensors(model: onnx.ModelProto) -> Iterator[tuple[str, str, list[int], int]]:
    """(kind, name, shape, itemsize) of every tensor whose shape is known, each name once."""
    g = model.graph
    seen: set[str] = set()
    inits = {t.name for t in g.initializer}
    for kind, infos in (("input", [i for i in g.input if i.name not in inits]), ("output", g.output), ("tensor", g.value_info)):
        for vi in infos:
            shape = _shape(vi)
            if shape is not None and vi.name not in seen:
                seen.add(vi.name)
                yield kind, vi.name, shape, _ONNX_ITEMSIZE.get(vi.type.tensor_type.elem_type, 8)
    for t in g.initializer:
        if t.name not in seen:
            seen.add(t.name)
            yield "initializer", t.name, list(t.dims), _ONNX_ITEMSIZE.get(t.data_type, 8)


def check_model(model: onnx.ModelProto, limits: ResourceLimits, *, file: str) -> None:
    """Refuse, before any lowering, a model over a limit (shapes already static and inferred)."""

    def over(what: str, amount: int, key: str, limit: int) -> StretchError:
        return StretchError("resource-limit", f"{what} is {amount:,}, above the limit {limit:,} (--limit {key}=N to change it)", file=file)

    tensors = list(_tensors(model))
    elements = sum(math.prod(shape) for kind, _, shape, _ in tensors if kind == "input")
    if elements > limits.input_elements:
        raise over("the number of input elements", elements, "input-elements", limits.input_elements)
    for kind, name, shape, itemsize in tensors:
        size = math.prod(shape) * itemsize
        if size > limits.tensor_bytes:
            raise over(f"{kind} {name!r} {shape}: its size in bytes", size, "tensor-bytes", limits.tensor_bytes)
    for kind in ("input", "output"):
        together = sum(math.prod(s) * i for k, _, s, i in tensors if k == kind)
        if together > limits.arena_bytes:
            raise over(f"the bytes of all model {kind}s, which share the arena", together, "arena-bytes", limits.arena_bytes)
    total = sum(math.prod(s) * i for _, _, s, i in tensors)
    if total > limits.memory_bytes:
        raise over("the bytes of all the model's tensors", total, "memory-bytes", limits.memory_bytes)


def check_arena(arena_size: int, limits: ResourceLimits, *, file: str) -> None:
    """Refuse a planned arena over the limit (after the passes, before the bundle is installed)."""
    if arena_size > limits.arena_bytes:
        raise StretchError(
            "resource-limit", f"the bundle's arena is {arena_size:,} bytes, above the limit {limits.arena_bytes:,} (--limit arena-bytes=N)", file=file
        )
