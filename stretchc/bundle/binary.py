"""The binary manifest (`manifest.bin`): the JSON manifest as a FlatBuffer (`schemas/manifest.fbs`, id "STRB").

`encode_manifest(m)` is deterministic (same dict -> same bytes) and `decode_manifest(encode_manifest(m)) == m`
for every manifest `build_manifest` makes: JSON null <-> an absent table or vector, lists stay lists, the
key `predicted_latency_ms` is carried by the optional `Latency` table, delegate options are typed key/value
entries sorted by key (nested JSON values are carried as canonical JSON text). Bytes that are not a valid
manifest buffer are refused with `StretchError("bad-bundle", ...)`, never a crash.

The generated code lives in `stretchc/bundle/fbs/` (regenerate with `scripts/gen_fbs.sh`).
"""

from __future__ import annotations

import json
import math
from typing import Any

import flatbuffers

from stretchc.bundle.fbs import (  # noqa: F401  (the generated T classes reference these modules by path)
    AliasPair,
    Binding,
    Buffers,
    Compiler,
    Conversion,
    Fallback,
    Lane,
    Latency,
    Manifest,
    Model,
    ModelIO,
    Option,
    Partition,
    Quant,
    Schedule,
    Slot,
    Step,
    SyncPoint,
    Target,
    ValueKind,
)
from stretchc.errors import StretchError

FILE_IDENTIFIER = b"STRB"
MAX_BYTES = 64 << 20  # a manifest is kilobytes; anything this large is not one


# ---------------------------------------------------------------- encode


def _ints(xs: Any) -> list[int]:
    return [int(x) for x in xs]


def _option(key: str, value: Any) -> Option.OptionT:
    o = Option.OptionT()
    o.key = str(key)
    K = ValueKind.ValueKind
    if value is None:
        o.kind = K.Null
    elif isinstance(value, bool):
        o.kind, o.boolValue = K.Bool, value
    elif isinstance(value, int) and -(1 << 63) <= value < (1 << 63):
        o.kind, o.intValue = K.Int, value
    elif isinstance(value, float) and math.isfinite(value):
        o.kind, o.floatValue = K.Float, value
    elif isinstance(value, str):
        o.kind, o.stringValue = K.String, value
    else:
        o.kind, o.stringValue = K.Json, json.dumps(value, sort_keys=True, separators=(",", ":"))
    return o


def _quant(q: dict[str, Any] | None) -> Quant.QuantT | None:
    if q is None:
        return None
    t = Quant.QuantT()
    t.scale = [float(s) for s in q["scale"]]
    t.zeroPoint = _ints(q["zero_point"])
    t.axis = int(q["axis"])
    return t


def _model_io(d: dict[str, Any]) -> ModelIO.ModelIOT:
    t = ModelIO.ModelIOT()
    t.name, t.sync, t.dtype, t.layout, t.bundleDtype = d["name"], d["sync"], d["dtype"], d["layout"], d["bundle_dtype"]
    t.shape = _ints(d["shape"])
    t.perm = None if d["perm"] is None else _ints(d["perm"])
    t.bundleShape = _ints(d["bundle_shape"])
    t.quant = _quant(d["quant"])
    return t


def _binding(d: dict[str, Any]) -> Binding.BindingT:
    t = Binding.BindingT()
    t.tensor, t.sync = d["tensor"], d["sync"]
    return t


def _partition(d: dict[str, Any]) -> Partition.PartitionT:
    t = Partition.PartitionT()
    t.name, t.file, t.sha256, t.processor, t.delegate = d["name"], d["file"], d["sha256"], d["processor"], d["delegate"]
    t.precision = d["precision"]
    t.delegateOptions = [_option(k, v) for k, v in sorted(d["delegate_options"].items())]
    t.threads = int(d["threads"])
    t.affinity = _ints(d["affinity"])
    fb = d["fallback"]
    if fb is not None:
        t.fallback = Fallback.FallbackT()
        t.fallback.processor, t.fallback.delegate, t.fallback.file = fb["processor"], fb["delegate"], fb["file"]
    t.regions = list(d["regions"])
    t.inputs = [_binding(b) for b in d["inputs"]]
    t.outputs = [_binding(b) for b in d["outputs"]]
    return t


