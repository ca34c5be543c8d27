"""The manifest's data model, read from `schemas/manifest.fbs` (the only hand-written definition of it).

`parse(text)` is a small, strict reader of the FlatBuffers schema language: the subset the manifest uses
(namespace, file_identifier, file_extension, attribute, enum, table, root_type, `///` doc comments) and
nothing else; anything outside it is refused with the line it is on, so no construct is silently misread.
It returns the tables with their fields in declaration order (their FlatBuffers slots), their types, doc
comments and attributes, and checks that every field says how it appears in JSON (see the attribute list
at the top of the .fbs): a non-scalar field is `required`, `nullable` (JSON null) or `json_optional` (key left
out); `json_map`, `json_tuple`, `json_unwrap` and `json_any` are only used where their JSON form exists.

`manifest_schema()` is the parsed `schemas/manifest.fbs`: the JSON <-> FlatBuffer codec
(`stretchc.bundle.binary`) walks it, and `stretchc.bundle.codegen` generates the JSON schema and the C++
structs and field checks from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from typing import Iterator

from stretchc.schemas import schema_path

# FlatBuffers scalar types this reader takes: integers (bits, signed), floats, bool.
INTEGERS: dict[str, tuple[int, bool]] = {"byte": (8, True), "ubyte": (8, False), "short": (16, True), "int": (32, True), "long": (64, True)}
FLOATS = ("double",)
BOOL = "bool"
STRING = "string"

# Custom attributes (declared in the .fbs with `attribute "...";`) and where each may appear.
FIELD_ATTRIBUTES = ("nullable", "json_optional", "json_map", "const", "min", "max", "min_items", "one_of", "kind")
TABLE_ATTRIBUTES = ("json_tuple", "json_unwrap", "json_any")
BUILTIN_FIELD_ATTRIBUTES = ("required", "key")
# The fields of a json_any table, in this order, with their types (the codec's typed JSON value).
ANY_FIELDS = (("key", STRING), ("kind", None), ("bool_value", BOOL), ("int_value", "long"), ("float_value", "double"), ("string_value", STRING))
ANY_KINDS = ("Null", "Bool", "Int", "Float", "String", "Json")


class SchemaError(ValueError):
    """The .fbs is outside the subset this reader takes, or inconsistent (message names the line)."""


@dataclass(frozen=True)
class Type:
    """A field's type: `name` is a scalar ("long", "double", "bool"), "string", an enum or a table; maybe a vector.
    `kind` is "int", "float", "bool", "string", "enum" or "table"."""

    name: str
    vector: bool
    kind: str

    @property
    def scalar(self) -> bool:
        return not self.vector and self.kind in ("int", "float", "bool", "enum")


@dataclass(frozen=True)
class Field:
    name: str
    type: Type
    slot: int  # index in the table (FlatBuffers field id)
    doc: str
    attrs: tuple[tuple[str, str | int | None], ...]
    default: str | None
    line: int

    def attr(self, name: str) -> str | int | None:
        return dict(self.attrs).get(name)

    def has(self, name: str) -> bool:
        return name in dict(self.attrs)

    @property
    def presence(self) -> str:
        """How an absent value shows in JSON: "scalar" (never absent), "required", "nullable" (null) or "optional" (no key)."""
        if self.type.scalar:
            return "scalar"
        for flag, presence in (("required", "required"), ("nullable", "nullable"), ("json_optional", "optional")):
            if self.has(flag):
                return presence
        raise AssertionError(self.name)  # refused by parse

    @property
    def words(self) -> tuple[str, ...]:
        """The values `one_of` allows (empty when unconstrained)."""
        value = self.attr("one_of")
        return tuple(str(value).split()) if value is not None else ()


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    fields: tuple[Field, ...]
    attrs: tuple[str, ...]

    @property
    def shape(self) -> str:
        """The table's JSON form: "object", "tuple", "unwrap" or "any"."""
        for shape in ("tuple", "unwrap", "any"):
            if f"json_{shape}" in self.attrs:
                return shape
        return "object"

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


@dataclass(frozen=True)
class Enum:
    name: str
    doc: str
    base: str
    values: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Schema:
    namespace: str
    file_identifier: str
    file_extension: str
    root: str
    tables: dict[str, Table]
    enums: dict[str, Enum]

    @cached_property
    def root_table(self) -> Table:
        return self.tables[self.root]

    def walk(self) -> Iterator[Table]:
        """Every table reachable from the root, each once, in first-use order (depth first)."""
        seen: set[str] = set()
        stack = [self.root]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            table = self.tables[name]
            yield table
            stack.extend(reversed([f.type.name for f in table.fields if f.type.kind == "table" and f.type.name not in seen]))


_TOKEN = re.compile(
    r"""(?P<doc>///[^\n]*)|(?P<comment>//[^\n]*)|(?P<space>\s+)|(?P<string>"[^"\\\n]*")|(?P<number>-?[0-9]+)"""
    r"""|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[{}\[\]():;,=.])"""
)


