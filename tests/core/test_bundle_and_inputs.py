"""Dynamic shapes, `stretchc run` refusing tampered bundles, lowering offline and read-only, buffer plan."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path

import onnx
import pytest

from stretchc.cli import main
from stretchc.console import Console, set_console
from stretchc.driver import CompileOptions, compile_model
from stretchc.errors import ExitStatus
from stretchc.frontend.lower import NetworkBlocked, no_network

from tests.bundle.hostile import write_manifest
from tests.core.conftest import VARIANTS, Compiled, make_model


def _cli(capsys, args):  # type: ignore[no-untyped-def]
    capsys.readouterr()
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _dynamic(dims: list[object]) -> onnx.ModelProto:
    m = make_model("concat2")
    del m.graph.value_info[:]
    for d, v in zip(m.graph.input[0].type.tensor_type.shape.dim, dims):
        if isinstance(v, str):
            d.dim_param = v
        else:
            d.dim_value = int(v)  # type: ignore[call-overload]
    m.graph.output[0].type.tensor_type.shape.dim[0].dim_param = str(dims[0])
    return m


# ---- dynamic dimensions ------------------------------------------------------------------------------


def test_dynamic_batch_becomes_one_with_a_notice(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "dyn.onnx"
    onnx.save(_dynamic(["N", 3, 32, 32]), str(path))
    rc, _, err = _cli(capsys, ["compile", str(path), "-o", str(tmp_path / "b")])
    assert rc == 0, err
    assert "note[batch-set-to-1]" in err and "'N'" in err
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["inputs"][0]["shape"] == [1, 3, 32, 32]


def test_other_dynamic_dimension_is_an_error_fixable_with_input_shape(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "dynh.onnx"
    onnx.save(_dynamic([1, 3, "H", 32]), str(path))
    rc, _, err = _cli(capsys, ["compile", str(path), "-o", str(tmp_path / "b")])
    assert rc == int(ExitStatus.BAD_INPUT)
    assert err.count("\n") == 1 and err.startswith("error[dynamic-shape]")
    assert "dimension 2 ('H')" in err and "--input-shape input=1,3,N,32" in err
    assert not (tmp_path / "b").exists()
    rc, _, err = _cli(capsys, ["compile", str(path), "-o", str(tmp_path / "b"), "--input-shape", "input=1,3,32,32", "-q"])
    assert rc == 0, err
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["inputs"][0]["shape"] == [1, 3, 32, 32]


# ---- stretchc run refuses bad bundles --------------------------------------------------------------


@pytest.fixture
def bundle_copy(example_bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy.stretch"
    shutil.copytree(example_bundle, dst)  # several partitions on two lanes
    return dst


def _edit_manifest(bundle: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Edit the manifest consistently: manifest.json, manifest.bin and SHA256SUMS."""
    m = json.loads((bundle / "manifest.json").read_text())
    edit(m)
    write_manifest(bundle, m)


