"""The bundle manifest: built from a compiled module, written as JSON, read back and checked.

Format (defined in `schemas/manifest.fbs`, with the format name and version as const attributes): format name
and version, compiler, model, target, model inputs/outputs (ONNX name, shape, dtype, layout permutation, bundle dtype and quantization, the sync point that
carries them), partitions (file, sha256, processor, precision, delegate and its options (the processor's backend
says them, stretchc/backends/), threads, core affinity, fallback, boundary tensors bound to sync points), sync points (with the ONNX tensor each carries,
when known: `onnx_tensor`; the quantization of int8 ones; the conversions planned where a boundary changes
dtype), the buffer plan (arena size, alignment, slot offsets, aliasing), and the schedule (one lane per
processor, in backend order; steps of partitions that may run at the same time).
Version 2 added partition precision and sync point quant / conversions (int8 sync points).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from stretchc.backends import backend, backends, fallback
from stretchc.bundle.format import FORMAT, FORMAT_VERSION, sharing_pairs
from stretchc.bundle.validate import validate_bundle
from stretchc.ir import HOST, Module, SyncPoint, lane_name
from stretchc.version import __version__

CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _steps(module: Module) -> list[list[str]]:
    """Partitions grouped by depth: each step's partitions may run concurrently. A partition comes after the
    partitions it reads from and after the one before it on its lane (a lane runs its partitions in partition
    order, as the cost model priced them), so every lane is in step order."""
    producer = {s.name: s.producer for s in module.sync_points}
    sync_of_input: dict[str, str] = {}
    for n in module.graph.nodes:
        if n.op == "stretch.sync":
            sync_of_input[n.outputs[0].name] = str(n.attrs["sync"])
    depth: dict[str, int] = {}
    last_on: dict[str, str] = {}  # lane -> its last partition so far
    for p in module.partitions:
        preds = [producer[sync_of_input[i]] for i in p.inputs if i in sync_of_input]
        lane = lane_name(p.processor, p.lane)
        if lane in last_on:
            preds.append(last_on[lane])
        last_on[lane] = p.name
        depth[p.name] = 1 + max((depth[q] for q in preds if q in depth), default=-1)
    steps: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for p in module.partitions:
        steps[depth[p.name]].append(p.name)
    return steps


def lane_cores(affinity: tuple[int, ...], threads: int, lane: int, lanes: int) -> list[int]:
    """The cores a partition of lane `lane` (of `lanes` in use on its processor) is pinned to: its own `threads` of
    the affinity cores when every lane has that many (two lanes never share a core: a waiting lane would take
    turns with a working one), else all of them."""
    if lanes > 1 and lanes * threads <= len(affinity):
        return list(affinity[lane * threads:(lane + 1) * threads])
    return list(affinity)


def build_manifest(module: Module, *, target: Any, files: dict[str, bytes], pipeline: str, source_sha256: str) -> dict[str, Any]:
    """The manifest of `module` whose partition files (bundle-relative path -> bytes) are `files`."""
    values = module.graph.value_map()
    sync_by_value = {s.value: s for s in module.sync_points}
    sync_by_synced: dict[str, str] = {}
    for n in module.graph.nodes:
        if n.op == "stretch.sync":
            sync_by_synced[n.outputs[0].name] = str(n.attrs["sync"])

    def quant(name: str) -> dict[str, Any] | None:
        q = values[name].quant
        if q is None:
            return None
        return {"scale": list(q.scale), "zero_point": list(q.zero_point), "axis": q.axis}

    def conversions(name: str) -> list[dict[str, Any]]:
        """The planned conversions of a sync point's value: by its producer into it, or by a consumer from it (a
        QUANTIZE into another scale of the same 8-bit dtype is a requantization: stretchc/quantize/rewrite.py)."""
        v = values[name]
        nodes = ([v.producer] if v.producer is not None else []) + [u for s in v.users if s.op == "stretch.sync" for u in s.outputs[0].users]
        out = []
        for n in nodes:
            src, dst = n.inputs[0], n.outputs[0]
            if n.kind in CONVERSION_OPS and src is not None and (src.dtype != dst.dtype or src.quant != dst.quant):
                out.append({"partition": n.partition, "op": n.kind, "from_dtype": n.inputs[0].dtype, "to_dtype": n.outputs[0].dtype})
        for t in module.inputs:  # held quantized in the bundle: the runtime converts as it copies the input in
            if t.value == name and t.dtype != v.dtype:
                out.append({"partition": HOST, "op": "QUANTIZE", "from_dtype": t.dtype, "to_dtype": v.dtype})
        for t in module.outputs:
            if t.value == name and t.dtype != v.dtype:
                out.append({"partition": HOST, "op": "DEQUANTIZE", "from_dtype": v.dtype, "to_dtype": t.dtype})
        return out

    def model_io(infos: list) -> list[dict[str, Any]]:  # type: ignore[type-arg]
        out = []
        for t in infos:
            v = values[t.value]
            out.append(
                {
                    "name": t.name,
                    "sync": sync_by_value[t.value].name,
                    "shape": list(t.shape),
                    "dtype": t.dtype,
                    "layout": t.layout,
                    "perm": list(t.perm) if t.perm is not None else None,
                    "bundle_shape": list(v.shape),
                    "bundle_dtype": v.dtype,
                    "quant": quant(t.value),
                }
            )
        return out

    # The ONNX tensor each sync point carries, for `verify` to compare it with (None: it holds none).
    onnx_tensor = module.graph.holders()
    onnx_tensor.update({t.value: t.name for t in [*module.inputs, *module.outputs]})
    partitions = []
    base = fallback()
    threads, affinity = base.threads(target) if target is not None else (1, ())
    in_use: dict[str, list[int]] = {}  # processor -> the lanes its partitions take, in order
    for p in module.partitions:
        in_use.setdefault(p.processor, []).append(p.lane)
    in_use = {proc: sorted(set(ks)) for proc, ks in in_use.items()}
    for p in module.partitions:
        path = f"partitions/{p.name}.tflite"
        runs = backend(p.processor)
        entry: dict[str, Any] = {
            "name": p.name,
            "file": path,
            "sha256": sha256_bytes(files[path]),
            "processor": p.processor,
            "precision": p.precision,
            "delegate": runs.delegate,
            "delegate_options": runs.delegate_options(p.precision, target),
            "threads": threads,
            "affinity": lane_cores(affinity, threads, p.lane, in_use[p.processor][-1] + 1),
            "fallback": None if runs.fallback else {"processor": base.name, "delegate": base.delegate, "file": path},
            "regions": list(p.regions),
            "inputs": [{"tensor": i, "sync": sync_by_synced.get(i) or sync_by_value[i].name} for i in p.inputs],
            "outputs": [{"tensor": o, "sync": sync_by_value[o].name} for o in p.outputs],
        }
        partitions.append(entry)
    slots = [
        {"name": b.name, "offset": b.offset, "size": b.size, "dtype": b.dtype, "shape": list(b.shape)} for b in module.buffers
    ]
    aliases = [list(pair) for pair in sharing_pairs(slots)]
    lanes = [
        {"processor": b.name, "index": k, "partitions": [p.name for p in module.partitions if (p.processor, p.lane) == (b.name, k)]}
        for b in backends()
        for k in in_use.get(b.name, [])
    ]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "compiler": {"name": "stretchc", "version": __version__},
        "model": {"name": module.name, "source_sha256": source_sha256, "pipeline": pipeline},
        "target": {"name": target.name, "description": target.description} if target is not None else None,
        "inputs": model_io(module.inputs),
        "outputs": model_io(module.outputs),
        "partitions": partitions,
        "sync_points": [_sync_point(s, onnx_tensor.get(s.value), quant(s.value), conversions(s.value)) for s in module.sync_points],
        "buffers": {"alignment": 64, "arena_size": module.arena_size, "slots": slots, "aliases": aliases},
        "schedule": {"lanes": lanes, "steps": _steps(module)},
        "predicted_latency_ms": None,
    }


def _sync_point(s: SyncPoint, onnx_tensor: str | None, quant: dict[str, Any] | None, conversions: list[dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": s.name, "value": s.value, "producer": s.producer, "consumers": list(s.consumers), "slot": s.slot, "kind": s.kind,
        "quant": quant, "conversions": conversions,
    }
    if onnx_tensor is not None:  # optional (absent: the sync point carries no ONNX tensor the lowering could name)
        entry["onnx_tensor"] = onnx_tensor
    return entry


def dumps(manifest: dict[str, Any]) -> bytes:
    """Canonical JSON bytes (sorted keys, fixed indentation, trailing newline)."""
    return (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()


def load_manifest(bundle: str | Path) -> dict[str, Any]:
    """Read a bundle's manifest once every rule of `schemas/bundle_rules.json` holds (`stretchc.bundle.validate`:
    the one bundle check, partition models included).

    Raises StretchError("bad-bundle", "[rule-id] ...") naming the first rule the bundle breaks.
    """
    return validate_bundle(bundle).manifest


def compiled_shapes(manifest: dict[str, Any]) -> dict[str, list[int]]:
    """The input shapes (ONNX layout) a bundle was compiled for, by input name: what `--input-shape` fixed, so that
    verify and accuracy read a model with dynamic dimensions at the bundle's sizes (`load_model(compiled_shapes=)`)."""
    return {i["name"]: list(i["shape"]) for i in manifest["inputs"]}
