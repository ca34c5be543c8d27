"""manifest.bin: round trip, determinism, hostile bytes refused."""

from __future__ import annotations

import copy
import json
import random

import pytest

from stretchc.bundle.binary import decode_manifest, encode_manifest
from stretchc.errors import StretchError

SHA = "ab" * 32


def _io(name: str, sync: str, *, quant: bool = False, nchw: bool = True) -> dict:
    return {
        "name": name,
        "sync": sync,
        "shape": [1, 3, 32, 32],
        "dtype": "float32",
        "layout": "NCHW" if nchw else "as-is",
        "perm": [0, 2, 3, 1] if nchw else None,
        "bundle_shape": [1, 32, 32, 3],
        "bundle_dtype": "int8" if quant else "float32",
        "quant": {"scale": [0.0078125, 1e-7, 3.14159], "zero_point": [-128, 0, 5], "axis": 3} if quant else None,
    }


def _part(name: str, proc: str, ins: list[str], outs: list[str], *, dsp_opts: bool = False) -> dict:
    delegate = {"cpu": "xnnpack", "gpu": "gpu", "dsp": "hexagon"}[proc]
    if proc == "gpu":
        opts = {"backend": "opencl", "precision": "fp32", "max_delegated_partitions": 1}
    elif proc == "dsp":
        opts = {"powersave_level": 255, "library_path": "/data/local/tmp", "skel": ""}
        if dsp_opts:
            opts.update({"flag": True, "ratio": 0.5, "none": None, "nested": {"a": [1, 2, {"b": None}]}})
    else:
        opts = {}
    path = f"partitions/{name}.tflite"
    return {
        "name": name,
        "file": path,
        "sha256": SHA,
        "processor": proc,
        "precision": "int8" if proc == "dsp" else "float32",
        "delegate": delegate,
        "delegate_options": opts,
        "threads": 4,
        "affinity": [4, 5, 6, 7] if proc == "cpu" else [],
        "fallback": None if proc == "cpu" else {"processor": "cpu", "delegate": "xnnpack", "file": path},
        "regions": [f"{name}_r0", f"{name}_r1"],
        "inputs": [{"tensor": i, "sync": f"s_{i}"} for i in ins],
        "outputs": [{"tensor": o, "sync": f"s_{o}"} for o in outs],
    }


def make_manifest(*, quant: bool = False, dsp: bool = False, lanes: int = 3, target: bool = True, latency: float | None = 12.5) -> dict:
    procs = ["cpu", "gpu", "dsp" if dsp else "cpu"][:lanes]
    parts = [_part("stem", "cpu", ["x"], ["f"])]
    for i, proc in enumerate(procs):
        parts.append(_part(f"b{i}", proc, ["f"], [f"y{i}"], dsp_opts=dsp))
    parts.append(_part("head", "cpu", [f"y{i}" for i in range(len(procs))], ["out"]))
    values = ["x", "f", *[f"y{i}" for i in range(len(procs))], "out"]
    slots = [{"name": f"slot{i}", "offset": 64 * i * 2, "size": 128, "dtype": "float32", "shape": [1, 32]} for i in range(len(values))]
    lane_map: dict[str, list[str]] = {}
    for p in parts:
        lane_map.setdefault(p["processor"], []).append(p["name"])
    return {
        "format": "stretchc-bundle",
        "format_version": 3,
        "compiler": {"name": "stretchc", "version": "0.1.0"},
        "model": {"name": "toy", "source_sha256": "0" * 64, "pipeline": "a,b,c"},
        "target": {"name": "pixel6", "description": "Google Pixel 6 (Tensor G1) — ünïcode"} if target else None,
        "inputs": [_io("input", "s_x", quant=quant)],
        "outputs": [_io("logits", "s_out", quant=quant, nchw=False)],
        "partitions": parts,
        "sync_points": [
            {
                "name": f"s_{v}", "value": v, "producer": "host" if v == "x" else "p", "consumers": ["c1", "c2"], "slot": f"slot{i}", "kind": "edge",
                "quant": {"scale": [0.25], "zero_point": [-3], "axis": 0} if quant and v == "f" else None,
                "conversions": [{"partition": "p", "op": "QUANTIZE", "from_dtype": "float32", "to_dtype": "int8"}] if quant and v == "f" else [],
            }
            | ({"onnx_tensor": f"onnx/{v}:0 ü"} if i % 2 else {})  # optional: present on some sync points only
            for i, v in enumerate(values)
        ],
        "buffers": {"alignment": 64, "arena_size": 64 * 2 * len(values), "slots": slots, "aliases": [["slot0", "slot2"], ["slot1", "slot3"]]},
        "schedule": {
            "lanes": [{"processor": k, "index": 0, "partitions": v} for k, v in lane_map.items()],
            "steps": [["stem"], [f"b{i}" for i in range(len(procs))], ["head"]],
        },
        "predicted_latency_ms": latency,
    }


