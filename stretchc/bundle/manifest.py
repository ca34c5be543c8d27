"""The bundle manifest: built from a compiled module, written as JSON, read back and checked.

Format (see `schemas/manifest.schema.json`): format name and version, compiler, model, target, model
inputs/outputs (ONNX name, shape, dtype, layout permutation, the sync point that carries them), partitions
(file, sha256, processor, delegate and its options, threads, core affinity, fallback, boundary tensors
bound to sync points), sync points (with the ONNX tensor each carries, when known: `onnx_tensor`), the
buffer plan (arena size, alignment, slot offsets, aliasing), and the schedule (one lane per processor;
steps of partitions that may run at the same time).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

from stretchc import __version__
from stretchc.errors import StretchError
from stretchc.ir import Module, SyncPoint

FORMAT = "stretchc-bundle"
FORMAT_VERSION = 1
MANIFEST_JSON = "manifest.json"
DELEGATES = {"cpu": "xnnpack", "gpu": "gpu", "dsp": "hexagon"}
LANE_ORDER = ("cpu", "gpu", "dsp")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _steps(module: Module) -> list[list[str]]:
    """Partitions grouped by dependency depth: each step's partitions may run concurrently."""
    producer = {s.name: s.producer for s in module.sync_points}
    sync_of_input: dict[str, str] = {}
    for n in module.graph.nodes:
        if n.op == "stretch.sync":
            sync_of_input[n.outputs[0].name] = str(n.attrs["sync"])
    depth: dict[str, int] = {}
    for p in module.partitions:
        preds = [producer[sync_of_input[i]] for i in p.inputs if i in sync_of_input]
        depth[p.name] = 1 + max((depth[q] for q in preds if q in depth), default=-1)
    steps: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for p in module.partitions:
        steps[depth[p.name]].append(p.name)
    return steps


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
    for p in module.partitions:
        path = f"partitions/{p.name}.tflite"
        entry: dict[str, Any] = {
            "name": p.name,
            "file": path,
            "sha256": sha256_bytes(files[path]),
            "processor": p.processor,
            "delegate": DELEGATES[p.processor],
            "delegate_options": _delegate_options(p.processor, target),
            "threads": target.cpu_threads if target is not None else 1,
            "affinity": list(target.cpu_affinity) if target is not None else [],
            "fallback": None if p.processor == "cpu" else {"processor": "cpu", "delegate": "xnnpack", "file": path},
            "regions": list(p.regions),
            "inputs": [{"tensor": i, "sync": sync_by_synced.get(i) or sync_by_value[i].name} for i in p.inputs],
            "outputs": [{"tensor": o, "sync": sync_by_value[o].name} for o in p.outputs],
        }
        partitions.append(entry)
    slots = [
        {"name": b.name, "offset": b.offset, "size": b.size, "dtype": b.dtype, "shape": list(b.shape)} for b in module.buffers
    ]
    aliases = sorted(
        [a["name"], b["name"]]
        for i, a in enumerate(slots)
        for b in slots[i + 1 :]
        if a["offset"] < b["offset"] + b["size"] and b["offset"] < a["offset"] + a["size"]
    )
    lanes = [
        {"processor": proc, "partitions": [p.name for p in module.partitions if p.processor == proc]}
        for proc in LANE_ORDER
        if any(p.processor == proc for p in module.partitions)
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
        "sync_points": [_sync_point(s, onnx_tensor.get(s.value)) for s in module.sync_points],
        "buffers": {"alignment": 64, "arena_size": module.arena_size, "slots": slots, "aliases": aliases},
        "schedule": {"lanes": lanes, "steps": _steps(module)},
        "predicted_latency_ms": None,
    }