class _Reader:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str, int, str]] = []  # (kind, text, line, doc before it)
        doc: list[str] = []
        line, pos = 1, 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise SchemaError(f"line {line}: unexpected character {text[pos]!r}")
            kind, value = m.lastgroup or "", m.group()
            if kind == "doc":
                doc.append(value[3:].strip())
            elif kind not in ("comment", "space"):
                self.tokens.append((kind, value, line, " ".join(d for d in doc if d)))
                doc = []
            line += value.count("\n")
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str, int, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("eof", "", self.tokens[-1][2] if self.tokens else 1, "")

    def take(self, expect: str | None = None, kind: str | None = None) -> tuple[str, str, int, str]:
        tok = self.peek()
        if (expect is not None and tok[1] != expect) or (kind is not None and tok[0] != kind) or tok[0] == "eof":
            raise SchemaError(f"line {tok[2]}: expected {expect or kind}, found {tok[1] or 'the end'!r}")
        self.i += 1
        return tok

    def accept(self, text: str) -> bool:
        if self.peek()[1] == text and self.peek()[0] != "string":
            self.i += 1
            return True
        return False


def _metadata(r: _Reader) -> tuple[tuple[str, str | int | None], ...]:
    out: list[tuple[str, str | int | None]] = []
    if not r.accept("("):
        return ()
    while True:
        name = r.take(kind="ident")[1]
        value: str | int | None = None
        if r.accept(":"):
            kind, text, _, _ = r.peek()
            if kind not in ("string", "number"):
                raise SchemaError(f"line {r.peek()[2]}: attribute {name} takes a string or an integer")
            r.take()
            value = text[1:-1] if kind == "string" else int(text)
        out.append((name, value))
        if r.accept(")"):
            return tuple(out)
        r.take(",")


def _type(r: _Reader) -> tuple[str, bool]:
    if r.accept("["):
        inner = r.take(kind="ident")[1]
        r.take("]")
        return inner, True
    return r.take(kind="ident")[1], False


def _enum(r: _Reader, line: int, doc: str) -> Enum:
    name = r.take(kind="ident")[1]
    r.take(":")
    base = r.take(kind="ident")[1]
    if base not in INTEGERS:
        raise SchemaError(f"line {line}: enum {name} must have an integer type")
    r.take("{")
    values: list[tuple[str, int]] = []
    while not r.accept("}"):
        vname = r.take(kind="ident")[1]
        number = int(r.take(kind="number")[1]) if r.accept("=") else (values[-1][1] + 1 if values else 0)
        values.append((vname, number))
        if not r.accept(","):
            r.take("}")
            break
    return Enum(name, doc, base, tuple(values))


def _table(r: _Reader, line: int, doc: str) -> Table:
    """A table whose field types are not resolved yet (Type.kind is "")."""
    name = r.take(kind="ident")[1]
    attrs = _metadata(r)
    for a, v in attrs:
        if a not in TABLE_ATTRIBUTES or v is not None:
            raise SchemaError(f"line {line}: table {name}: attribute {a} is not one this reader knows ({', '.join(TABLE_ATTRIBUTES)})")
    r.take("{")
    fields: list[Field] = []
    while not r.accept("}"):
        _, fname, fline, fdoc = r.take(kind="ident")
        r.take(":")
        tname, vector = _type(r)
        default = r.take()[1] if r.accept("=") else None
        fattrs = _metadata(r)
        r.take(";")
        fields.append(Field(fname, Type(tname, vector, ""), len(fields), fdoc, fattrs, default, fline))
    return Table(name, doc, tuple(fields), tuple(a for a, _ in attrs))


def _resolve(t: Table, enums: dict[str, Enum], tables: set[str]) -> Table:
    """`t` with the kind of every field's type."""
    fields = []
    for f in t.fields:
        name = f.type.name
        kind = "int" if name in INTEGERS else "float" if name in FLOATS else name if name in (BOOL, STRING) else "enum" if name in enums else "table" if name in tables else None
        if kind is None:
            raise SchemaError(f"line {f.line}: {t.name}.{f.name}: unknown type {name}")
        fields.append(replace(f, type=Type(name, f.type.vector, kind)))
    return replace(t, fields=tuple(fields))