def _sync_point(d: dict[str, Any]) -> SyncPoint.SyncPointT:
    t = SyncPoint.SyncPointT()
    t.name, t.value, t.producer, t.slot, t.kind = d["name"], d["value"], d["producer"], d["slot"], d["kind"]
    t.onnxTensor = d.get("onnx_tensor")
    t.consumers = list(d["consumers"])
    t.quant = _quant(d["quant"])
    t.conversions = []
    for c in d["conversions"]:
        ct = Conversion.ConversionT()
        ct.partition, ct.op, ct.fromDtype, ct.toDtype = c["partition"], c["op"], c["from_dtype"], c["to_dtype"]
        t.conversions.append(ct)
    return t


def _buffers(d: dict[str, Any]) -> Buffers.BuffersT:
    t = Buffers.BuffersT()
    t.alignment, t.arenaSize = int(d["alignment"]), int(d["arena_size"])
    t.slots = []
    for s in d["slots"]:
        st = Slot.SlotT()
        st.name, st.offset, st.size, st.dtype, st.shape = s["name"], int(s["offset"]), int(s["size"]), s["dtype"], _ints(s["shape"])
        t.slots.append(st)
    t.aliases = []
    for pair in d["aliases"]:
        a, b = pair
        at = AliasPair.AliasPairT()
        at.a, at.b = a, b
        t.aliases.append(at)
    return t


def _schedule(d: dict[str, Any]) -> Schedule.ScheduleT:
    t = Schedule.ScheduleT()
    t.lanes = []
    for lane in d["lanes"]:
        lt = Lane.LaneT()
        lt.processor, lt.partitions = lane["processor"], list(lane["partitions"])
        t.lanes.append(lt)
    t.steps = []
    for step in d["steps"]:
        st = Step.StepT()
        st.partitions = list(step)
        t.steps.append(st)
    return t


