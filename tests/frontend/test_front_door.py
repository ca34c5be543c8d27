"""The ONNX front door end to end: today's opsets, compile-time inputs, unread inputs, clean lowering errors,
and never an invalid bundle (issue 15; the lowering parts of issue 12 item 13)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter
import pytest
from onnx import TensorProto, helper, numpy_helper

from stretchc.cli import main
from stretchc.examples import branched_model
from stretchc.frontend.validate import MAX_OPSET, default_opset


def _cli(capsys, args: list[str]) -> tuple[int, str, list[dict[str, str]]]:  # type: ignore[no-untyped-def]
    """Exit status, stdout and the diagnostics (JSON) of one in-process `stretchc` command."""
    capsys.readouterr()
    rc = main([*args, "--diagnostics=json"])
    cap = capsys.readouterr()
    return rc, cap.out, [json.loads(line) for line in cap.err.splitlines() if line.startswith("{")]


def _error(diags: list[dict[str, str]]) -> dict[str, str]:
    (err,) = [d for d in diags if d["severity"] == "error"]
    assert "\n" not in err["message"] and "\x1b" not in err["message"], err
    return err


def _save(tmp_path: Path, model: onnx.ModelProto, name: str = "m.onnx") -> Path:
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def _model(nodes: list[onnx.NodeProto], inputs: list[tuple[str, int, list[int]]], outputs: list[tuple[str, int, list[int]]], *, opset: int = 18, inits: list[onnx.TensorProto] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs], [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs], inits or []
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


# ---- opsets ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [23, MAX_OPSET])
def test_a_cnn_exported_at_a_current_opset_compiles_and_verifies(opset: int, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = onnx.version_converter.convert_version(branched_model(branches=(2,), size=32, width=8), opset)
    assert default_opset(model) == opset
    path = _save(tmp_path, model)
    rc, out, diags = _cli(capsys, ["compile", str(path), "-t", "pixel6", "-o", str(tmp_path / "b"), "--verify"])
    assert rc == 0, diags
    assert "PASS" in out


def test_an_opset_newer_than_onnx_defines_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [("x", TensorProto.FLOAT, [1, 4])], [("y", TensorProto.FLOAT, [1, 4])], opset=MAX_OPSET + 1)
    rc, _, diags = _cli(capsys, ["compile", str(_save(tmp_path, model)), "-o", str(tmp_path / "b")])
    err = _error(diags)
    assert rc == 4 and err["code"] == "unsupported-opset" and str(MAX_OPSET + 1) in err["message"]


# ---- compile-time inputs and inputs the lowered model does not read -------------------------------------


def _reshape_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Reshape", ["r", "shape"], ["y"], name="reshape")]
    return _model(nodes, [("x", TensorProto.FLOAT, [1, 3, 4, 4]), ("shape", TensorProto.INT64, [2])], [("y", TensorProto.FLOAT, [3, 16])])


def test_a_parameter_fed_at_run_time_is_refused_asking_for_its_value(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, _, diags = _cli(capsys, ["compile", str(_save(tmp_path, _reshape_model())), "-o", str(tmp_path / "b")])
    err = _error(diags)
    assert rc == 4 and err["code"] == "unsupported-op"
    for word in ("'shape'", "Reshape", "'reshape'", "--const-input shape="):
        assert word in err["message"]
    assert not (tmp_path / "b").exists()


def test_const_input_folds_the_value_and_verify_takes_it_too(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = _save(tmp_path, _reshape_model())
    np.save(tmp_path / "shape.npy", np.array([3, 16], np.int64))
    const = ["--const-input", f"shape={tmp_path / 'shape.npy'}"]
    rc, _, diags = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "b"), *const, "--depfile", str(tmp_path / "b.d")])
    assert rc == 0, diags
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert [i["name"] for i in manifest["inputs"]] == ["x"]
    assert all(s["consumers"] for s in manifest["sync_points"])
    assert str(tmp_path / "shape.npy") in (tmp_path / "b.d").read_text()
    rc, out, diags = _cli(capsys, ["verify", str(tmp_path / "b"), str(model), *const])
    assert rc == 0 and "PASS" in out, diags


@pytest.mark.parametrize(
    ("spec", "code", "word"),
    [("shape", "usage", "NAME=FILE.npy"), ("nope={npy}", "usage", "'nope'"), ("shape={npy}", "usage", "twice")],
)
def test_const_input_mistakes(spec: str, code: str, word: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    np.save(tmp_path / "s.npy", np.array([3, 16], np.int64))
    specs = ["--const-input", spec.format(npy=tmp_path / "s.npy")]
    if word == "twice":
        specs *= 2
    rc, _, diags = _cli(capsys, ["compile", str(_save(tmp_path, _reshape_model())), "-o", str(tmp_path / "b"), *specs])
    err = _error(diags)
    assert rc == 2 and err["code"] == code and word in err["message"], err


def test_an_input_nothing_reads_is_left_out_with_a_note(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # `probe` is read only through Shape (its static shape), `unused` not at all.
    nodes = [helper.make_node("Shape", ["probe"], ["s"]), helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "s"], ["y"])]
    inputs = [("x", TensorProto.FLOAT, [1, 8]), ("unused", TensorProto.FLOAT, [1, 2]), ("probe", TensorProto.FLOAT, [2, 4])]
    model = _save(tmp_path, _model(nodes, inputs, [("y", TensorProto.FLOAT, [2, 4])]))
    rc, _, diags = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "b")])
    assert rc == 0, diags
    notes = [d["message"] for d in diags if d["code"] == "unused-input"]
    assert len(notes) == 2 and any("'unused'" in n for n in notes) and any("'probe'" in n for n in notes)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert [i["name"] for i in manifest["inputs"]] == ["x"]
    rc, out, diags = _cli(capsys, ["verify", str(tmp_path / "b"), str(model)])
    assert rc == 0 and "PASS" in out, diags


def test_inputs_onnx2tf_renames_are_matched_in_order(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # onnx2tf names the lowered input of `x:0` `x__0`; `y` keeps its name.
    nodes = [helper.make_node("Sub", ["y", "x:0"], ["d"]), helper.make_node("Relu", ["d"], ["out"])]
    model = _save(tmp_path, _model(nodes, [("x:0", TensorProto.FLOAT, [1, 6]), ("y", TensorProto.FLOAT, [1, 6])], [("out", TensorProto.FLOAT, [1, 6])]))
    rc, _, diags = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "b"), "--verify"])
    assert rc == 0, diags


# ---- clean errors from the lowering ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "elem", "words"),
    [
        # onnx2tf's Clip converter raises KeyError without bounds: the node is named, the reason is one line.
        ([helper.make_node("Clip", ["x"], ["y"], name="clamp")], TensorProto.FLOAT, ["Clip", "'clamp'", "KeyError"]),
        # TFLite has no uint8 ADD: the TensorFlow op, its types and the ONNX node.
        ([helper.make_node("Add", ["x", "x"], ["y"], name="plus")], TensorProto.UINT8, ["AddV2", "ui8", "Add", "'plus'"]),
        # onnx2tf concatenates a square 2-D pair on the wrong axis: the self-check catches it.
        ([helper.make_node("Concat", ["x", "z"], ["y"], name="cat", axis=0)], TensorProto.FLOAT, ["'y'", "Concat", "'cat'", "wrongly"]),
    ],
)
def test_lowering_failures_are_one_line_naming_op_and_node(nodes: list[onnx.NodeProto], elem: int, words: list[str], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    in_shape, out_shape = ([2, 2], [4, 2]) if nodes[0].op_type == "Concat" else ([4, 3], [4, 3])
    inputs = [(name, elem, in_shape) for name in ("x", "z") if name in nodes[0].input]
    model = _save(tmp_path, _model(nodes, inputs, [("y", elem, out_shape)], opset=14))
    rc, _, diags = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "b")])
    err = _error(diags)
    assert rc == 4 and err["code"] == "unsupported-op", err
    for word in words:
        assert word in err["message"], (word, err)
    assert not (tmp_path / "b").exists()


def test_a_model_that_lowers_to_nothing_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = _save(tmp_path, _model([helper.make_node("Identity", ["x"], ["y"])], [("x", TensorProto.FLOAT, [1, 4])], [("y", TensorProto.FLOAT, [1, 4])]))
    rc, _, diags = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "b")])
    assert rc == 4 and "no operators" in _error(diags)["message"]


def test_outputs_the_lowering_drops_are_refused_naming_their_node(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    inits = [numpy_helper.from_array(np.full((3,), v, np.float32), n) for n, v in (("s", 1.0), ("b", 0.0), ("m", 0.0), ("v", 1.0))]
    bn = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], name="bn", training_mode=1)
    outs = [("y", TensorProto.FLOAT, [2, 3, 4, 5]), ("rm", TensorProto.FLOAT, [3]), ("rv", TensorProto.FLOAT, [3])]
    model = _save(tmp_path, _model([bn], [("x", TensorProto.FLOAT, [2, 3, 4, 5])], outs, opset=15, inits=inits))
    rc, _, diags = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "b")])
    err = _error(diags)
    assert rc == 4 and "BatchNormalization" in err["message"] and "'bn'" in err["message"]


def test_an_onnxsim_failure_is_a_note_and_the_compile_goes_on(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import onnxsim

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("simplifier exploded\nsecond line")

    monkeypatch.setattr(onnxsim, "simplify", broken)
    model = _save(tmp_path, branched_model(branches=(2,), size=32, width=8))
    rc, _, diags = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "b"), "--no-cache"])
    assert rc == 0, diags
    (note,) = [d for d in diags if d["code"] == "simplify-skipped"]
    assert note["severity"] == "note" and "simplifier exploded" in note["message"] and "\n" not in note["message"]


def test_a_bug_of_ours_during_lowering_is_internal_not_unsupported(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from stretchc.frontend import lower

    def bug() -> None:
        raise ZeroDivisionError("our own bug")

    monkeypatch.setattr(lower, "_reset_keras_names", bug)
    model = _save(tmp_path, branched_model(branches=(2,), size=32, width=8))
    rc, _, diags = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "b"), "--no-cache"])
    err = _error(diags)
    assert rc == 70 and err["code"] == "internal" and "ZeroDivisionError" in err["message"]


# ---- never an invalid bundle ----------------------------------------------------------------------------


def test_a_bundle_that_fails_validation_is_never_installed(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from stretchc.passes import emit_bundle

    real = emit_bundle.build_manifest

    def no_consumers(*args: object, **kwargs: object) -> dict:  # type: ignore[type-arg]
        manifest = real(*args, **kwargs)  # type: ignore[arg-type]
        manifest["sync_points"][0]["consumers"] = []
        return manifest

    monkeypatch.setattr(emit_bundle, "build_manifest", no_consumers)
    model = _save(tmp_path, branched_model(branches=(2,), size=32, width=8))
    rc, _, diags = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "b")])
    err = _error(diags)
    assert rc == 70 and "fails validation" in err["message"] and "consumers" in err["message"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


# ---- dumps ----------------------------------------------------------------------------------------------


def test_dump_dir_holds_numbered_onnx_dumps_of_the_rewrites_that_changed_something(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from stretchc.frontend.canonicalize import REWRITES

    model = onnx.version_converter.convert_version(branched_model(branches=(2,), size=32, width=8), 23)
    rc, _, diags = _cli(capsys, ["compile", str(_save(tmp_path, model)), "-o", str(tmp_path / "b"), "--dump-dir", str(tmp_path / "d")])
    assert rc == 0, diags
    position = 1 + [r.name for r in REWRITES].index("convert-opset")
    onnx_dumps = sorted(p.name for p in (tmp_path / "d").glob("onnx-*.onnx"))
    assert onnx_dumps == ["onnx-00-input.onnx", f"onnx-{position:02d}-after-convert-opset.onnx"]
    assert default_opset(onnx.load(str(tmp_path / "d" / onnx_dumps[1]))) == 21
    assert (tmp_path / "d" / "00-input.ir").is_file()