def test_run_accepts_the_untouched_bundle(bundle_copy: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = _cli(capsys, ["run", str(bundle_copy), "--seed", "0", "-q"])
    assert rc == 0, err


def test_run_refuses_modified_partition(bundle_copy: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    part = bundle_copy / "partitions" / "s1.b1.tflite"
    data = bytearray(part.read_bytes())
    data[-1] ^= 0xFF
    part.write_bytes(bytes(data))
    rc, _, err = _cli(capsys, ["run", str(bundle_copy), "--seed", "0"])
    assert rc == int(ExitStatus.BAD_INPUT)
    assert err.startswith("error[bad-bundle]") and "partitions/s1.b1.tflite was modified" in err


def test_run_refuses_path_outside_bundle(bundle_copy: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (bundle_copy.parent / "x.tflite").write_bytes((bundle_copy / "partitions" / "stem.tflite").read_bytes())

    def edit(m):  # type: ignore[no-untyped-def]
        m["partitions"][0]["file"] = "../x.tflite"

    _edit_manifest(bundle_copy, edit)
    rc, _, err = _cli(capsys, ["run", str(bundle_copy), "--seed", "0"])
    assert rc == int(ExitStatus.BAD_INPUT)
    assert err.startswith("error[bad-bundle]") and "[partition-files]" in err and "'../x.tflite'" in err and "points outside the bundle" in err


def test_run_refuses_unknown_format_version(bundle_copy: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _edit_manifest(bundle_copy, lambda m: m.update(format_version=99))
    rc, _, err = _cli(capsys, ["run", str(bundle_copy), "--seed", "0"])
    assert rc == int(ExitStatus.BAD_INPUT)
    assert err.startswith("error[bad-bundle]") and "unknown format version 99" in err


# ---- lowering: offline, read-only ------------------------------------------------------------------


def test_no_network_blocks_connections() -> None:
    original = socket.create_connection
    with no_network():
        with pytest.raises(NetworkBlocked):
            socket.create_connection(("127.0.0.1", 9))
        with pytest.raises(OSError):
            socket.getaddrinfo("example.com", 80)
        s = socket.socket()
        try:
            with pytest.raises(OSError):
                s.connect(("127.0.0.1", 9))
        finally:
            s.close()
    assert socket.create_connection is original


def test_compile_never_touches_network_or_user_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "user.onnx"
    onnx.save(make_model("concat3"), str(path))
    old = os.stat(path).st_mtime_ns - 10**9
    os.utime(path, ns=(old, old))
    before = path.read_bytes()
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network used during compile")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    set_console(Console(quiet=True, stream=sys.stderr))
    compile_model(path, tmp_path / "b.stretch", CompileOptions(use_cache=False))
    assert attempts == []
    assert path.read_bytes() == before
    assert os.stat(path).st_mtime_ns == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.stretch", "user.onnx"]


# ---- buffer plan ---------------------------------------------------------------------------------


def _ancestors(m: dict) -> dict[str, set[str]]:  # type: ignore[type-arg]
    producer = {s["name"]: s["producer"] for s in m["sync_points"]}
    anc: dict[str, set[str]] = {}
    for p in m["partitions"]:  # topological order
        direct = {producer[b["sync"]] for b in p["inputs"]} - {"host"}
        anc[p["name"]] = set(direct).union(*(anc[d] for d in direct))
    return anc


def _happens_before(a: dict, b: dict, anc: dict[str, set[str]]) -> bool:  # type: ignore[type-arg]
    return "host" not in a["consumers"] and b["producer"] != "host" and all(c in anc[b["producer"]] for c in a["consumers"])


@pytest.mark.parametrize("name", list(VARIANTS))
def test_buffer_plan(compiled: dict[str, Compiled], name: str) -> None:
    m = compiled[name].result.manifest
    syncs = m["sync_points"]
    slots = {s["name"]: s for s in m["buffers"]["slots"]}
    # zero-copy: one slot per sync point, never shared by two sync points
    assert len({s["slot"] for s in syncs}) == len(syncs) == len(slots)
    parts = {p["name"]: p for p in m["partitions"]}
    for s in syncs:
        assert s["slot"] in slots
        if s["producer"] != "host":
            assert [b["sync"] for b in parts[s["producer"]]["outputs"]].count(s["name"]) == 1
        else:
            assert any(i["sync"] == s["name"] for i in m["inputs"])
        for c in s["consumers"]:
            if c == "host":
                assert any(o["sync"] == s["name"] for o in m["outputs"])
            else:
                assert s["name"] in [b["sync"] for b in parts[c]["inputs"]]
    for p in m["partitions"]:  # every boundary tensor is bound to a sync point that names this partition
        by_name = {s["name"]: s for s in syncs}
        assert all(by_name[b["sync"]]["producer"] == p["name"] for b in p["outputs"])
        assert all(p["name"] in by_name[b["sync"]]["consumers"] for b in p["inputs"])
    # alignment and arena bounds
    assert m["buffers"]["alignment"] == 64
    for s in slots.values():
        assert s["offset"] % 64 == 0 and s["offset"] + s["size"] <= m["buffers"]["arena_size"]
    # overlapping slots are never live at once (happens-before on the partition graph)
    anc = _ancestors(m)
    by_slot = {s["slot"]: s for s in syncs}
    overlapping = []
    names = sorted(slots)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            sa, sb = slots[a], slots[b]
            if sa["offset"] < sb["offset"] + sb["size"] and sb["offset"] < sa["offset"] + sa["size"]:
                overlapping.append(sorted([a, b]))
                x, y = by_slot[a], by_slot[b]
                assert _happens_before(x, y, anc) or _happens_before(y, x, anc), (a, b)
    assert sorted(overlapping) == sorted(m["buffers"]["aliases"])


def test_buffer_plan_reuses_memory(example_bundle: Path) -> None:
    m = json.loads((example_bundle / "manifest.json").read_text())  # two stages, each split over two lanes
    assert m["buffers"]["aliases"], "a two-stage model should reuse arena bytes"
    assert m["buffers"]["arena_size"] < sum(s["size"] for s in m["buffers"]["slots"])