def encode_manifest(manifest: dict[str, Any]) -> bytes:
    """The manifest as FlatBuffer bytes (file identifier "STRB"); deterministic."""
    try:
        m = Manifest.ManifestT()
        m.format, m.formatVersion = manifest["format"], int(manifest["format_version"])
        m.compiler = Compiler.CompilerT()
        m.compiler.name, m.compiler.version = manifest["compiler"]["name"], manifest["compiler"]["version"]
        m.model = Model.ModelT()
        md = manifest["model"]
        m.model.name, m.model.sourceSha256, m.model.pipeline = md["name"], md["source_sha256"], md["pipeline"]
        if manifest["target"] is not None:
            m.target = Target.TargetT()
            m.target.name, m.target.description = manifest["target"]["name"], manifest["target"]["description"]
        m.inputs = [_model_io(x) for x in manifest["inputs"]]
        m.outputs = [_model_io(x) for x in manifest["outputs"]]
        m.partitions = [_partition(p) for p in manifest["partitions"]]
        m.syncPoints = [_sync_point(s) for s in manifest["sync_points"]]
        m.buffers = _buffers(manifest["buffers"])
        m.schedule = _schedule(manifest["schedule"])
        lat = manifest.get("predicted_latency_ms")
        if lat is not None:
            m.predictedLatency = Latency.LatencyT()
            m.predictedLatency.ms = float(lat)
        builder = flatbuffers.Builder(4096)
        builder.Finish(m.Pack(builder), file_identifier=FILE_IDENTIFIER)
        return bytes(builder.Output())
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StretchError("internal", f"cannot encode the manifest as a flatbuffer ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------- decode


class _Bad(Exception):
    pass


class _Strict(bytes):
    """Bytes whose slices must lie inside the buffer: the flatbuffers runtime reads strings by slicing, and a
    plain slice past the end would silently return a truncated string instead of failing."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            n = len(self)
            start = 0 if key.start is None else key.start
            stop = n if key.stop is None else key.stop
            if start < 0 or stop > n or start > stop:
                raise _Bad("a string or vector runs past the end of the buffer")
        return bytes.__getitem__(self, key)


def _str(x: Any, what: str) -> str:
    if x is None:
        raise _Bad(f"missing string {what}")
    return x.decode("utf-8") if isinstance(x, (bytes, bytearray)) else str(x)


def _strs(xs: Any, what: str) -> list[str]:
    return [_str(x, what) for x in (xs or [])]


def _list_ints(xs: Any) -> list[int]:
    if xs is None:
        return []
    return [int(x) for x in (xs.tolist() if hasattr(xs, "tolist") else xs)]


def _need(x: Any, what: str) -> Any:
    if x is None:
        raise _Bad(f"missing {what}")
    return x


def _d_option(o: Option.OptionT) -> tuple[str, Any]:
    K = ValueKind.ValueKind
    key = _str(o.key, "delegate option key")
    if o.kind == K.Null:
        return key, None
    if o.kind == K.Bool:
        return key, bool(o.boolValue)
    if o.kind == K.Int:
        return key, int(o.intValue)
    if o.kind == K.Float:
        return key, float(o.floatValue)
    if o.kind == K.String:
        return key, _str(o.stringValue, "delegate option value")
    if o.kind == K.Json:
        return key, json.loads(_str(o.stringValue, "delegate option value"))
    raise _Bad(f"delegate option {key}: unknown value kind {o.kind}")


def _d_quant(q: Quant.QuantT | None) -> dict[str, Any] | None:
    if q is None:
        return None
    scale = [float(s) for s in (q.scale.tolist() if hasattr(q.scale, "tolist") else (q.scale or []))]
    return {"scale": scale, "zero_point": _list_ints(q.zeroPoint), "axis": int(q.axis)}


def _d_model_io(t: ModelIO.ModelIOT) -> dict[str, Any]:
    t = _need(t, "model tensor")
    return {
        "name": _str(t.name, "io.name"),
        "sync": _str(t.sync, "io.sync"),
        "shape": _list_ints(t.shape),
        "dtype": _str(t.dtype, "io.dtype"),
        "layout": _str(t.layout, "io.layout"),
        "perm": None if t.perm is None else _list_ints(t.perm),
        "bundle_shape": _list_ints(t.bundleShape),
        "bundle_dtype": _str(t.bundleDtype, "io.bundle_dtype"),
        "quant": _d_quant(t.quant),
    }


def _d_binding(b: Binding.BindingT) -> dict[str, str]:
    b = _need(b, "binding")
    return {"tensor": _str(b.tensor, "binding.tensor"), "sync": _str(b.sync, "binding.sync")}


def _d_partition(p: Partition.PartitionT) -> dict[str, Any]:
    p = _need(p, "partition")
    fb = p.fallback
    return {
        "name": _str(p.name, "partition.name"),
        "file": _str(p.file, "partition.file"),
        "sha256": _str(p.sha256, "partition.sha256"),
        "processor": _str(p.processor, "partition.processor"),
        "precision": _str(p.precision, "partition.precision"),
        "delegate": _str(p.delegate, "partition.delegate"),
        "delegate_options": dict(_d_option(_need(o, "option")) for o in (p.delegateOptions or [])),
        "threads": int(p.threads),
        "affinity": _list_ints(p.affinity),
        "fallback": None
        if fb is None
        else {"processor": _str(fb.processor, "fallback.processor"), "delegate": _str(fb.delegate, "fallback.delegate"), "file": _str(fb.file, "fallback.file")},
        "regions": _strs(p.regions, "partition.regions"),
        "inputs": [_d_binding(b) for b in (p.inputs or [])],
        "outputs": [_d_binding(b) for b in (p.outputs or [])],
    }


def _d_sync(s: SyncPoint.SyncPointT) -> dict[str, Any]:
    s = _need(s, "sync point")
    d = {
        "name": _str(s.name, "sync.name"),
        "value": _str(s.value, "sync.value"),
        "producer": _str(s.producer, "sync.producer"),
        "consumers": _strs(s.consumers, "sync.consumers"),
        "slot": _str(s.slot, "sync.slot"),
        "kind": _str(s.kind, "sync.kind"),
        "quant": _d_quant(s.quant),
        "conversions": [
            {
                "partition": _str(c.partition, "conversion.partition"),
                "op": _str(c.op, "conversion.op"),
                "from_dtype": _str(c.fromDtype, "conversion.from_dtype"),
                "to_dtype": _str(c.toDtype, "conversion.to_dtype"),
            }
            for c in (_need(x, "conversion") for x in (s.conversions or []))
        ],
    }
    if s.onnxTensor is not None:  # optional: absent in both forms when the sync point carries no known ONNX tensor
        d["onnx_tensor"] = _str(s.onnxTensor, "sync.onnx_tensor")
    return d


def _d_buffers(b: Buffers.BuffersT) -> dict[str, Any]:
    b = _need(b, "buffers")
    return {
        "alignment": int(b.alignment),
        "arena_size": int(b.arenaSize),
        "slots": [
            {
                "name": _str(s.name, "slot.name"),
                "offset": int(s.offset),
                "size": int(s.size),
                "dtype": _str(s.dtype, "slot.dtype"),
                "shape": _list_ints(s.shape),
            }
            for s in (_need(x, "slot") for x in (b.slots or []))
        ],
        "aliases": [[_str(a.a, "alias"), _str(a.b, "alias")] for a in (_need(x, "alias") for x in (b.aliases or []))],
    }


def _d_schedule(s: Schedule.ScheduleT) -> dict[str, Any]:
    s = _need(s, "schedule")
    return {
        "lanes": [
            {"processor": _str(lane.processor, "lane.processor"), "partitions": _strs(lane.partitions, "lane.partitions")}
            for lane in (_need(x, "lane") for x in (s.lanes or []))
        ],
        "steps": [_strs(_need(step, "step").partitions, "step") for step in (s.steps or [])],
    }


def decode_manifest(data: bytes) -> dict[str, Any]:
    """The manifest dict carried by `data`; `StretchError("bad-bundle")` if `data` is not a manifest buffer."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise StretchError("bad-bundle", "manifest.bin: expected bytes")
    data = _Strict(bytes(data))
    if len(data) < 8 or len(data) > MAX_BYTES:
        raise StretchError("bad-bundle", f"manifest.bin: {len(data)} bytes is not a manifest buffer")
    if data[4:8] != FILE_IDENTIFIER:
        raise StretchError("bad-bundle", "manifest.bin: not a stretchc manifest (file identifier is not STRB)")
    try:
        m = Manifest.ManifestT.InitFromBuf(data, int.from_bytes(bytes(data)[:4], "little"))
        lat = m.predictedLatency
        out = {
            "format": _str(m.format, "format"),
            "format_version": int(m.formatVersion),
            "compiler": {"name": _str(_need(m.compiler, "compiler").name, "compiler.name"), "version": _str(m.compiler.version, "compiler.version")},
            "model": {
                "name": _str(_need(m.model, "model").name, "model.name"),
                "source_sha256": _str(m.model.sourceSha256, "model.source_sha256"),
                "pipeline": _str(m.model.pipeline, "model.pipeline"),
            },
            "target": None
            if m.target is None
            else {"name": _str(m.target.name, "target.name"), "description": _str(m.target.description, "target.description")},
            "inputs": [_d_model_io(x) for x in (m.inputs or [])],
            "outputs": [_d_model_io(x) for x in (m.outputs or [])],
            "partitions": [_d_partition(p) for p in (m.partitions or [])],
            "sync_points": [_d_sync(s) for s in (m.syncPoints or [])],
            "buffers": _d_buffers(m.buffers),
            "schedule": _d_schedule(m.schedule),
            "predicted_latency_ms": None if lat is None else float(lat.ms),
        }
    except _Bad as exc:
        raise StretchError("bad-bundle", f"manifest.bin: {exc}") from None
    except RecursionError:
        raise StretchError("bad-bundle", "manifest.bin: malformed flatbuffer (nesting)") from None
    except Exception as exc:  # noqa: BLE001  any failure to read hostile bytes is a bad bundle, never a crash
        raise StretchError("bad-bundle", f"manifest.bin: malformed flatbuffer ({type(exc).__name__})") from None
    return out
