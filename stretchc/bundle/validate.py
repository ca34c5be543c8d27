"""The bundle validator: every rule of `schemas/bundle_rules.json`, checked in that order.

`validate_bundle(dir)` is the one check of a bundle: every command that reads one (inspect, explain, run,
verify; compile before it installs one) calls it, so none accepts a bundle another refuses. It reads
`manifest.json`, `manifest.bin`, `SHA256SUMS` and the partition files, loads each partition's model as a
runtime does (rule partition-tensors, `stretchc.bundle.partition_model`) and returns the manifest with the
loaded models, or raises `StretchError("bad-bundle", "[rule-id] message", rule=rule-id)` for the first rule
broken. The C++ loader (`android_runtime/src/bundle.cc`) checks the same rules in the same order (the
partition models when it loads them), so a hostile manifest is refused by both with the same rule id
(`tests/data/hostile_manifests.json`).

Each rule is one function registered under its id with `@_rule`; it reads the manifest (already known to
match the JSON schema when the rule runs) and calls `ctx.fail(...)`. A new manifest field is declared in
`schemas/manifest.fbs` with its own rules as attributes (`scripts/gen_manifest.py` turns them into the JSON
schema and the C++ checks); if it relates to other fields, it gets a rule here, in the C++ loader and in the
table.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, NoReturn

from stretchc import safejson
from stretchc.backends import backend, fallback
from stretchc.bundle.binary import decode_manifest
from stretchc.bundle.format import FORMAT, FORMAT_VERSION, MANIFEST_BIN, MANIFEST_JSON, SHA256SUMS, limits, rules, sharing_pairs
from stretchc.bundle.partition_model import LoadedPartition, ModelRefused, load_partition
from stretchc.errors import StretchError
from stretchc.ir import DTYPE_SIZES, HOST, lane_name
from stretchc.precision import QUANTIZED
from stretchc.schemas import schema_path


def bundle_error(rule: str, message: str, file: Path | str) -> StretchError:
    """The error for breaking `rule` (an id of the table)."""
    return StretchError("bad-bundle", message, file=str(file), rule=rule)


@dataclass(frozen=True)
class CheckedBundle:
    """A bundle that keeps every rule: its manifest, and each partition's model as the host runtime runs it
    (the file its backend names, `Backend.host_file`), loaded."""

    manifest: dict[str, Any]
    partitions: dict[str, LoadedPartition]


class _Ctx:
    """What the rules read: the bundle, the file bytes, the manifest and the indexes earlier rules built."""

    def __init__(self, bundle: Path) -> None:
        self.bundle = bundle
        self.rule = ""
        self.root = bundle.resolve()
        self.json_bytes = b""
        self.bin_bytes = b""
        self.m: dict[str, Any] = {}  # from manifest.json
        self.bin_manifest: dict[str, Any] = {}  # from manifest.bin
        self._sha: dict[Path, str] = {}
        self.loaded: dict[str, LoadedPartition] = {}  # by partition: its host file's model (rule partition-tensors)

    def fail(self, message: str, file: Path | None = None) -> NoReturn:
        raise bundle_error(self.rule, message, file or (self.bundle / MANIFEST_JSON))

    # -- indexes by name (read only once the schema rule passed; unique once the names rule passed)
    @cached_property
    def parts(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.m["partitions"]}

    @cached_property
    def syncs(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.m["sync_points"]}

    @cached_property
    def slots(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.m["buffers"]["slots"]}

    def file_sha256(self, path: Path) -> str:
        if path not in self._sha:
            h = hashlib.sha256()
            try:
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
            except OSError as exc:
                self.fail(f"cannot read {path.name}: {exc.strerror or exc}", path)
            self._sha[path] = h.hexdigest()
        return self._sha[path]

    def inside(self, rel: str, what: str) -> Path:
        """`rel` as a regular file inside the bundle, or fail naming `what` (see rule partition-files)."""
        lim = limits()["path_chars"]
        why = None
        pure = PurePosixPath(rel)
        if not rel:
            why = "is empty"
        elif len(rel) > lim:
            why = f"is longer than {lim} characters"
        elif rel.startswith("/"):
            why = "is absolute (points outside the bundle)"
        elif any(c == "\\" or ord(c) < 0x20 for c in rel):
            why = "contains a backslash or control character"
        elif any(part in ("", ".", "..") for part in rel.split("/")):
            why = "has an empty, '.' or '..' component (points outside the bundle)"
        if why is None:
            path = (self.bundle / pure).resolve()
            if self.root not in path.parents:
                why = "resolves outside the bundle"
            elif not path.exists():
                why = "does not exist"
            elif not path.is_file():
                why = "is not a regular file"
            else:
                return path
        self.fail(f"{what} path {rel[:128]!r} {why}")


_CHECKS: dict[str, Callable[[_Ctx], None]] = {}


def _rule(rule_id: str) -> Callable[[Callable[[_Ctx], None]], Callable[[_Ctx], None]]:
    def register(fn: Callable[[_Ctx], None]) -> Callable[[_Ctx], None]:
        _CHECKS[rule_id] = fn
        return fn

    return register


def validate_bundle(bundle: str | Path) -> CheckedBundle:
    """The bundle directory `bundle`, once every rule holds (see module docstring)."""
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise StretchError("file-not-found", "bundle directory does not exist", file=str(bundle))
    ctx = _Ctx(bundle)
    for r in rules():
        ctx.rule = r.id
        _CHECKS[r.id](ctx)
    return CheckedBundle(ctx.m, ctx.loaded)


# ---------------------------------------------------------------- files and syntax


@_rule("manifest-files")
def _manifest_files(ctx: _Ctx) -> None:
    cap = limits()["manifest_bytes"]
    for name in (MANIFEST_JSON, MANIFEST_BIN):
        path = ctx.bundle / name
        if not path.is_file():
            ctx.fail(f"no {name} in the bundle (or it is not a regular file)", ctx.bundle)
        if path.stat().st_size > cap:
            ctx.fail(f"{name} is larger than {cap} bytes", path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            ctx.fail(f"cannot read {name}: {exc.strerror or exc}", path)
        if name == MANIFEST_JSON:
            ctx.json_bytes = data
        else:
            ctx.bin_bytes = data


@_rule("manifest-syntax")
def _manifest_syntax(ctx: _Ctx) -> None:
    path = ctx.bundle / MANIFEST_JSON
    try:
        m = safejson.loads(ctx.json_bytes, max_depth=limits()["json_depth"])
    except ValueError as exc:
        ctx.fail(f"{MANIFEST_JSON} is not valid JSON ({str(exc)[:200]})", path)
    if not isinstance(m, dict):
        ctx.fail(f"{MANIFEST_JSON} is not a JSON object", path)
    ctx.m = m
    try:
        ctx.bin_manifest = decode_manifest(ctx.bin_bytes)
    except StretchError as exc:
        ctx.fail(exc.message, ctx.bundle / MANIFEST_BIN)


@_rule("format")
def _format(ctx: _Ctx) -> None:
    if ctx.m.get("format") != FORMAT:
        ctx.fail("not a stretchc bundle manifest (format is not stretchc-bundle)")
    if ctx.m.get("format_version") != FORMAT_VERSION:
        ctx.fail(f"unknown format version {ctx.m.get('format_version')!r} (this stretchc reads version {FORMAT_VERSION})")


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """The `pattern` keyword as JSON Schema means it (ECMA-262: `$` matches only at the end of the string;
    Python's `$` also matches before a final newline, which would let "name\n" through)."""
    import jsonschema  # lazy: 0.1 s to import; only the schema rule needs it

    if validator.is_type(instance, "string") and not re.search(re.sub(r"(?<!\\)\$$", r"\\Z", pattern), instance):
        yield jsonschema.ValidationError(f"{instance[:64]!r} does not match {pattern!r}")


@lru_cache(maxsize=1)
def _schema_validator() -> Any:
    import jsonschema  # lazy: 0.1 s to import; only the schema rule needs it

    schema = json.loads(schema_path("manifest.schema.json").read_text())
    # JSON Schema calls 1.0 an integer; an index or size must be a real one.
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _c, x: isinstance(x, int) and not isinstance(x, bool)
    )
    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _ecma_pattern}, type_checker=checker)(schema)


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    stack = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, str):
            yield p, v
        elif isinstance(v, dict):
            for k, x in v.items():
                stack.append((k, f"{p}.{k} (key)"))
                stack.append((x, f"{p}.{k}"))
        elif isinstance(v, list):
            stack.extend((x, f"{p}[{i}]") for i, x in enumerate(v))


