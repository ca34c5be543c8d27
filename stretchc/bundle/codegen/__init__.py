"""Every file generated from `schemas/manifest.fbs` (and the rule table): `scripts/gen_manifest.py` writes them
all, and `tests/bundle/test_codegen.py` regenerates them into a temporary folder and compares byte for byte.

    stretchc/bundle/fbs/*.py                              flatc --python --gen-object-api (the codec's classes)
    android_runtime/src/generated/manifest_generated.h    flatc --cpp (verifier and accessors)
    android_runtime/src/generated/manifest_model.h        C++ structs, Decode and Check (codegen/cpp.py)
    android_runtime/src/generated/bundle_rules.h          the rule table for C++ (codegen/rules.py)
    schemas/manifest.schema.json                          the JSON schema (codegen/jsonschema.py)

flatc must be 2.0.8 (Debian's flatbuffers-compiler; the C++ side builds against the same release's headers),
since other releases generate other code. Before writing, the .fbs as `stretchc.bundle.schema` reads it is
compared with flatc's own reading of it (tables, fields in slot order, types, required fields, enums).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from stretchc.bundle.codegen import cpp, jsonschema, rules, vocabulary
from stretchc.bundle.schema import INTEGERS, Schema, parse

FLATC_VERSION = "2.0.8"
GENERATOR = "scripts/gen_manifest.py"
FBS = Path("schemas/manifest.fbs")
PYTHON_PACKAGE = Path("stretchc/bundle/fbs")
CPP_DIR = Path("android_runtime/src/generated")
JSON_SCHEMA = Path("schemas/manifest.schema.json")
RULES = Path("schemas/bundle_rules.json")


class GenerateError(Exception):
    """flatc is missing or not the pinned release, or the .fbs is read differently by flatc and by us."""


def _flatc(flatc: str, *args: str) -> None:
    try:
        proc = subprocess.run([flatc, *args], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise GenerateError(f"{flatc} not found: install flatc {FLATC_VERSION} (apt-get install flatbuffers-compiler)") from None
    if proc.returncode != 0:
        raise GenerateError(f"flatc {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()[:2000]}")


def check_flatc(flatc: str = "flatc") -> None:
    """Raise GenerateError unless `flatc` is the pinned release."""
    try:
        out = subprocess.run([flatc, "--version"], capture_output=True, text=True, timeout=30).stdout.split()
    except FileNotFoundError:
        raise GenerateError(f"{flatc} not found: install flatc {FLATC_VERSION} (apt-get install flatbuffers-compiler)") from None
    if out[-1:] != [FLATC_VERSION]:
        raise GenerateError(f"{flatc} is {' '.join(out) or 'unknown'}; the generated code is flatc {FLATC_VERSION}'s")


def _agree_with_flatc(schema: Schema, flatc_schema: dict) -> None:  # type: ignore[type-arg]
    """Our reading of the .fbs is flatc's: same tables, fields in slot order, types, required fields, enums."""
    defs = flatc_schema["definitions"]
    prefix = schema.namespace.replace(".", "_") + "_"

    def flatc_type(kind: str, name: str) -> dict:  # type: ignore[type-arg]
        if kind in ("table", "enum"):
            return {"$ref": f"#/definitions/{prefix}{name}"}
        if kind == "int":
            bits, signed = INTEGERS[name]
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
            return {"type": "integer", "minimum": lo, "maximum": hi}
        return {"type": {"string": "string", "float": "number", "bool": "boolean"}[kind]}

    theirs = {k[len(prefix):]: v for k, v in defs.items()}
    if set(theirs) != set(schema.tables) | set(schema.enums):
        raise GenerateError(f"flatc reads the types {sorted(theirs)}, we read {sorted(set(schema.tables) | set(schema.enums))}")
    for e in schema.enums.values():
        if theirs[e.name].get("enum") != [n for n, _ in e.values]:
            raise GenerateError(f"flatc reads enum {e.name} as {theirs[e.name].get('enum')}")
    for t in schema.tables.values():
        props = theirs[t.name]["properties"]
        if list(props) != [f.name for f in t.fields]:
            raise GenerateError(f"flatc reads the fields of {t.name} as {list(props)}")
        if sorted(theirs[t.name].get("required", [])) != sorted(f.name for f in t.fields if f.has("required")):
            raise GenerateError(f"flatc reads the required fields of {t.name} as {theirs[t.name].get('required', [])}")
        for f in t.fields:
            want = flatc_type(f.type.kind, f.type.name)
            want = {"type": "array", "items": want} if f.type.vector else want
            if {k: v for k, v in props[f.name].items() if k != "description"} != want:
                raise GenerateError(f"flatc reads {t.name}.{f.name} as {props[f.name]}, we read {want}")


def generate(root: Path, out: Path, flatc: str = "flatc") -> list[Path]:
    """Write every generated file into `out` (laid out as the repository) from the sources under `root`;
    returns the written paths relative to `out`. The Python package folder is replaced as a whole."""
    check_flatc(flatc)
    fbs_path = root / FBS
    schema = parse(fbs_path.read_text())
    kinds = vocabulary.kinds()
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        _flatc(flatc, "--jsonschema", "-o", f"{tmp}/json", str(fbs_path))
        _agree_with_flatc(schema, json.loads((Path(tmp) / "json" / "manifest.schema.json").read_text()))
        _flatc(flatc, "--python", "--gen-object-api", "-o", f"{tmp}/py", str(fbs_path))
        _flatc(flatc, "--cpp", "--scoped-enums", "-o", f"{tmp}/cpp", str(fbs_path))
        package = out / PYTHON_PACKAGE
        if package.exists():
            shutil.rmtree(package)
        package.mkdir(parents=True)
        flatc_package = Path(tmp, "py", *schema.namespace.split("."))
        for src in sorted(flatc_package.glob("*.py")):
            if src.name != "__init__.py":  # flatc writes it empty; ours says what the package is
                shutil.copyfile(src, package / src.name)
                written.append(PYTHON_PACKAGE / src.name)
        texts = {
            PYTHON_PACKAGE / "__init__.py": f'"""Generated by {GENERATOR} from {FBS} (flatc {FLATC_VERSION}). Do not edit."""\n',
            CPP_DIR / "manifest_generated.h": (Path(tmp) / "cpp" / "manifest_generated.h").read_text(),
            CPP_DIR / "manifest_model.h": cpp.render(schema, kinds, GENERATOR),
            CPP_DIR / "bundle_rules.h": rules.render(root / RULES, GENERATOR),
            JSON_SCHEMA: jsonschema.render(schema, kinds),
        }
    for rel, text in texts.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
        written.append(rel)
    return sorted(written)
