"""The binary manifest (`manifest.bin`): the JSON manifest as a FlatBuffer (`schemas/manifest.fbs`, id "STRB").

One generic codec walks the data model parsed from `schemas/manifest.fbs` (`stretchc.bundle.schema`) and the
FlatBuffers object API code flatc generates from it (`stretchc/bundle/fbs/`, `scripts/gen_manifest.py`); it
knows no manifest field by name. The JSON form of each field and table is what the .fbs attributes say:
`nullable` <-> null, `json_optional` <-> key left out, `json_map` <-> object, `json_tuple` <-> array,
`json_unwrap` <-> the one field's value, `json_any` <-> any JSON value (nested lists and objects as canonical
JSON text).

`encode_manifest(m)` is deterministic (same dict -> same bytes; map keys sorted) and
`decode_manifest(encode_manifest(m)) == m` for every manifest the schema admits. A value the binary form
cannot carry is `StretchError("internal")` (the compiler built it); bytes that are not a manifest buffer, a
missing required field, an unknown value kind or a duplicate map key are `StretchError("bad-bundle")`, never
a crash.
"""

from __future__ import annotations

import importlib
import json
import math
from functools import lru_cache
from typing import Any

import flatbuffers

from stretchc import safejson
from stretchc.bundle.format import limits
from stretchc.bundle.schema import ANY_KINDS, INTEGERS, Field, Table, manifest_schema
from stretchc.errors import StretchError

MAX_BYTES = 64 << 20  # a manifest is kilobytes; anything this large is not one


@lru_cache(maxsize=1)
def object_classes() -> dict[str, Any]:
    """The flatc object API class (`<Table>T`) of every table, by table name (for tools that edit a
    manifest.bin beyond what JSON can say). All modules are imported first: the generated classes refer to each
    other through the package's attributes."""
    schema = manifest_schema()
    modules = {name: importlib.import_module(f"{schema.namespace}.{name}") for name in schema.tables}
    return {name: getattr(module, f"{name}T") for name, module in modules.items()}


def _attr(field: Field) -> str:
    """The object API attribute of `field` (flatc's lowerCamelCase of the snake_case name)."""
    head, *rest = field.name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _bounds(type_name: str) -> tuple[int, int]:
    bits, signed = INTEGERS[type_name]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


# ---------------------------------------------------------------- encode


class _Unencodable(Exception):
    pass


def _scalar_in(kind: str, type_name: str, value: Any, where: str) -> Any:
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        lo, hi = _bounds(type_name)
        if lo <= value <= hi:
            return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "string" and isinstance(value, str):
        return value
    raise _Unencodable(f"{where}: {str(value)[:64]!r} is not a {type_name}")


def _any_in(table: Table, key: str, value: Any) -> Any:
    """A json_any table holding `value` under `key`."""
    schema = manifest_schema()
    t = object_classes()[table.name]()
    kinds = dict(schema.enums[table.fields[1].type.name].values)
    t.key = key
    if value is None:
        t.kind = kinds["Null"]
    elif isinstance(value, bool):
        t.kind, t.boolValue = kinds["Bool"], value
    elif isinstance(value, int) and -(1 << 63) <= value < (1 << 63):
        t.kind, t.intValue = kinds["Int"], value
    elif isinstance(value, float) and math.isfinite(value):
        t.kind, t.floatValue = kinds["Float"], value
    elif isinstance(value, str):
        t.kind, t.stringValue = kinds["String"], value
    else:
        t.kind, t.stringValue = kinds["Json"], json.dumps(value, sort_keys=True, separators=(",", ":"))
    return t


def _field_in(field: Field, value: Any, where: str) -> Any:
    if value is None and field.presence == "nullable":
        return None
    if field.has("json_map"):
        if not isinstance(value, dict):
            raise _Unencodable(f"{where}: expected an object")
        return [_any_in(manifest_schema().tables[field.type.name], str(k), v) for k, v in sorted(value.items())]
    if field.type.vector:
        if not isinstance(value, list):
            raise _Unencodable(f"{where}: expected a list")
        return [_value_in(field, x, f"{where}[{i}]") for i, x in enumerate(value)]
    return _value_in(field, value, where)


def _value_in(field: Field, value: Any, where: str) -> Any:
    """One value (or vector item) of `field` as the object API holds it."""
    if field.type.kind == "table":
        return _table_in(manifest_schema().tables[field.type.name], value, where)
    return _scalar_in(field.type.kind, field.type.name, value, where)


def _table_in(table: Table, value: Any, where: str) -> Any:
    if table.shape == "unwrap":
        value = {table.fields[0].name: value}
    elif table.shape == "tuple":
        if not isinstance(value, list) or len(value) != len(table.fields):
            raise _Unencodable(f"{where}: expected a list of {len(table.fields)}")
        value = {f.name: x for f, x in zip(table.fields, value)}
    if not isinstance(value, dict):
        raise _Unencodable(f"{where}: expected an object")
    unknown = sorted(set(value) - {f.name for f in table.fields})
    if unknown:
        raise _Unencodable(f"{where}: unknown key {str(unknown[0])[:64]!r}")
    t = object_classes()[table.name]()
    for f in table.fields:
        if f.name in value:
            setattr(t, _attr(f), _field_in(f, value[f.name], f"{where}.{f.name}"))
        elif f.presence != "optional":
            raise _Unencodable(f"{where}.{f.name} is missing")
    return t


