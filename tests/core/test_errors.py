"""Bad input: one-line error, documented exit status (stretchc/errors.py), no output left behind."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from stretchc.cli import main
from stretchc.errors import CODES, ExitStatus

from tests.core.conftest import Compiled, make_model, run_stretchc


def _cli(capsys, args: list[str]) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _assert_one_line_error(rc: int, err: str, code: str, status: ExitStatus, *words: str) -> None:
    assert CODES[code][0] == status
    assert rc == int(status), err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error[{code}]: "), err
    for w in words:
        assert w in lines[0], (w, err)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("err-model") / "m.onnx"
    onnx.save(make_model("concat2"), str(path))
    return path


def _jpeg_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)).save(buf, "JPEG")
    return buf.getvalue()


def _one_op_model(op: str, out_shape: list[int], domain: str = "", **attrs: object) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)
    node = helper.make_node(op, ["x"], ["y"], name="the_node", domain=domain, **attrs)
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=opsets)
    model.ir_version = 8
    return model


# ---- input files --------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out.stretch"
    rc, _, err = _cli(capsys, ["compile", str(tmp_path / "nope.onnx"), "-o", str(out)])
    _assert_one_line_error(rc, err, "file-not-found", ExitStatus.BAD_INPUT, "nope.onnx")
    assert not out.exists()


def test_jpeg_renamed_onnx(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "photo.onnx"
    model.write_bytes(_jpeg_bytes())
    out = tmp_path / "out.stretch"
    rc, _, err = _cli(capsys, ["compile", str(model), "-o", str(out)])
    _assert_one_line_error(rc, err, "not-onnx", ExitStatus.BAD_INPUT, "photo.onnx")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.onnx"]


def test_truncated_onnx(tmp_path: Path, small_model: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    data = small_model.read_bytes()
    model = tmp_path / "cut.onnx"
    model.write_bytes(data[: len(data) // 2 + 3])
    out = tmp_path / "out.stretch"
    rc, _, err = _cli(capsys, ["compile", str(model), "-o", str(out)])
    _assert_one_line_error(rc, err, "not-onnx", ExitStatus.BAD_INPUT, "cut.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.onnx"]


def test_custom_domain_op(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "custom.onnx"
    onnx.save(_one_op_model("FancyOp", [1, 3, 8, 8], domain="com.example"), str(model))
    rc, _, err = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "out")])
    _assert_one_line_error(rc, err, "unsupported-op", ExitStatus.UNSUPPORTED, "FancyOp", "com.example", "the_node")
    assert not (tmp_path / "out").exists()


def test_onnx_op_the_lowering_lacks(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "lppool.onnx"
    onnx.save(_one_op_model("LpPool", [1, 3, 7, 7], kernel_shape=[2, 2]), str(model))
    rc, _, err = _cli(capsys, ["compile", str(model), "-o", str(tmp_path / "out")])
    _assert_one_line_error(rc, err, "unsupported-op", ExitStatus.UNSUPPORTED, "LpPool", "the_node")
    assert not (tmp_path / "out").exists()


# ---- command line -------------------------------------------------------------------------------------


def test_unknown_target_lists_known_ones(tmp_path: Path, small_model: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = _cli(capsys, ["compile", str(small_model), "-t", "nokia3310", "-o", str(tmp_path / "out")])
    _assert_one_line_error(rc, err, "unknown-target", ExitStatus.USAGE, "nokia3310", "pixel6", "mi9")
    assert not (tmp_path / "out").exists()


def test_output_is_an_existing_file(tmp_path: Path, small_model: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out.stretch"
    out.write_text("precious")
    rc, _, err = _cli(capsys, ["compile", str(small_model), "-o", str(out)])
    _assert_one_line_error(rc, err, "output-exists", ExitStatus.USAGE, "out.stretch")
    assert out.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.stretch"]


def test_output_under_a_file_is_unwritable(tmp_path: Path, small_model: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Robust as root too: no permission bit is involved, a regular file cannot hold a directory.
    (tmp_path / "afile").write_text("x")
    rc, _, err = _cli(capsys, ["compile", str(small_model), "-o", str(tmp_path / "afile" / "sub" / "out.stretch")])
    _assert_one_line_error(rc, err, "write-failed", ExitStatus.IO)
    assert (tmp_path / "afile").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_output_in_unwritable_directory(tmp_path: Path, small_model: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        out = locked / "out.stretch"
    else:  # root ignores permission bits; /proc refuses new entries even to root
        out = Path("/proc/stretchc-test-out/out.stretch")
    try:
        rc, _, err = _cli(capsys, ["compile", str(small_model), "-o", str(out), "-q"])
    finally:
        if os.geteuid() != 0:
            (tmp_path / "locked").chmod(0o755)
    _assert_one_line_error(rc, err, "write-failed", ExitStatus.IO)
    assert not out.exists()


def test_place_unknown_branch(tmp_path: Path, small_model: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = _cli(capsys, ["compile", str(small_model), "-o", str(tmp_path / "out"), "--place", "s9.b7=gpu", "-q"])
    _assert_one_line_error(rc, err, "unknown-branch", ExitStatus.USAGE, "s9.b7", "s1.b0")
    assert list(tmp_path.iterdir()) == []


def test_place_processor_the_target_lacks(tmp_path: Path, small_model: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = _cli(capsys, ["compile", str(small_model), "-t", "pixel6", "-o", str(tmp_path / "out"), "--place", "s1.b0=dsp", "-q"])
    _assert_one_line_error(rc, err, "no-such-processor", ExitStatus.UNSUPPORTED, "s1.b0=dsp", "pixel6")
    assert list(tmp_path.iterdir()) == []


def test_place_malformed(tmp_path: Path, small_model: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = _cli(capsys, ["compile", str(small_model), "-o", str(tmp_path / "out"), "--place", "s1.b0"])
    _assert_one_line_error(rc, err, "bad-placement", ExitStatus.USAGE, "s1.b0")


@pytest.mark.parametrize(
    "pipeline, code, word",
    [
        ("find-branches,frobnicate,emit-bundle", "unknown-pass", "frobnicate"),
        ("find-branches,assign-delegates{colour=red}", "bad-pipeline", "colour"),
        ("find-branches,assign-delegates{policy=fastest}", "bad-pipeline", "fastest"),
        ("find-branches,assign-delegates{policy=cpu,policy=cpu}", "bad-pipeline", "twice"),
        ("find-branches,assign-delegates{policy}", "bad-pipeline", "malformed"),
        ("find-branches,assign-delegates{policy=cpu", "bad-pipeline", "unbalanced"),
        ("find-branches,,emit-bundle", "bad-pipeline", "empty"),
    ],
)
def test_bad_pipeline(tmp_path: Path, small_model: Path, capsys, pipeline: str, code: str, word: str) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = _cli(capsys, ["compile", str(small_model), "-o", str(tmp_path / "out"), "--pipeline", pipeline])
    _assert_one_line_error(rc, err, code, CODES[code][0], word)
    assert list(tmp_path.iterdir()) == []


# ---- the same through the installed console script ------------------------------------------------------


def test_subprocess_errors(tmp_path: Path, small_model: Path) -> None:
    jpeg = tmp_path / "photo.onnx"
    jpeg.write_bytes(_jpeg_bytes())
    cases = [
        (["compile", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "o1")], "file-not-found"),
        (["compile", str(jpeg), "-o", str(tmp_path / "o2")], "not-onnx"),
        (["compile", str(small_model), "-t", "nokia3310", "-o", str(tmp_path / "o3")], "unknown-target"),
        (["compile", str(small_model), "-o", str(tmp_path / "o4"), "--pipeline", "find-branches{x=1}"], "bad-pipeline"),
    ]
    for args, code in cases:
        proc = run_stretchc(args)
        assert proc.returncode == int(CODES[code][0]), (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"error[{code}]"), proc.stderr
        assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.onnx"]