@_rule("schema")
def _schema(ctx: _Ctx) -> None:
    errors = sorted(_schema_validator().iter_errors(ctx.m), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in errors[0].absolute_path).lstrip(".") or "(top level)"
        ctx.fail(f"manifest field {where}: {errors[0].message[:200]}")
    for where, s in _strings(ctx.m):
        if "\0" in s:
            ctx.fail(f"manifest field {where.lstrip('.')} contains a NUL character")
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            ctx.fail(f"manifest field {where.lstrip('.')} is not valid UTF-8 (lone surrogate)")


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}".lstrip(".")
            d = _first_difference(a[k], b[k], f"{path}.{k}")
            if d is not None:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path} (length {len(a)} vs {len(b)})".lstrip(".")
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_difference(x, y, f"{path}[{i}]")
            if d is not None:
                return d
        return None
    same = a == b and (isinstance(a, bool) == isinstance(b, bool))
    return None if same else (path.lstrip(".") or "(top level)")


@_rule("json-bin-agree")
def _json_bin_agree(ctx: _Ctx) -> None:
    where = _first_difference(ctx.m, ctx.bin_manifest)
    if where is not None:
        ctx.fail(f"{MANIFEST_JSON} and {MANIFEST_BIN} differ at {where}")


# ---------------------------------------------------------------- names and references