CASES = {
    "float": make_manifest(),
    "quant": make_manifest(quant=True),
    "dsp-fallback": make_manifest(dsp=True),
    "one-lane-no-target": make_manifest(lanes=1, target=False, latency=None),
    "quant-dsp-3-lanes": make_manifest(quant=True, dsp=True, lanes=3),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip(name: str) -> None:
    m = CASES[name]
    data = encode_manifest(m)
    assert data[4:8] == b"STRB"
    back = decode_manifest(data)
    assert back == m
    # JSON types are kept exactly: same canonical JSON text (None stays null, lists stay lists, ints stay ints)
    assert json.dumps(back, sort_keys=True) == json.dumps(m, sort_keys=True)


def test_empty_lists_and_nulls_kept() -> None:
    m = make_manifest()
    m["buffers"]["aliases"] = []
    m["partitions"][0]["regions"] = []
    m["partitions"][0]["inputs"] = []
    m["partitions"][0]["affinity"] = []
    m["inputs"][0]["perm"] = []  # an empty perm is not null
    back = decode_manifest(encode_manifest(m))
    assert back == m and back["inputs"][0]["perm"] == [] and back["outputs"][0]["perm"] is None


def test_deterministic() -> None:
    m = make_manifest(quant=True, dsp=True)
    a = encode_manifest(m)
    assert a == encode_manifest(copy.deepcopy(m))
    # key order of the dicts does not matter
    shuffled = json.loads(json.dumps(m, sort_keys=True))
    assert encode_manifest(shuffled) == a


def test_built_by_build_manifest_shape() -> None:
    """The keys the binary form carries are exactly the JSON schema's top-level keys."""
    from stretchc.schemas import schema_path

    schema = json.loads(schema_path("manifest.schema.json").read_text())
    assert set(decode_manifest(encode_manifest(make_manifest()))) == set(schema["required"])


@pytest.mark.parametrize("data", [b"", b"\0" * 3, b"STRB", b"\0\0\0\0STRB", b"garbage!" * 10, b"\x08\0\0\0STRB" + b"\xff" * 40])
def test_garbage_refused(data: bytes) -> None:
    with pytest.raises(StretchError) as ei:
        decode_manifest(data)
    assert ei.value.code == "bad-bundle"


def test_truncations_refused() -> None:
    data = encode_manifest(make_manifest(quant=True, dsp=True))
    for n in range(0, len(data), 7):
        with pytest.raises(StretchError) as ei:
            decode_manifest(data[:n])
        assert ei.value.code == "bad-bundle"


def test_flipped_bytes_never_crash() -> None:
    data = encode_manifest(make_manifest(quant=True, dsp=True))
    rng = random.Random(7)
    for _ in range(1500):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        try:
            m = decode_manifest(bytes(buf))
        except StretchError as exc:
            assert exc.code == "bad-bundle"
        else:
            assert isinstance(m, dict)


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda m: m["partitions"][0].update(colour="red"), "unknown key 'colour'"),
        (lambda m: m["partitions"][0].pop("threads"), "manifest.partitions[0].threads is missing"),
        (lambda m: m["partitions"][0].update(threads="4"), "is not a long"),
        (lambda m: m["partitions"][0].update(threads=True), "is not a long"),
        (lambda m: m["partitions"][0].update(threads=1 << 63), "is not a long"),
        (lambda m: m["buffers"].update(aliases=[["slot0"]]), "expected a list of 2"),
        (lambda m: m["sync_points"][1].update(onnx_tensor=None), "is not a string"),
        (lambda m: m.update(target="pixel6"), "expected an object"),
    ],
)
def test_unencodable_manifest_is_an_internal_error(edit, why: str) -> None:  # type: ignore[no-untyped-def]
    m = make_manifest()
    edit(m)
    with pytest.raises(StretchError) as ei:
        encode_manifest(m)
    assert ei.value.code == "internal" and why in ei.value.message, ei.value.message


def test_optional_key_left_out_both_ways() -> None:
    m = make_manifest()
    assert "onnx_tensor" not in m["sync_points"][0] and "onnx_tensor" in m["sync_points"][1]
    back = decode_manifest(encode_manifest(m))
    assert "onnx_tensor" not in back["sync_points"][0] and back["sync_points"][1]["onnx_tensor"] == m["sync_points"][1]["onnx_tensor"]


def test_deeply_nested_option_value_refused() -> None:
    m = make_manifest(dsp=True)
    deep: object = 0
    for _ in range(100):
        deep = [deep]
    m["partitions"][3]["delegate_options"]["nested"] = deep
    with pytest.raises(StretchError) as ei:
        decode_manifest(encode_manifest(m))
    assert ei.value.code == "bad-bundle" and "not JSON" in ei.value.message
