"""schemas/manifest.fbs is the one definition of the manifest: everything generated from it is up to date,
the reader of the .fbs is strict, and the generated value sets follow the compiler's lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stretchc.bundle import codegen
from stretchc.bundle.codegen import cpp, jsonschema, vocabulary
from stretchc.bundle.schema import SchemaError, manifest_schema, parse
from stretchc.schemas import schema_path

from tests.conftest import REPO


def test_generated_files_are_up_to_date(tmp_path: Path) -> None:
    """Regenerates everything into a temporary folder and compares byte for byte (needs flatc 2.0.8:
    scripts/test.sh installs Debian's flatbuffers-compiler; without it this test fails, it does not skip)."""
    written = codegen.generate(REPO, tmp_path)
    stale = [str(p) for p in written if (tmp_path / p).read_bytes() != (REPO / p).read_bytes() if (REPO / p).exists()]
    missing = [str(p) for p in written if not (REPO / p).exists()]
    extra = sorted(p.name for p in (REPO / codegen.PYTHON_PACKAGE).glob("*.py")) != sorted(p.name for p in written if p.parent == codegen.PYTHON_PACKAGE)
    assert not stale and not missing and not extra, f"run scripts/gen_manifest.py (out of date: {stale}, missing: {missing}, extra modules: {extra})"


def test_json_schema_and_codec_read_the_same_fbs() -> None:
    schema = json.loads(schema_path("manifest.schema.json").read_text())
    root = manifest_schema().root_table
    assert list(schema["properties"]) == [f.name for f in root.fields]
    assert schema["properties"]["format_version"] == {"const": 3}


def test_value_sets_follow_the_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend added to the compiler's registry reaches the JSON schema by regenerating; the C++ checks take
    the processors and delegates of the runtime's own backend registry, and the IR's dtypes from the list."""
    from stretchc import backends
    from stretchc.backends.base import Backend

    class Tpu(Backend):
        name, delegate, order = "tpu", "edgetpu", 99

    known = backends.backends()
    monkeypatch.setattr(vocabulary, "backends", lambda: (*known, Tpu()))  # the registry as the value sets ask it
    kinds = vocabulary.kinds()
    schema = jsonschema.build(manifest_schema(), kinds)
    assert "tpu" in schema["$defs"]["processor"]["enum"] and "edgetpu" in schema["$defs"]["delegate"]["enum"]
    header = cpp.render(manifest_schema(), kinds, "test")
    assert "CheckOneOf(v.processor, KnownProcessor(), " in header and "kProcessor" not in header
    assert 'kDtype[] = {"float32", "float16", "int32", "int64", "int8", "uint8", "int16", "bool"}' in header


_HEAD = 'namespace t;\n' + "".join(f'attribute "{a}";\n' for a in ("nullable", "json_optional", "json_map", "const", "min", "max", "min_items", "one_of", "kind", "json_tuple", "json_unwrap", "json_any"))


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("struct S { a: int; }\nroot_type S;", "outside the schema subset"),
        ("union U { A }\ntable A { x: long; }\nroot_type A;", "outside the schema subset"),
        ('include "x.fbs";\ntable A { x: long; }\nroot_type A;', "outside the schema subset"),
        ("table A { s: string; }\nroot_type A;", "exactly one of required, nullable, json_optional"),
        ("table A { s: string (required, nullable); }\nroot_type A;", "exactly one of required, nullable, json_optional"),
        ("table A { x: long (required); }\nroot_type A;", "a scalar is always present"),
        ("table A { x: long (id: 3); }\nroot_type A;", "attribute id is not one this reader knows"),
        ("table A { x: long = 5; }\nroot_type A;", "only an enum's first value"),
        ("table A { s: string (required, min: 1); }\nroot_type A;", "min bounds integers"),
        ("table B { x: long; }\ntable A { m: [B] (required, json_map); }\nroot_type A;", "json_map is a vector of a json_any table"),
        ("table B (json_unwrap) { x: long; y: long; }\ntable A { b: B (required); }\nroot_type A;", "exactly one field"),
        ("table A { x: Missing; }\nroot_type A;", "unknown type Missing"),
        ("table A { x: long; }\nroot_type B;", "root_type 'B' is not a table"),
    ],
)
def test_fbs_reader_refuses_what_it_does_not_take(body: str, why: str) -> None:
    with pytest.raises(SchemaError, match=why):
        parse(_HEAD + body)


def test_fbs_reader_needs_the_attribute_declarations() -> None:
    with pytest.raises(SchemaError, match='attribute "nullable" is not declared'):
        parse("namespace t;\ntable A { x: long; }\nroot_type A;")


def test_fbs_reader_reads_slots_docs_and_attributes() -> None:
    s = parse(_HEAD + "/// A table.\ntable A {\n  /// the x\n  x: long (min: 1, max: 9);\n  s: [string] (nullable, kind: \"name\");\n}\nroot_type A;")
    a = s.root_table
    assert a.doc == "A table." and [(f.name, f.slot) for f in a.fields] == [("x", 0), ("s", 1)]
    assert a.fields[0].doc == "the x" and a.fields[0].attr("min") == 1 and a.fields[0].attr("max") == 9
    assert a.fields[1].type.vector and a.fields[1].presence == "nullable" and a.fields[1].attr("kind") == "name"