@_rule("names")
def _names(ctx: _Ctx) -> None:
    m = ctx.m
    for what, items in (
        ("partition", m["partitions"]),
        ("sync point", m["sync_points"]),
        ("buffer slot", m["buffers"]["slots"]),
        ("model input", m["inputs"]),
        ("model output", m["outputs"]),
    ):
        seen: set[str] = set()
        for x in items:
            if x["name"] in seen:
                ctx.fail(f"{what} {x['name'][:64]!r} is listed twice")
            seen.add(x["name"])
    if HOST in ctx.parts:
        ctx.fail(f"a partition may not be named {HOST!r}")


@_rule("references")
def _references(ctx: _Ctx) -> None:
    m, parts, syncs, slots = ctx.m, ctx.parts, ctx.syncs, ctx.slots
    for s in m["sync_points"]:
        if s["slot"] not in slots:
            ctx.fail(f"sync point {s['name']} names unknown slot {s['slot']}")
        for p in [s["producer"], *s["consumers"]]:
            if p != HOST and p not in parts:
                ctx.fail(f"sync point {s['name']} names unknown partition {p[:64]!r}")
    for p in m["partitions"]:
        for b in [*p["inputs"], *p["outputs"]]:
            if b["sync"] not in syncs:
                ctx.fail(f"partition {p['name']} names unknown sync point {b['sync']}")
    for io in [*m["inputs"], *m["outputs"]]:
        if io["sync"] not in syncs:
            ctx.fail(f"model tensor {io['name'][:64]!r} names unknown sync point {io['sync']}")
    for pair in m["buffers"]["aliases"]:
        for name in pair:
            if name not in slots:
                ctx.fail(f"buffer alias names unknown slot {name[:64]!r}")
    sched = m["schedule"]
    for name in [n for lane in sched["lanes"] for n in lane["partitions"]] + [n for step in sched["steps"] for n in step]:
        if name not in parts:
            ctx.fail(f"the schedule names unknown partition {name[:64]!r}")