def encode_manifest(manifest: dict[str, Any]) -> bytes:
    """The manifest as FlatBuffer bytes (file identifier "STRB"); deterministic."""
    schema = manifest_schema()
    try:
        root = _table_in(schema.root_table, manifest, "manifest")
        builder = flatbuffers.Builder(4096)
        builder.Finish(root.Pack(builder), file_identifier=schema.file_identifier.encode())
        return bytes(builder.Output())
    except _Unencodable as exc:
        raise StretchError("internal", f"cannot encode the manifest as a flatbuffer: {exc}") from None


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


def _scalar_out(kind: str, value: Any, where: str) -> Any:
    if kind == "string":
        if not isinstance(value, (bytes, bytearray)):
            raise _Bad(f"missing string {where}")
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad(f"{where} is not UTF-8") from None
    return {"bool": bool, "int": int, "float": float}[kind](value)


def _any_out(table: Table, t: Any, where: str) -> tuple[str, Any]:
    names = dict((v, k) for k, v in manifest_schema().enums[table.fields[1].type.name].values)
    key = _scalar_out("string", t.key, f"{where} key")
    kind = names.get(t.kind)
    if kind not in ANY_KINDS:
        raise _Bad(f"{where} {key}: unknown value kind {t.kind}")
    if kind in ("String", "Json"):
        text = _scalar_out("string", t.stringValue, f"{where} {key}")
        if kind == "String":
            return key, text
        try:
            return key, safejson.loads(text, max_depth=limits()["json_depth"])
        except ValueError:
            raise _Bad(f"{where} {key}: not JSON") from None
    return key, {"Null": None, "Bool": bool(t.boolValue), "Int": int(t.intValue), "Float": float(t.floatValue)}[kind]


def _field_out(field: Field, value: Any, where: str) -> Any:
    if value is None:
        if field.presence == "required":
            raise _Bad(f"missing {where}")
        return None
    if field.has("json_map"):
        table = manifest_schema().tables[field.type.name]
        out: dict[str, Any] = {}
        for i, x in enumerate(value):
            key, v = _any_out(table, _present(x, f"{where}[{i}]"), where)
            if key in out:
                raise _Bad(f"{where} lists {key[:64]!r} twice")
            out[key] = v
        return out
    if field.type.vector:
        items = value.tolist() if hasattr(value, "tolist") else value
        return [_value_out(field, x, f"{where}[{i}]") for i, x in enumerate(items)]
    return _value_out(field, value, where)


def _present(x: Any, where: str) -> Any:
    if x is None:
        raise _Bad(f"missing {where}")
    return x


def _value_out(field: Field, value: Any, where: str) -> Any:
    if field.type.kind == "table":
        return _table_out(manifest_schema().tables[field.type.name], _present(value, where), where)
    return _scalar_out(field.type.kind, value, where)


def _table_out(table: Table, t: Any, where: str) -> Any:
    out: dict[str, Any] = {}
    for f in table.fields:
        value = _field_out(f, getattr(t, _attr(f)), f"{where}.{f.name}")
        if value is not None or f.presence != "optional":
            out[f.name] = value
    if table.shape == "unwrap":
        return out[table.fields[0].name]
    if table.shape == "tuple":
        return [out[f.name] for f in table.fields]
    return out


def decode_manifest(data: bytes) -> dict[str, Any]:
    """The manifest dict carried by `data`; `StretchError("bad-bundle")` if `data` is not a manifest buffer."""
    schema = manifest_schema()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise StretchError("bad-bundle", "manifest.bin: expected bytes")
    data = _Strict(bytes(data))
    if len(data) < 8 or len(data) > MAX_BYTES:
        raise StretchError("bad-bundle", f"manifest.bin: {len(data)} bytes is not a manifest buffer")
    if data[4:8] != schema.file_identifier.encode():
        raise StretchError("bad-bundle", f"manifest.bin: not a stretchc manifest (file identifier is not {schema.file_identifier})")
    try:
        root = object_classes()[schema.root].InitFromBuf(data, int.from_bytes(bytes(data)[:4], "little"))
        out = _table_out(schema.root_table, root, "manifest")
    except _Bad as exc:
        raise StretchError("bad-bundle", f"manifest.bin: {exc}") from None
    except RecursionError:
        raise StretchError("bad-bundle", "manifest.bin: malformed flatbuffer (nesting)") from None
    except Exception as exc:  # noqa: BLE001  any failure to read hostile bytes is a bad bundle, never a crash
        raise StretchError("bad-bundle", f"manifest.bin: malformed flatbuffer ({type(exc).__name__})") from None
    assert isinstance(out, dict)
    return out
