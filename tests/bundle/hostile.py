"""The hostile-manifest corpus (tests/data/hostile_manifests.json): builds each case from a real bundle.

Shared by the Python validator's tests and the C++ loader's, so both readers see the same bytes. The cases of
`MODEL_CASES` (Python's reader only, until the C++ loader is run on them) make a partition's model hostile
while the manifest's checksums vouch for it: the manifest is fine, the model is not what it declares.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flatbuffers

from stretchc.bundle.binary import encode_manifest, object_classes
from stretchc.bundle.format import MANIFEST_BIN, MANIFEST_JSON, SHA256SUMS, rules
from stretchc.bundle.manifest import dumps, sha256_bytes
from stretchc.bundle.schema import manifest_schema

from tests.conftest import REPO

CORPUS = REPO / "tests" / "data" / "hostile_manifests.json"


@dataclass(frozen=True)
class Case:
    name: str
    rule: str
    readers: tuple[str, ...]
    load: bool  # refused when a runtime loads the partitions, not from the manifest alone
    spec: dict[str, Any] = field(repr=False)


def _model_case(name: str, *files: dict[str, Any]) -> dict[str, Any]:
    """A case of `MODEL_CASES`: `files` ops on partition files, then the manifest's sha256 of each partition
    made to match its file (`rehash`)."""
    return {"name": name, "rule": "partition-tensors", "readers": ["python"], "rehash": True, "files": list(files)}


def _stem_model(*edits: tuple[str, Any]) -> dict[str, Any]:
    """A `tflite` file op on the stem's model (its buffer 2 holds the first convolution's weights, which op 1
    reads): (object API path, value) pairs, bytes as raw string bytes."""
    sets = [{"op": "set", "path": path, **({"hex": v.hex()} if isinstance(v, bytes) else {"value": v})} for path, v in edits]
    return {"op": "tflite", "file": "partitions/stem.tflite", "edits": sets}


MODEL_CASES: list[dict[str, Any]] = [
    # issue 23 item 14: another partition's model; a custom op
    _model_case("partition-swapped", {"op": "swap", "file": "partitions/s1.b0.tflite", "other": "partitions/s1.b1.tflite"}),
    _model_case("partition-custom-op", _stem_model(("operatorCodes/0/builtinCode", 32), ("operatorCodes/0/deprecatedBuiltinCode", 32), ("operatorCodes/0/customCode", b"Evil"))),
    # issue 23 item 15: a buffer declared outside its file (LiteRT takes offset 1 for "none" and loads it),
    # one at an absurd offset, and a constant without data (run blamed both on the user's inputs)
    _model_case("buffer-outside-file", _stem_model(("buffers/2/data", None), ("buffers/2/offset", 1), ("buffers/2/size", 1 << 60))),
    _model_case("buffer-offset-absurd", _stem_model(("buffers/2/data", None), ("buffers/2/offset", 1 << 62), ("buffers/2/size", 64))),
    _model_case("constant-without-data", _stem_model(("buffers/2/data", None))),
]


def cases() -> list[Case]:
    readers = {r.id: r.readers for r in rules()}
    out = []
    for c in json.loads(CORPUS.read_text())["cases"] + MODEL_CASES:
        out.append(Case(c["name"], c["rule"], tuple(c.get("readers", readers[c["rule"]])), bool(c.get("load", False)), c))
    return out


def _resolve(doc: Any, path: str) -> tuple[Any, Any]:
    """(container, key) of `path` in `doc`; `@key=value` selects a list element by one of its fields."""
    parts = path.split("/")
    node = doc
    for i, part in enumerate(parts):
        if part.startswith("@"):
            k, _, v = part[1:].partition("=")
            key: Any = next(j for j, x in enumerate(node) if x[k] == v)
        elif isinstance(node, list):
            key = int(part)
        else:
            key = part
        if i == len(parts) - 1:
            return node, key
        node = node[key]
    raise AssertionError(path)


def edit_manifest(m: dict[str, Any], edits: list[dict[str, Any]]) -> None:
    for e in edits:
        container, key = _resolve(m, e["path"])
        if "from" in e:
            src, skey = _resolve(m, e["from"])
            value = copy.deepcopy(src[skey])
        else:
            value = e.get("value")
            if "repeat" in e:
                value = value * e["repeat"]
        op = e["op"]
        if op == "set":
            container[key] = value
        elif op == "append":
            container[key].append(value)
        elif op == "remove":
            del container[key]
        elif op == "reverse":
            container[key].reverse()
        else:
            raise AssertionError(f"unknown edit {op}")


def _child(node: Any, part: str) -> Any:
    if part.startswith("@"):
        k, _, v = part[1:].partition("=")
        return next(x for x in node if getattr(x, k) == v.encode())
    return node[int(part)] if isinstance(node, list) else getattr(node, part)


def edit_binary(bundle: Path, edits: list[dict[str, Any]]) -> None:
    """Edit manifest.bin where JSON cannot say it: on the FlatBuffers object API tree (see `_edit_tree`)."""
    schema = manifest_schema()
    data = (bundle / MANIFEST_BIN).read_bytes()
    root = object_classes()[schema.root].InitFromBuf(data, int.from_bytes(data[:4], "little"))
    _edit_tree(root, edits)
    (bundle / MANIFEST_BIN).write_bytes(_packed(root, schema.file_identifier))


def _edit_tflite(path: Path, edits: list[dict[str, Any]]) -> None:
    """Edit a partition's TFLite model on its FlatBuffers object API tree (see `_edit_tree`)."""
    from ai_edge_litert import schema_py_generated as S

    root = S.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    _edit_tree(root, edits)
    path.write_bytes(_packed(root, "TFL3"))