@_rule("bindings")
def _bindings(ctx: _Ctx) -> None:
    m, syncs = ctx.m, ctx.syncs
    for p in m["partitions"]:
        tensors: set[str] = set()
        for kind in ("inputs", "outputs"):
            bound: set[str] = set()
            for b in p[kind]:
                if b["tensor"] in tensors:
                    ctx.fail(f"partition {p['name']} binds tensor {b['tensor'][:64]!r} twice")
                tensors.add(b["tensor"])
                if b["sync"] in bound:
                    ctx.fail(f"partition {p['name']} binds sync point {b['sync']} twice")
                bound.add(b["sync"])
                s = syncs[b["sync"]]
                if kind == "inputs" and p["name"] not in s["consumers"]:
                    ctx.fail(f"partition {p['name']} reads sync point {s['name']} but is not among its consumers")
                if kind == "inputs" and s["producer"] == p["name"]:
                    ctx.fail(f"partition {p['name']} reads its own output {s['name']}")
                if kind == "outputs" and s["producer"] != p["name"]:
                    ctx.fail(f"partition {p['name']} writes sync point {s['name']} whose producer is {s['producer']}")
    parts = ctx.parts
    model_in = {io["sync"] for io in m["inputs"]}
    model_out = {io["sync"] for io in m["outputs"]}
    slot_owner: dict[str, str] = {}
    for s in m["sync_points"]:
        if len(set(s["consumers"])) != len(s["consumers"]):
            ctx.fail(f"sync point {s['name']} lists a consumer twice")
        if s["producer"] != HOST and s["name"] not in {b["sync"] for b in parts[s["producer"]]["outputs"]}:
            ctx.fail(f"sync point {s['name']}: its producer {s['producer']} does not write it (nothing produces it)")
        for c in s["consumers"]:
            if c != HOST and s["name"] not in {b["sync"] for b in parts[c]["inputs"]}:
                ctx.fail(f"sync point {s['name']}: its consumer {c} does not read it")
        if (s["producer"] == HOST) != (s["name"] in model_in):
            ctx.fail(f"sync point {s['name']} is produced by the host but is no model input" if s["producer"] == HOST
                     else f"sync point {s['name']} carries a model input but is produced by {s['producer']}, not the host")
        if (HOST in s["consumers"]) != (s["name"] in model_out):
            ctx.fail(f"sync point {s['name']} is consumed by the host but is no model output" if HOST in s["consumers"]
                     else f"sync point {s['name']} carries a model output but the host does not consume it")
        if s["slot"] in slot_owner:
            ctx.fail(f"sync points {slot_owner[s['slot']]} and {s['name']} share slot {s['slot']}")
        slot_owner[s["slot"]] = s["name"]


@_rule("delegate")
def _delegate(ctx: _Ctx) -> None:
    base = fallback()
    for p in ctx.m["partitions"]:
        if backend(p["processor"]).delegate != p["delegate"]:
            ctx.fail(f"partition {p['name']}: delegate {p['delegate']} does not match processor {p['processor']}")
        fb = p["fallback"]
        if fb is not None and (fb["processor"], fb["delegate"]) != (base.name, base.delegate):
            ctx.fail(f"partition {p['name']}: the fallback must be {base.name}/{base.delegate}")


@_rule("precision")
def _precision(ctx: _Ctx) -> None:
    for p in ctx.m["partitions"]:
        runs = backend(p["processor"]).manifest_precisions
        if runs and p["precision"] not in runs:
            ctx.fail(f"partition {p['name']}: the {p['processor']} runs {' or '.join(runs)} only, not {p['precision']}")


# ---------------------------------------------------------------- sizes, arena, layouts


def tensor_bytes(shape: list[int], dtype: str) -> int:
    """Bytes of a dense tensor (a scalar when the shape is empty)."""
    return math.prod(shape) * DTYPE_SIZES[dtype]


@_rule("tensor-size")
def _tensor_size(ctx: _Ctx) -> None:
    lim = limits()
    tensors = [(f"buffer slot {s['name']}", s["shape"], s["dtype"]) for s in ctx.m["buffers"]["slots"]]
    for kind in ("inputs", "outputs"):
        for io in ctx.m[kind]:
            what = f"model {kind[:-1]} {io['name'][:64]}"
            tensors += [(what, io["shape"], io["dtype"]), (what, io["bundle_shape"], io["bundle_dtype"])]
    for what, shape, dtype in tensors:
        if len(shape) > lim["rank"]:
            ctx.fail(f"{what}: rank {len(shape)} is above {lim['rank']}")
        if any(d > lim["dim"] for d in shape):
            ctx.fail(f"{what}: dimension {max(shape)} is above {lim['dim']}")
        if tensor_bytes(shape, dtype) > lim["tensor_bytes"]:
            ctx.fail(f"{what}: {tensor_bytes(shape, dtype)} bytes is above {lim['tensor_bytes']}")
    for s in ctx.m["buffers"]["slots"]:
        need = tensor_bytes(s["shape"], s["dtype"])
        if s["size"] < need:
            ctx.fail(f"buffer slot {s['name']} is smaller ({s['size']} bytes) than its tensor ({need})")


