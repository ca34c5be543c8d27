"""`android_runtime/src/generated/manifest_model.h` from the data model of `schemas/manifest.fbs`: the manifest
as plain C++ structs, and per table

- `Decode(const fbs::T&, at, T*)`: the verified FlatBuffer into the struct, refusing what the Python codec
  refuses (`manifest::Malformed`, rule manifest-syntax): a missing required field, a string that is not UTF-8,
  an unknown enum value, a map key listed twice, a json_any value without its text;
- `Check(const T&, at)`: every per-field rule the JSON schema states (`manifest::FieldError`, rule schema):
  value sets, bounds, const values, fewest items, no NUL in strings, finite numbers.

The primitives both use are hand-written in `android_runtime/src/manifest_fields.h`; the field list is not.
"""

from __future__ import annotations

import json

from stretchc.bundle.codegen.vocabulary import Chars, Words, expand
from stretchc.bundle.schema import Field, Schema, Table

_SCALARS = {"long": "int64_t", "int": "int32_t", "short": "int16_t", "byte": "int8_t", "ubyte": "uint8_t", "double": "double", "bool": "bool"}


def _c(value: str | int) -> str:
    """A C++ literal (strings: ASCII)."""
    return json.dumps(value) if isinstance(value, str) else str(value)


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.replace("-", "_").split("_"))


def _constant(t: Table, f: Field) -> str:
    """The name of a field's one_of words or const value."""
    return f"k{t.name}{_camel(f.name)}"


def _indent(lines: list[str], n: int = 2) -> list[str]:
    return [" " * n + line for line in lines]