def _sync_point(s: SyncPoint, onnx_tensor: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": s.name, "value": s.value, "producer": s.producer, "consumers": list(s.consumers), "slot": s.slot, "kind": s.kind}
    if onnx_tensor is not None:  # optional (absent: the sync point carries no ONNX tensor the lowering could name)
        entry["onnx_tensor"] = onnx_tensor
    return entry


def _delegate_options(processor: str, target: Any) -> dict[str, Any]:
    if processor == "gpu":
        return {"backend": "opencl", "precision": "fp32", "max_delegated_partitions": 1}
    if processor == "dsp":
        dsp = target.raw["dsp"] if target is not None else {}
        return {"powersave_level": int(dsp.get("powersave_level", 255)), "library_path": "/data/local/tmp", "skel": dsp.get("skel", "")}
    return {}


def dumps(manifest: dict[str, Any]) -> bytes:
    """Canonical JSON bytes (sorted keys, fixed indentation, trailing newline)."""
    return (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()


def _inside(bundle: Path, rel: str) -> Path:
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or "\\" in rel or not rel:
        raise StretchError("bad-bundle", f"manifest path {rel!r} points outside the bundle", file=str(bundle))
    path = (bundle / pure).resolve()
    if bundle.resolve() not in path.parents:
        raise StretchError("bad-bundle", f"manifest path {rel!r} points outside the bundle", file=str(bundle))
    return path


def load_manifest(bundle: str | Path) -> dict[str, Any]:
    """Read and check a bundle's manifest: format, version, schema, every path inside, every checksum."""
    import jsonschema

    from stretchc.schemas import schema_path

    bundle = Path(bundle)
    mpath = bundle / MANIFEST_JSON
    if not bundle.is_dir():
        raise StretchError("file-not-found", "bundle directory does not exist", file=str(bundle))
    if not mpath.is_file():
        raise StretchError("bad-bundle", f"no {MANIFEST_JSON} in the bundle", file=str(bundle))
    try:
        manifest = json.loads(mpath.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StretchError("bad-bundle", f"{MANIFEST_JSON} is not valid JSON ({exc})", file=str(mpath)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise StretchError("bad-bundle", "not a stretchc bundle manifest", file=str(mpath))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise StretchError(
            "bad-bundle",
            f"unknown format version {manifest.get('format_version')!r} (this stretchc reads version {FORMAT_VERSION})",
            file=str(mpath),
        )
    schema = json.loads(schema_path("manifest.schema.json").read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        field = ".".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise StretchError("bad-bundle", f"manifest field {field}: {errors[0].message}", file=str(mpath))
    for part in manifest["partitions"]:
        paths = [part["file"]] + ([part["fallback"]["file"]] if part.get("fallback") else [])
        for rel in paths:
            path = _inside(bundle, rel)
            if not path.is_file():
                raise StretchError("bad-bundle", f"partition file {rel} is missing", file=str(bundle))
        data = _inside(bundle, part["file"]).read_bytes()
        if sha256_bytes(data) != part["sha256"]:
            raise StretchError("bad-bundle", f"partition file {part['file']} was modified (sha256 mismatch)", file=str(bundle))
    _check_plan(manifest, mpath)
    return manifest


def _check_plan(manifest: dict[str, Any], mpath: Path) -> None:
    """Cross-references: every sync point, slot and partition named exists; slots fit and are aligned."""
    syncs = {s["name"]: s for s in manifest["sync_points"]}
    slots = {s["name"]: s for s in manifest["buffers"]["slots"]}
    parts = {p["name"] for p in manifest["partitions"]}
    arena = manifest["buffers"]["arena_size"]
    for s in slots.values():
        if s["offset"] % manifest["buffers"]["alignment"] or s["offset"] + s["size"] > arena:
            raise StretchError("bad-bundle", f"buffer slot {s['name']} is misaligned or outside the arena", file=str(mpath))
    for s in syncs.values():
        if s["slot"] not in slots:
            raise StretchError("bad-bundle", f"sync point {s['name']} names unknown slot {s['slot']}", file=str(mpath))
        for p in [s["producer"], *s["consumers"]]:
            if p != "host" and p not in parts:
                raise StretchError("bad-bundle", f"sync point {s['name']} names unknown partition {p}", file=str(mpath))
    for p in manifest["partitions"]:
        for t in [*p["inputs"], *p["outputs"]]:
            if t["sync"] not in syncs:
                raise StretchError("bad-bundle", f"partition {p['name']} names unknown sync point {t['sync']}", file=str(mpath))
    for io in [*manifest["inputs"], *manifest["outputs"]]:
        if io["sync"] not in syncs:
            raise StretchError("bad-bundle", f"model tensor {io['name']} names unknown sync point {io['sync']}", file=str(mpath))
    scheduled = [p for lane in manifest["schedule"]["lanes"] for p in lane["partitions"]]
    if sorted(scheduled) != sorted(parts):
        raise StretchError("bad-bundle", "the schedule does not list every partition exactly once", file=str(mpath))