@_rule("arena")
def _arena(ctx: _Ctx) -> None:
    b = ctx.m["buffers"]
    cap = limits()["arena_bytes"]
    if b["arena_size"] > cap:
        ctx.fail(f"arena size {b['arena_size']} is above {cap} bytes")
    for s in b["slots"]:
        if s["offset"] % b["alignment"]:
            ctx.fail(f"buffer slot {s['name']} is not {b['alignment']}-byte aligned (offset {s['offset']})")
        if s["offset"] + s["size"] > b["arena_size"]:
            ctx.fail(f"buffer slot {s['name']} lies outside the arena ({s['offset']} + {s['size']} > {b['arena_size']})")


@_rule("io-layout")
def _io_layout(ctx: _Ctx) -> None:
    syncs, slots = ctx.syncs, ctx.slots
    for kind in ("inputs", "outputs"):
        for io in ctx.m[kind]:
            what = f"model {kind[:-1]} {io['name'][:64]}"
            shape, bshape, perm = io["shape"], io["bundle_shape"], io["perm"]
            if (io["layout"] == "NCHW") != (perm is not None):
                ctx.fail(f"{what}: layout {io['layout']} {'needs' if perm is None else 'takes no'} perm")
            if perm is not None:
                if len(perm) != len(shape) or len(bshape) != len(shape) or sorted(perm) != list(range(len(shape))):
                    ctx.fail(f"{what}: perm {perm[:8]} is not a permutation of its {len(shape)} dimensions")
                if [shape[p] for p in perm] != bshape:
                    ctx.fail(f"{what}: bundle_shape {bshape} is not shape {shape} permuted by {perm}")
            if io["layout"] == "as-is" and bshape != shape:
                ctx.fail(f"{what}: layout as-is but bundle_shape {bshape} is not shape {shape}")
            if math.prod(shape) != math.prod(bshape):
                ctx.fail(f"{what}: shape {shape} and bundle_shape {bshape} have different element counts")
            q = io["quant"]
            if q is None and io["dtype"] != io["bundle_dtype"]:
                ctx.fail(f"{what}: dtype {io['dtype']} differs from bundle dtype {io['bundle_dtype']} without quantization")
            if q is not None:
                if len(q["scale"]) != 1 or len(q["zero_point"]) != 1:
                    ctx.fail(f"{what}: only per-tensor quantization is supported at the model boundary")
                if not (math.isfinite(q["scale"][0]) and q["scale"][0] > 0):
                    ctx.fail(f"{what}: quantization scale must be positive and finite")
            slot = slots[syncs[io["sync"]]["slot"]]
            if slot["dtype"] != io["bundle_dtype"] or slot["shape"] != bshape:
                ctx.fail(f"{what}: slot {slot['name']} ({slot['dtype']}{slot['shape']}) does not hold its bundle tensor ({io['bundle_dtype']}{bshape})")


# ---------------------------------------------------------------- 8-bit sync points and conversions


@_rule("sync-quant")
def _sync_quant(ctx: _Ctx) -> None:
    for s in ctx.m["sync_points"]:
        slot = ctx.slots[s["slot"]]
        q, eight_bit = s["quant"], slot["dtype"] in QUANTIZED
        if (q is not None) != eight_bit:
            ctx.fail(f"sync point {s['name']}: slot {slot['name']} is {slot['dtype']} {'without' if eight_bit else 'with'} quantization")
        if q is None:
            continue
        if len(q["scale"]) != 1 or len(q["zero_point"]) != 1 or not (math.isfinite(q["scale"][0]) and q["scale"][0] > 0):
            ctx.fail(f"sync point {s['name']}: quantization must be one positive scale and one zero point")
        lo, hi = (-128, 127) if slot["dtype"] == "int8" else (0, 255)
        if not lo <= q["zero_point"][0] <= hi:
            ctx.fail(f"sync point {s['name']}: zero point {q['zero_point'][0]} is outside {slot['dtype']}")


