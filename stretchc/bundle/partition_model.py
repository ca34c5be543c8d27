"""A partition's model as a runtime loads it: rule `partition-tensors` of `schemas/bundle_rules.json`.

`load_partition` loads one partition file with LiteRT, as the host runtime runs it (LiteRT's flatbuffer
verifier, its op registrations (an unknown or custom op is refused here) and every op's prepare step), then
reads the flatbuffer for what LiteRT takes on trust until a kernel runs: every buffer that declares bytes of
the file (offset and size) lies inside the file, and every tensor an op reads is a model input, a variable,
a constant with data, or written by an earlier op. Last, the model's inputs and outputs are bound to the
manifest's slots: exactly the tensors the partition binds, each with its slot's dtype and shape.

Anything else is `ModelRefused` with a one-line reason; the bundle validator turns it into `bad-bundle`, so
that every command that reads a bundle refuses what `run` would, before any input is blamed for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as S

from stretchc.errors import first_line
from stretchc.litert import load_interpreter

Binding = tuple[int, str]  # (the model's tensor index, the arena slot it is copied from or to)


class ModelRefused(Exception):
    """A partition file no runtime may run; the message (one line) says why."""


@dataclass(frozen=True)
class LoadedPartition:
    """A partition file loaded and checked: its interpreter and the slot of each boundary tensor."""

    interpreter: Any
    inputs: list[Binding]
    outputs: list[Binding]


def load_partition(part: dict[str, Any], path: Path, slot_of_sync: dict[str, dict[str, Any]]) -> LoadedPartition:
    """`path` (a file of partition `part`) loaded and checked as the module docstring says, or ModelRefused.

    `slot_of_sync`: the slot (manifest entry) of every sync point, which the partition's bindings name."""
    data = path.read_bytes()
    try:
        interpreter = load_interpreter(model_content=data)
    except (ValueError, RuntimeError) as exc:
        raise ModelRefused(f"LiteRT cannot load it: {first_line(str(exc), 300)}") from None
    _check_data(data)  # LiteRT has verified the flatbuffer, so reading it is safe
    return LoadedPartition(
        interpreter,
        _bind(part, interpreter.get_input_details(), "inputs", slot_of_sync),
        _bind(part, interpreter.get_output_details(), "outputs", slot_of_sync),
    )


def _check_data(data: bytes) -> None:
    """Every declared buffer region lies inside the file; every tensor an op reads has a value when it runs."""
    model = S.ModelT.InitFromPackedBuf(data, 0)
    buffers = model.buffers or []
    for i, b in enumerate(buffers):
        # LiteRT reads a region only at an offset above 1 (and refuses one past the end), so it loads offset 1
        # with any size and a kernel finds no data when it runs: a region is inside the file whatever its offset
        if b.offset + b.size > len(data):
            raise ModelRefused(f"buffer {i} declares bytes {b.offset} to {b.offset + b.size}, outside the file ({len(data)} bytes)")
    sg = model.subgraphs[0]  # the one a runtime runs
    tensors = sg.tensors or []

    def has_data(t: Any) -> bool:
        b = buffers[t.buffer]
        return (b.data is not None and len(b.data) > 0) or (b.offset > 1 and b.size > 0)

    ready = set(_indices(sg.inputs)) | {i for i, t in enumerate(tensors) if t.isVariable or has_data(t)}
    for k, op in enumerate(sg.operators or []):
        for i in _indices(op.inputs):
            if i >= 0 and i not in ready:  # -1: an optional input left out
                raise ModelRefused(f"op {k} reads tensor {i} ({_name(tensors[i])}), which holds no data, is no model input and no earlier op writes")
        ready.update(_indices(op.outputs))
    for i in _indices(sg.outputs):
        if i not in ready:
            raise ModelRefused(f"model output tensor {i} ({_name(tensors[i])}) is written by no op and holds no data")


def _indices(vector: Any) -> list[int]:
    """A flatbuffer int vector of the object API (a numpy array, or None when absent) as ints."""
    return [] if vector is None else [int(i) for i in np.asarray(vector).reshape(-1)]


def _name(tensor: Any) -> str:
    return bytes(tensor.name or b"").decode("utf-8", "replace")[:64]


def _bind(part: dict[str, Any], details: list[dict[str, Any]], kind: str, slot_of_sync: dict[str, dict[str, Any]]) -> list[Binding]:
    """(tensor index, slot) of each boundary tensor: the model's `kind` are the tensors the manifest binds,
    each with its slot's dtype and shape."""
    have = {d["name"]: d for d in details}
    bound = {b["tensor"]: b for b in part[kind]}
    if set(have) != set(bound):
        raise ModelRefused(f"its model's {kind} are {sorted(have)}, the manifest binds {sorted(bound)}")
    out = []
    for name, b in bound.items():
        slot = slot_of_sync[b["sync"]]
        d = have[name]
        got = (np.dtype(d["dtype"]).name, [int(x) for x in d["shape"]])
        if got != (slot["dtype"], slot["shape"]):
            raise ModelRefused(f"tensor {name} is {got[0]}{got[1]} but its slot {slot['name']} holds {slot['dtype']}{slot['shape']}")
        out.append((int(d["index"]), slot["name"]))
    return out