def _packed(root: Any, file_identifier: str) -> bytes:
    builder = flatbuffers.Builder(4096)
    builder.Finish(root.Pack(builder), file_identifier=file_identifier.encode())
    return bytes(builder.Output())


def _edit_tree(root: Any, edits: list[dict[str, Any]]) -> None:
    """Edit a FlatBuffers object API tree (attribute names in lowerCamelCase, strings as bytes): `hex` sets raw
    string bytes, `from` copies another path's value, `append` adds to a vector."""
    for e in edits:
        *head, last = e["path"].split("/")
        node = root
        for part in head:
            node = _child(node, part)
        if "from" in e:
            value = root
            for part in e["from"].split("/"):
                value = _child(value, part)
            value = copy.deepcopy(value)
        else:
            value = bytes.fromhex(e["hex"]) if "hex" in e else e.get("value")
        if e["op"] == "append":
            _child(node, last).append(value)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            setattr(node, last, value)


def _file_op(bundle: Path, e: dict[str, Any]) -> None:
    path = bundle / e["file"]
    op = e["op"]
    if op == "delete":
        path.unlink()
    elif op == "truncate":
        path.write_bytes(path.read_bytes()[: e["size"]])
    elif op == "pad":
        data = path.read_bytes()
        path.write_bytes(data + bytes(e["size"] - len(data)))
    elif op == "poke":
        data = bytearray(path.read_bytes())
        patch = bytes.fromhex(e["hex"])
        data[e["offset"] : e["offset"] + len(patch)] = patch
        path.write_bytes(bytes(data))
    elif op == "write_text":
        path.write_text(e["text"] * e.get("repeat", 1))
    elif op == "append_text":
        path.write_text(path.read_text() + e["text"])
    elif op == "drop_line":
        path.write_text("".join(ln for ln in path.read_text().splitlines(True) if e["containing"] not in ln))
    elif op == "symlink_outside":
        outside = bundle.parent / f"outside-{path.name}"
        shutil.move(path, outside)
        path.symlink_to(outside)
    elif op == "swap":
        other = bundle / e["other"]
        data = path.read_bytes()
        path.write_bytes(other.read_bytes())
        other.write_bytes(data)
    elif op == "tflite":
        _edit_tflite(path, e["edits"])
    else:
        raise AssertionError(f"unknown file op {op}")


def resum(bundle: Path) -> None:
    """Rewrite SHA256SUMS over every file of the bundle, as emit-bundle does."""
    files = sorted(p for p in bundle.rglob("*") if p.is_file() and p.name != SHA256SUMS)
    (bundle / SHA256SUMS).write_text("".join(f"{sha256_bytes(f.read_bytes())}  {f.relative_to(bundle).as_posix()}\n" for f in files))


def write_manifest(bundle: Path, m: dict[str, Any], *, json_file: bool = True, bin_file: bool = True, sums: bool = True) -> None:
    """Write `m` as the bundle's manifest.json and/or manifest.bin and make SHA256SUMS vouch for them."""
    if json_file:
        (bundle / MANIFEST_JSON).write_bytes(dumps(m))
    if bin_file:
        (bundle / MANIFEST_BIN).write_bytes(encode_manifest(m))
    if sums:
        resum(bundle)


def build_case(source: Path, case: Case, dst: Path) -> Path:
    """A copy of the bundle `source` at `dst`, made hostile as `case` says."""
    shutil.copytree(source, dst, symlinks=True)
    spec = case.spec
    m = json.loads((dst / MANIFEST_JSON).read_text())
    edit_manifest(m, spec.get("edits", []))
    write = spec.get("write", "both")
    if spec.get("edits"):
        write_manifest(dst, m, json_file=write in ("both", "json"), bin_file=write in ("both", "bin"), sums=False)
    if spec.get("bin_edits"):
        edit_binary(dst, spec["bin_edits"])
    for e in spec.get("files", []):
        _file_op(dst, e)
    if spec.get("rehash"):  # the manifest vouches for the edited partition files: only their contents lie
        for p in m["partitions"]:
            p["sha256"] = sha256_bytes((dst / p["file"]).read_bytes())
        write_manifest(dst, m, sums=False)
    if spec.get("resum", True):
        resum(dst)
    for e in spec.get("after", []):
        _file_op(dst, e)
    return dst