@_rule("conversions")
def _conversions(ctx: _Ctx) -> None:
    for s in ctx.m["sync_points"]:
        dtype = ctx.slots[s["slot"]]["dtype"]
        for c in s["conversions"]:
            # A requantization (an 8-bit tensor into another scale of its dtype) keeps the dtype: only a consumer's QUANTIZE.
            requantizes = c["op"] == "QUANTIZE" and c["from_dtype"] in QUANTIZED and c["partition"] in s["consumers"]
            if c["from_dtype"] == c["to_dtype"] and not requantizes:
                ctx.fail(f"sync point {s['name']}: conversion {c['op']} does not change the dtype")
            by_producer = c["partition"] == s["producer"] and c["to_dtype"] == dtype
            by_consumer = c["partition"] in s["consumers"] and c["from_dtype"] == dtype
            if not (by_producer or by_consumer):
                ctx.fail(f"sync point {s['name']}: conversion in {c['partition']} is neither its producer's into {dtype} nor a consumer's from it")


# ---------------------------------------------------------------- schedule and liveness


@_rule("schedule-cover")
def _schedule_cover(ctx: _Ctx) -> None:
    parts = ctx.parts
    sched = ctx.m["schedule"]
    lanes_seen: set[tuple[str, int]] = set()
    in_lane: dict[str, int] = {n: 0 for n in parts}
    in_step: dict[str, int] = {n: 0 for n in parts}
    for lane in sched["lanes"]:
        key = (lane["processor"], lane["index"])
        if key in lanes_seen:
            ctx.fail(f"the schedule has two lanes {lane['index']} for processor {lane['processor']}")
        lanes_seen.add(key)
        for n in lane["partitions"]:
            if parts[n]["processor"] != lane["processor"]:
                ctx.fail(f"partition {n} ({parts[n]['processor']}) is on the {lane['processor']} lane")
            in_lane[n] += 1
    for step in sched["steps"]:
        for n in step:
            in_step[n] += 1
    for n in parts:
        if in_lane[n] != 1 or in_step[n] != 1:
            ctx.fail(f"the schedule does not list partition {n} exactly once (lanes {in_lane[n]}, steps {in_step[n]})")