def parse(text: str) -> Schema:
    """The schema `text` declares (see module docstring); SchemaError if it is outside the subset or inconsistent."""
    r = _Reader(text)
    namespace = file_identifier = file_extension = root = ""
    declared: set[str] = set()
    tables: list[Table] = []
    enums: dict[str, Enum] = {}
    while r.peek()[0] != "eof":
        _, word, line, doc = r.take(kind="ident")
        if word == "enum":
            enum = _enum(r, line, doc)
            enums[enum.name] = enum
            continue
        if word == "table":
            tables.append(_table(r, line, doc))
            continue
        if word == "namespace":
            parts = [r.take(kind="ident")[1]]
            while r.accept("."):
                parts.append(r.take(kind="ident")[1])
            namespace = ".".join(parts)
        elif word in ("file_identifier", "file_extension", "attribute"):
            value = r.take(kind="string")[1][1:-1]
            if word == "attribute":
                declared.add(value)
            elif word == "file_identifier":
                file_identifier = value
            else:
                file_extension = value
        elif word == "root_type":
            root = r.take(kind="ident")[1]
        else:
            raise SchemaError(f"line {line}: {word!r} is outside the schema subset this reader takes")
        r.take(";")
    names = {t.name for t in tables}
    schema = Schema(namespace, file_identifier, file_extension, root, {t.name: _resolve(t, enums, names) for t in tables}, enums)
    _check(schema, declared)
    return schema


def _check(s: Schema, declared: set[str]) -> None:
    """Refuse a schema whose JSON form would be ambiguous or that uses what the codec does not implement."""
    if s.root not in s.tables:
        raise SchemaError(f"root_type {s.root!r} is not a table")
    for name in FIELD_ATTRIBUTES + TABLE_ATTRIBUTES:
        if name not in declared:
            raise SchemaError(f'attribute "{name}" is not declared')
    for t in s.tables.values():
        for f in t.fields:
            where = f"line {f.line}: {t.name}.{f.name}"
            for a, _ in f.attrs:
                if a not in FIELD_ATTRIBUTES + BUILTIN_FIELD_ATTRIBUTES:
                    raise SchemaError(f"{where}: attribute {a} is not one this reader knows")
            flags = [a for a in ("required", "nullable", "json_optional") if f.has(a)]
            if f.type.scalar and flags:
                raise SchemaError(f"{where}: a scalar is always present ({flags[0]} does not apply)")
            if not f.type.scalar and len(flags) != 1:
                raise SchemaError(f"{where}: say how an absent value shows in JSON: exactly one of required, nullable, json_optional")
            if f.default is not None and not (f.type.kind == "enum" and f.default == s.enums[f.type.name].values[0][0]):
                raise SchemaError(f"{where}: only an enum's first value may be written as a default")
            for a in ("min", "max"):
                if f.has(a) and (f.type.kind != "int" or not isinstance(f.attr(a), int)):
                    raise SchemaError(f"{where}: {a} bounds integers")
            if f.has("min_items") and (not f.type.vector or not isinstance(f.attr("min_items"), int)):
                raise SchemaError(f"{where}: min_items applies to vectors")
            if (f.has("one_of") or f.has("kind")) and f.type.name != STRING:
                raise SchemaError(f"{where}: one_of and kind apply to strings")
            if f.has("const") and not f.type.scalar and f.type.name != STRING:
                raise SchemaError(f"{where}: const applies to scalars and strings")
            if f.has("json_map"):
                element = s.tables.get(f.type.name)
                if not f.type.vector or element is None or element.shape != "any":
                    raise SchemaError(f"{where}: json_map is a vector of a json_any table")
            if f.type.kind == "enum" and (f.type.vector or t.shape != "any"):
                raise SchemaError(f"{where}: an enum is only the kind of a json_any table")
        _check_shape(s, t)


def _check_shape(s: Schema, t: Table) -> None:
    if len([a for a in t.attrs if a in TABLE_ATTRIBUTES]) > 1:
        raise SchemaError(f"table {t.name}: at most one of {', '.join(TABLE_ATTRIBUTES)}")
    if t.shape == "unwrap" and len(t.fields) != 1:
        raise SchemaError(f"table {t.name}: json_unwrap needs exactly one field")
    if t.shape == "tuple" and any(f.presence not in ("required", "scalar") for f in t.fields):
        raise SchemaError(f"table {t.name}: the fields of a json_tuple table are all present")
    if t.shape == "any":
        got = tuple((f.name, None if f.type.kind == "enum" else f.type.name) for f in t.fields)
        kind = s.enums.get(t.fields[1].type.name) if len(t.fields) > 1 else None
        if got != ANY_FIELDS or kind is None or tuple(n for n, _ in kind.values) != ANY_KINDS:
            raise SchemaError(f"table {t.name}: a json_any table has the fields {[n for n, _ in ANY_FIELDS]} and a kind enum {list(ANY_KINDS)}")
        if not t.fields[0].has("key") or t.fields[0].presence != "required" or t.fields[-1].presence != "nullable":
            raise SchemaError(f"table {t.name}: a json_any table's key is (key, required) and its string_value nullable")


@lru_cache(maxsize=1)
def manifest_schema() -> Schema:
    """The parsed `schemas/manifest.fbs`."""
    return parse(schema_path("manifest.fbs").read_text())