class _Header:
    def __init__(self, schema: Schema, kinds: dict[str, Chars | Words]) -> None:
        self.schema = schema
        self.kinds = kinds
        self.tables: list[Table] = []  # each after the tables its fields hold (C++ needs complete types)
        self._visit(schema.root_table)

    def _visit(self, t: Table) -> None:
        if t in self.tables:
            return
        for f in t.fields:
            if f.type.kind == "table":
                self._visit(self.schema.tables[f.type.name])
        self.tables.append(t)

    # ------------------------------------------------------------ structs

    def _type(self, f: Field) -> str:
        kind = f.type.kind
        element = f"fbs::{f.type.name}" if kind == "enum" else f.type.name if kind == "table" else "std::string" if kind == "string" else _SCALARS[f.type.name]
        if f.has("json_map"):
            return f"std::map<std::string, {element}>"
        t = f"std::vector<{element}>" if f.type.vector else element
        return f"std::optional<{t}>" if f.presence in ("nullable", "optional") else t

    def _init(self, f: Field) -> str:
        if not f.type.scalar:
            return ""
        if f.type.kind == "enum":
            return f" = fbs::{f.type.name}::{self.schema.enums[f.type.name].values[0][0]}"
        return " = false" if f.type.kind == "bool" else " = 0"

    def struct(self, t: Table) -> list[str]:
        lines = [f"// {t.doc}"] if t.doc else []
        lines.append(f"struct {t.name} {{")
        for f in t.fields:
            lines += [f"  // {f.doc}"] if f.doc else []
            lines.append(f"  {self._type(f)} {f.name}{self._init(f)};")
        return lines + ["};", ""]

    # ------------------------------------------------------------ Decode

    def _decode_field(self, f: Field) -> list[str]:
        at, get = f'Sub(at, "{f.name}")', f"x.{f.name}()"
        kind = f.type.kind
        if f.type.scalar:
            value = f"DecodeEnum({get}, fbs::EnumValues{f.type.name}(), {at})" if kind == "enum" else get
            return [f"out->{f.name} = {value};"]
        optional = f.presence in ("nullable", "optional")
        dst = f"out->{f.name}.emplace()" if optional else f"out->{f.name}"
        item = f"Item({at}, i)"
        loop = f"for (flatbuffers::uoffset_t i = 0; i < {get}->size(); ++i)"
        if f.has("json_map"):
            key = next(k for k in self.schema.tables[f.type.name].fields if k.has("key")).name
            body = [
                f"{loop} {{",
                f"  {f.type.name} v;",
                f"  Decode(*{get}->Get(i), {item}, &v);",
                f"  std::string key = v.{key};",
                f'  if (!out->{f.name}.emplace(key, std::move(v)).second) throw Malformed({at}, "lists " + Quoted(key) + " twice");',
                "}",
            ]
        elif kind == "table" and f.type.vector:
            body = [f"auto& list = {dst};", f"{loop} Decode(*{get}->Get(i), {item}, &list.emplace_back());"]
        elif kind == "table":
            body = [f"Decode(*{get}, {at}, &{dst});"]
        else:
            decode = "DecodeStrings" if f.type.vector and kind == "string" else "DecodeScalars" if f.type.vector else "DecodeString"
            body = [f"{dst} = {decode}({get}, {at});"]
        if optional:
            return [f"if ({get}) {{", *_indent(body), "}"]
        return [f"Need({get}, {at});", *body] if len(body) == 1 else [f"Need({get}, {at});", "{", *_indent(body), "}"]

    def decode(self, t: Table) -> list[str]:
        body = [line for f in t.fields for line in self._decode_field(f)]
        if t.shape == "any":  # the kinds whose value is text need it
            kind, text = t.fields[1], t.fields[-1]
            e = f"fbs::{kind.type.name}"
            body += [
                f"if ((out->{kind.name} == {e}::String || out->{kind.name} == {e}::Json) && !out->{text.name})",
                f'  throw Malformed(Sub(at, "{text.name}"), "is missing");',
            ]
        return [f"inline void Decode(const fbs::{t.name}& x, const std::string& at, {t.name}* out) {{", *_indent(body), "}", ""]

    # ------------------------------------------------------------ Check

    def _value_checks(self, t: Table, f: Field, v: str, at: str) -> list[str]:
        """The checks of one value `v` of `f` (an item, for a vector)."""
        kind = f.type.kind
        out: list[str] = []
        if kind == "string":
            out.append(f"CheckString({v}, {at});")
            if f.has("kind"):
                name = str(f.attr("kind"))
                kind_set = self.kinds[name]
                if isinstance(kind_set, Words):
                    values = f"Known{_camel(name)}()" if kind_set.runtime_defined else f"k{_camel(name)}"
                    out.append(f"CheckOneOf({v}, {values}, {at});")
                else:
                    out.append(f"CheckChars({v}, k{_camel(name)}, {at});")
            if f.words:
                out.append(f"CheckOneOf({v}, {_constant(t, f)}, {at});")
        elif kind == "int" and (f.has("min") or f.has("max")):
            limits = f"std::numeric_limits<{_SCALARS[f.type.name]}>"
            lo = _c(f.attr("min")) if f.has("min") else f"{limits}::min()"  # type: ignore[arg-type]
            hi = _c(f.attr("max")) if f.has("max") else f"{limits}::max()"  # type: ignore[arg-type]
            out.append(f"CheckRange({v}, {lo}, {hi}, {at});")
        elif kind == "float":
            out.append(f"CheckFinite({v}, {at});")
        elif kind == "table":
            out.append(f"Check({v}, {at});")
        if f.has("const"):
            out.append(f"CheckConst({v}, {_constant(t, f)}, {at});")
        return out

    def _check_field(self, t: Table, f: Field) -> list[str]:
        at = f'Sub(at, "{f.name}")'
        optional = f.presence in ("nullable", "optional")
        v = f"(*v.{f.name})" if optional else f"v.{f.name}"
        if f.has("json_map"):
            body = [f"for (const auto& e : {v}) Check(e.second, {at} + \".\" + e.first);"]
        elif f.type.vector:
            body = [f"CheckMinItems({v}.size(), {f.attr('min_items')}, {at});"] if f.has("min_items") else []
            items = self._value_checks(t, f, f"{v}[i]", f"Item({at}, i)")
            if len(items) == 1:
                body.append(f"for (size_t i = 0; i < {v}.size(); ++i) {items[0]}")
            elif items:
                body += [f"for (size_t i = 0; i < {v}.size(); ++i) {{", *_indent(items), "}"]
        else:
            body = self._value_checks(t, f, v, at)
        if optional and body:
            return [f"if (v.{f.name}) {{", *_indent(body), "}"]
        return body

    def check(self, t: Table) -> list[str]:
        if t.shape == "any":  # only the field the kind selects holds the value
            kind, key, number, text = t.fields[1], t.fields[0], t.field("float_value"), t.fields[-1]
            body = [
                f'CheckString(v.{key.name}, Sub(at, "{key.name}"));',
                f'if (v.{kind.name} == fbs::{kind.type.name}::Float) CheckFinite(v.{number.name}, Sub(at, "{number.name}"));',
                f'if (v.{text.name}) CheckString(*v.{text.name}, Sub(at, "{text.name}"));',
            ]
        else:
            body = [line for f in t.fields for line in self._check_field(t, f)] or ["(void)v, (void)at;"]
        return [f"inline void Check(const {t.name}& v, const std::string& at) {{", *_indent(body), "}", ""]

    # ------------------------------------------------------------ constants

    def constants(self) -> list[str]:
        lines = ["// The value sets fields name with `kind` (stretchc/bundle/codegen/vocabulary.py)."]
        for name in sorted({str(f.attr("kind")) for t in self.tables for f in t.fields if f.has("kind")}):
            value = self.kinds[name]
            if isinstance(value, Words) and value.runtime_defined:
                lines.append(f"const std::vector<std::string>& Known{_camel(name)}();  // {value.description}: the runtime's own (bundle.cc)")
            elif isinstance(value, Words):
                lines.append(f"inline constexpr const char* k{_camel(name)}[] = {{{', '.join(_c(w) for w in value.words)}}};")
            else:
                lines.append(f"inline constexpr Chars k{_camel(name)} = {{{_c(expand(value.chars))}, {value.min_length}, {value.max_length}}};")
        lines += ["", "// The words of one_of fields; const values."]
        for t in self.tables:
            for f in t.fields:
                if f.words:
                    lines.append(f"inline constexpr const char* {_constant(t, f)}[] = {{{', '.join(_c(w) for w in f.words)}}};")
                const = f.attr("const")
                if const is not None:
                    ctype = "const char*" if isinstance(const, str) else _SCALARS[f.type.name]
                    lines.append(f"inline constexpr {ctype} {_constant(t, f)} = {_c(const)};")
        return lines + [""]


def render(schema: Schema, kinds: dict[str, Chars | Words], generator: str) -> str:
    """The header's text."""
    h = _Header(schema, kinds)
    namespace = "::".join(schema.namespace.split("."))
    lines = [
        f"// Generated by {generator} from schemas/manifest.fbs. Do not edit.",
        "// The manifest as plain structs; Decode() reads a verified manifest.bin into them (manifest::Malformed:",
        "// rule manifest-syntax) and Check() applies each field's own rules (manifest::FieldError: rule schema).",
        "#pragma once",
        "",
        "#include <cstdint>",
        "#include <limits>",
        "#include <map>",
        "#include <optional>",
        "#include <string>",
        "#include <utility>",
        "#include <vector>",
        "",
        '#include "generated/manifest_generated.h"',
        '#include "manifest_fields.h"',
        "",
        "namespace stretch {",
        "namespace manifest {",
        "",
        f"namespace fbs = ::{namespace};",
        "",
        *h.constants(),
    ]
    for part in (h.struct, h.decode, h.check):
        for t in h.tables:
            lines += part(t)
    lines += ["}  // namespace manifest", "}  // namespace stretch", ""]
    return "\n".join(lines)
