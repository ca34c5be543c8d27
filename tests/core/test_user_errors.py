"""Issue 12: user errors that were internal errors (exit 70), lost data, or silently wrong results.

Each test reproduces one finding; every user error ends with its documented code and exactly one line.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import convert_model_to_external_data

from stretchc.cli import main
from stretchc.commands.run import output_file_name
from stretchc.depfile import model_files
from stretchc.errors import CODES, StretchError

from tests.bundle.hostile import build_case, cases
from tests.conftest import REPO


def _cli(capsys, args: list[str]) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    rc = main(args)
    return rc, capsys.readouterr().err


def _one_line_error(rc: int, err: str, code: str) -> None:
    """Exit status of `code`, and one error line, the last (notes may come before it)."""
    assert rc == int(CODES[code][0]) and rc != 70, err
    lines = err.splitlines()
    assert lines and lines[-1].startswith(f"error[{code}]") and sum(ln.startswith("error") for ln in lines) == 1, err
    assert all(ln.startswith(("note[", "warning[", "error[")) for ln in lines), err


def _save(tmp_path: Path, name: str, nodes: list, inputs: list, outputs: list, inits: list | None = None) -> Path:  # type: ignore[type-arg]
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits or [])
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _gather_model(tmp_path: Path, name: str, indices: list[int]) -> Path:
    d = helper.make_tensor_value_info("d", TensorProto.FLOAT, [1, 8, 16, 16])
    o = helper.make_tensor_value_info("o", TensorProto.FLOAT, [1, len(indices), 16, 16])
    nodes = [helper.make_node("Relu", ["d"], ["r"]), helper.make_node("Gather", ["r", "i"], ["o"], axis=1)]
    return _save(tmp_path, name, nodes, [d], [o], [numpy_helper.from_array(np.array(indices, np.int64), "i")])


# ---- item 1: -o DIR never deletes what is not a bundle ------------------------------------------------


def test_output_dir_with_a_stray_manifest_json_is_not_replaced(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    shutil.copy(REPO / "examples" / "branchy.onnx", out / "model.onnx")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    rc, err = _cli(capsys, ["compile", str(out / "model.onnx"), "-o", str(out)])
    _one_line_error(rc, err, "output-exists")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_bundle_dir_holding_a_user_file_is_not_replaced(example_bundle: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "b.stretch"
    shutil.copytree(example_bundle, out)
    (out / "notes.txt").write_text("mine")
    rc, err = _cli(capsys, ["compile", str(REPO / "examples" / "branchy.onnx"), "-o", str(out)])
    _one_line_error(rc, err, "output-exists")
    assert "notes.txt" in err and (out / "notes.txt").read_text() == "mine"


def test_output_dot_is_refused(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    shutil.copy(REPO / "examples" / "branchy.onnx", tmp_path / "m.onnx")
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")  # an empty directory passed the old "not a bundle" check
    for out in (".", str(tmp_path / "empty"), "sub/..", ".."):
        rc, err = _cli(capsys, ["compile", str(tmp_path / "m.onnx"), "-o", out])
        _one_line_error(rc, err, "output-exists")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "m.onnx"] and not any((tmp_path / "empty").iterdir())


# ---- item 6: every output gets its own file -------------------------------------------------------------


def test_output_file_names_never_collide() -> None:
    names = ["a/b", "a_b", "a%2Fb", "../x", ".hidden", "x\0y", "é", "logits"]
    files = [output_file_name(n) for n in names]
    assert len(set(files)) == len(files)
    assert all("/" not in f and "\0" not in f and not f.startswith(".") for f in files)
    assert output_file_name("logits") == "logits.npy" and output_file_name("a/b") == "a%2Fb.npy"


def test_run_output_dir_keeps_outputs_named_a_slash_b_and_a_b_apart(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("a/b", "a_b")]
    model = _save(tmp_path, "two", [helper.make_node("Relu", ["x"], ["a/b"]), helper.make_node("Neg", ["x"], ["a_b"])], [x], outs)
    assert main(["compile", str(model), "-o", str(tmp_path / "b"), "-q"]) == 0
    np.save(tmp_path / "x.npy", np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32))
    assert main(["run", str(tmp_path / "b"), "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", str(tmp_path / "o"), "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a%2Fb.npy", "a_b.npy", "run.json"]
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "a%2Fb.npy"), [[0.0, 2.0, 0.0, 4.0]])
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "a_b.npy"), [[1.0, -2.0, 3.0, -4.0]])


# ---- item 9: user errors, never exit 70 ------------------------------------------------------------


def test_missing_external_data_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    m = helper.make_model(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)])
    convert_model_to_external_data(m, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    onnx.save(m, str(tmp_path / "ext.onnx"))
    (tmp_path / "w.bin").unlink()
    rc, err = _cli(capsys, ["compile", str(tmp_path / "ext.onnx"), "-o", str(tmp_path / "b")])
    _one_line_error(rc, err, "file-not-found")
    assert "w.bin" in err
    (tmp_path / "w.bin").write_bytes(b"\0")  # present but too short
    rc, err = _cli(capsys, ["compile", str(tmp_path / "ext.onnx"), "-o", str(tmp_path / "b")])
    _one_line_error(rc, err, "invalid-model")


@pytest.mark.parametrize("kind", ["npz", "zip", "petabytes", "object"])
def test_bad_input_arrays(example_bundle: Path, tmp_path: Path, capsys, kind: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / f"x.{kind}"
    good = np.zeros((1, 3, 160, 160), np.float32)
    if kind == "npz":
        np.savez(path, input=good)
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("input.npy", b"x")
    elif kind == "petabytes":  # a header claiming 4 PB over 64 bytes of data
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10**15,)})
            f.write(bytes(64))
    else:
        np.save(path.with_suffix(".npy"), np.array([object()], dtype=object), allow_pickle=True)
        path = path.with_suffix(".npy")
    rc, err = _cli(capsys, ["run", str(example_bundle), "--input", f"input={path}"])
    _one_line_error(rc, err, "bad-input-data")


@pytest.mark.parametrize(
    "case",
    [
        "arena-huge", "perm-garbage", "io-slot-dtype", "internal-slot-dtype", "json-deep", "nul-in-io-name",  # item 9: were exit 70
        "overlap-live",  # item 4: ran, with wrong outputs in some runs
        "bin-truncated", "sums-stale",  # item 5: manifest.bin and SHA256SUMS were never read
        "lane-reversed", "cycle-across-lanes", "reads-unproduced",  # item 7: the run hung
    ],
)
def test_hostile_manifests_are_user_errors(example_bundle: Path, tmp_path: Path, capsys, case: str) -> None:  # type: ignore[no-untyped-def]
    bundle = build_case(example_bundle, next(c for c in cases() if c.name == case), tmp_path / "b")
    for args in (["run", str(bundle), "--seed", "0", "--output-dir", str(tmp_path / "o")], ["inspect", str(bundle)]):
        rc, err = _cli(capsys, args)
        _one_line_error(rc, err, "bad-bundle")


@pytest.mark.parametrize(
    "args, code",
    [
        (["compile", "{model}", "-o", "{out}", "--pipeline=emit-bundle"], "bad-pipeline"),
        (["compile", "{model}", "-o", "{out}", "--pipeline=find-branches,assign-delegates,outline-partitions,insert-sync-points"], "bad-pipeline"),
        (["verify", "{bundle}", "{model}", "--samples", "0"], "usage"),
        (["verify", "{bundle}", "{model}", "--seed", "-1"], "usage"),
        (["run", "{bundle}", "--seed", "-1"], "usage"),
        (["run", "{bundle}", "--seed", "0", "--stall-timeout", "0"], "usage"),
        (["compile", "{model}", "-o", "{out}", "--limit", "tensor-bytes=lots"], "usage"),
    ],
)
def test_bad_command_lines(example_bundle: Path, tmp_path: Path, capsys, args: list[str], code: str) -> None:  # type: ignore[no-untyped-def]
    values = {"model": str(REPO / "examples" / "branchy.onnx"), "out": str(tmp_path / "b"), "bundle": str(example_bundle)}
    rc, err = _cli(capsys, [a.format(**values) for a in args])
    _one_line_error(rc, err, code)
    assert not (tmp_path / "b").exists()


def test_output_name_with_a_nul(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y\0z", TensorProto.FLOAT, [1, 4])
    model = _save(tmp_path, "nul", [helper.make_node("Relu", ["x"], ["y\0z"])], [x], [y])
    rc, err = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "b")])
    _one_line_error(rc, err, "invalid-model")
    assert "'y\\x00z'" in err


@pytest.mark.parametrize("report", ['{"regions": [{"region": 1}]}', "[" * 100000, "not json", '{"regions": 3, "predicted_latency_ms": 1, "method": "x"}'])
def test_explain_malformed_report(example_bundle: Path, tmp_path: Path, capsys, report: str) -> None:  # type: ignore[no-untyped-def]
    bundle = tmp_path / "b"
    shutil.copytree(example_bundle, bundle)
    (bundle / "report.json").write_text(report)
    rc, err = _cli(capsys, ["explain", str(bundle), "s1.b0"])
    _one_line_error(rc, err, "bad-bundle")


def test_explain_reads_a_good_report(example_bundle: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, err = _cli(capsys, ["explain", str(example_bundle), "s1.b1"])
    assert rc == 0, err


@pytest.mark.parametrize("indices", [[8, 0], [-9, 0], [0, 100]])
def test_out_of_range_gather_indices_are_refused(tmp_path: Path, capsys, indices: list[int]) -> None:  # type: ignore[no-untyped-def]
    rc, err = _cli(capsys, ["compile", str(_gather_model(tmp_path, "g", indices)), "-o", str(tmp_path / "b")])
    _one_line_error(rc, err, "invalid-model")
    assert "Gather node" in err and "out of range for axis 1 of size 8" in err


def test_negative_gather_indices_work(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = _gather_model(tmp_path, "g", [-1, 0, -8])
    rc, err = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "b"), "--verify"])
    assert rc == 0, err


def test_gather_index_out_of_range_at_run_time(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    d = helper.make_tensor_value_info("d", TensorProto.FLOAT, [10, 4])
    i = helper.make_tensor_value_info("i", TensorProto.INT64, [3])
    o = helper.make_tensor_value_info("o", TensorProto.FLOAT, [3, 4])
    model = _save(tmp_path, "dyn", [helper.make_node("Relu", ["d"], ["r"]), helper.make_node("Gather", ["r", "i"], ["o"], axis=0)], [d, i], [o])
    assert main(["compile", str(model), "-o", str(tmp_path / "b"), "-q"]) == 0
    np.save(tmp_path / "d.npy", np.ones((10, 4), np.float32))
    np.save(tmp_path / "i.npy", np.array([11, 0, 1]))
    rc, err = _cli(capsys, ["run", str(tmp_path / "b"), "--input", f"d={tmp_path / 'd.npy'}", "--input", f"i={tmp_path / 'i.npy'}"])
    _one_line_error(rc, err, "bad-input-data")
    np.save(tmp_path / "i.npy", np.array([-1, 0, -10]))
    rc, err = _cli(capsys, ["verify", str(tmp_path / "b"), str(model), "--input", f"d={tmp_path / 'd.npy'}", "--input", f"i={tmp_path / 'i.npy'}"])
    assert rc == 0, err


# ---- item 13: a model the depfile writer cannot read is an error, not a depfile missing files ------


def test_depfile_refuses_a_model_it_cannot_read(tmp_path: Path) -> None:
    bad = tmp_path / "m.onnx"
    bad.write_bytes(b"\x08garbage")
    with pytest.raises(StretchError) as info:
        model_files(bad)
    assert info.value.code == "not-onnx"
    with pytest.raises(StretchError) as info:
        model_files(tmp_path / "gone.onnx")
    assert info.value.code == "file-not-found"


def test_json_diagnostics_of_a_user_error(example_bundle: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, err = _cli(capsys, ["run", str(example_bundle), "--seed", "-1", "--diagnostics=json"])
    assert rc == 2 and json.loads(err)["code"] == "usage"