def _edges(m: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(producer, consumer, sync point) for every partition-to-partition dependency."""
    return sorted(
        (s["producer"], c, s["name"]) for s in m["sync_points"] if s["producer"] != HOST for c in s["consumers"] if c != HOST
    )


@_rule("dataflow-cycle")
def _dataflow_cycle(ctx: _Ctx) -> None:
    succ: dict[str, list[str]] = {n: [] for n in ctx.parts}
    for a, b, _ in _edges(ctx.m):
        succ[a].append(b)
    state: dict[str, int] = {}  # 1 on the DFS path, 2 done
    for root in sorted(succ):
        if root in state:
            continue
        path, stack = [root], [iter(succ[root])]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                ctx.fail(f"partitions depend on themselves: {' -> '.join(cycle)}")
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(succ[nxt]))


@_rule("schedule-order")
def _schedule_order(ctx: _Ctx) -> None:
    sched = ctx.m["schedule"]
    step = {n: k for k, s in enumerate(sched["steps"]) for n in s}
    for a, b, sync in _edges(ctx.m):
        if step[a] >= step[b]:
            ctx.fail(f"partition {b} (step {step[b]}) reads {sync} produced by {a} at step {step[a]}")
    for lane in sched["lanes"]:
        order = lane["partitions"]
        for x, y in zip(order, order[1:]):
            if step[x] > step[y]:
                ctx.fail(f"lane {lane_name(lane['processor'], lane['index'])} runs {x} (step {step[x]}) before {y} (step {step[y]}): not in step order")


@_rule("slot-overlap")
def _slot_overlap(ctx: _Ctx) -> None:
    m = ctx.m
    anc: dict[str, set[str]] = {}  # partition -> partitions that finish before it starts (through sync points)
    preds: dict[str, set[str]] = {n: set() for n in ctx.parts}
    for a, b, _ in _edges(m):
        preds[b].add(a)
    for step in m["schedule"]["steps"]:  # producers are in earlier steps (schedule-order)
        for n in step:
            anc[n] = set(preds[n]).union(*(anc[p] for p in preds[n]))
    by_slot = {s["slot"]: s for s in m["sync_points"]}

    def before(x: dict[str, Any], y: dict[str, Any]) -> bool:
        """Every read of x is over before y is written."""
        return y["producer"] != HOST and HOST not in x["consumers"] and all(c in anc[y["producer"]] for c in x["consumers"])

    for a, b in sharing_pairs(m["buffers"]["slots"]):
        x, y = by_slot.get(a), by_slot.get(b)
        if x is None or y is None:
            continue  # a slot no sync point uses is never live
        if not (before(x, y) or before(y, x)):
            ctx.fail(f"buffer slots {a} and {b} share arena bytes while both are live ({x['name']} and {y['name']})")


@_rule("aliases")
def _aliases(ctx: _Ctx) -> None:
    listed = [tuple(sorted(p)) for p in ctx.m["buffers"]["aliases"]]
    actual = {tuple(sorted(p)) for p in sharing_pairs(ctx.m["buffers"]["slots"])}
    if len(set(listed)) != len(listed) or any(a == b for a, b in listed):
        ctx.fail("buffers.aliases lists a pair twice or a slot with itself")
    if set(listed) != actual:
        extra = sorted(set(listed) - actual)
        missing = sorted(actual - set(listed))
        ctx.fail(
            "buffers.aliases does not list exactly the slots that share bytes"
            + (f"; listed but disjoint: {'~'.join(extra[0])}" if extra else "")
            + (f"; sharing but not listed: {'~'.join(missing[0])}" if missing else "")
        )


# ---------------------------------------------------------------- files


@_rule("partition-files")
def _partition_files(ctx: _Ctx) -> None:
    for p in ctx.m["partitions"]:
        path = ctx.inside(p["file"], f"partition {p['name']} file")
        if ctx.file_sha256(path) != p["sha256"]:
            ctx.fail(f"partition file {p['file']} was modified (sha256 mismatch)", ctx.bundle)
        if p["fallback"] is not None:
            ctx.inside(p["fallback"]["file"], f"partition {p['name']} fallback file")


_SUM_LINE = re.compile(r"^([0-9a-f]{64})  (.+)$")


@_rule("sha256sums")
def _sha256sums(ctx: _Ctx) -> None:
    path = ctx.bundle / SHA256SUMS
    cap = limits()["sha256sums_bytes"]
    if not path.is_file() or path.stat().st_size > cap:
        ctx.fail(f"no {SHA256SUMS} in the bundle, or it is larger than {cap} bytes", ctx.bundle)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        ctx.fail(f"cannot read {SHA256SUMS}: {exc}", path)
    listed: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        match = _SUM_LINE.match(line)
        if match is None:
            ctx.fail(f"{SHA256SUMS} line {n} is not '<sha256>  <path>'", path)
        digest, rel = match.groups()
        if rel in listed:
            ctx.fail(f"{SHA256SUMS} lists {rel[:128]} twice", path)
        listed[rel] = digest
        if ctx.file_sha256(ctx.inside(rel, f"{SHA256SUMS} entry")) != digest:
            ctx.fail(f"{rel[:128]} was modified (sha256 differs from {SHA256SUMS})", path)
    files = [MANIFEST_JSON, MANIFEST_BIN] + [p["file"] for p in ctx.m["partitions"]]
    files += [p["fallback"]["file"] for p in ctx.m["partitions"] if p["fallback"] is not None]
    for rel in files:
        if rel not in listed:
            ctx.fail(f"{SHA256SUMS} does not list {rel}", path)


@_rule("partition-tensors")
def _partition_tensors(ctx: _Ctx) -> None:
    slot_of_sync = {s["name"]: ctx.slots[s["slot"]] for s in ctx.m["sync_points"]}
    for p in ctx.m["partitions"]:
        host = backend(p["processor"]).host_file(p)
        # every file a runtime may load: the phone's, its CPU fallback (often the same file), the host's among them
        for rel in dict.fromkeys([p["file"]] + ([p["fallback"]["file"]] if p["fallback"] is not None else [])):
            try:
                loaded = load_partition(p, ctx.bundle / rel, slot_of_sync)
            except ModelRefused as exc:
                ctx.fail(f"partition {p['name']}: {rel}: {exc}", ctx.bundle)
            if rel == host:
                ctx.loaded[p["name"]] = loaded
