"""Under --diagnostics=json every failure of the CLI is exactly one JSON line with a documented code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from stretchc.cli import main
from stretchc.errors import CODES, ExitStatus
from tests.buildsys.conftest import cli


def check_one_error(err: str, code: str, status: int, rc: int) -> dict[str, str]:
    lines = err.splitlines()
    diags = [json.loads(ln) for ln in lines]  # every stderr line is JSON
    errors = [d for d in diags if d["severity"] == "error"]
    assert len(errors) == 1, lines
    d = errors[0]
    assert set(d) >= {"severity", "code", "message"}
    assert d["code"] == code, d
    assert d["code"] in CODES and rc == int(CODES[d["code"]][0]) == status
    return d


def unsupported_op_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Frobnicate", ["x"], ["y"], name="frob", domain="com.example")
    return helper.make_model(
        helper.make_graph([node], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)],
    )


@pytest.fixture
def files(tmp_path: Path, small_model: Path) -> dict[str, Path]:
    jpeg = tmp_path / "photo.onnx"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + bytes(range(256)) * 8 + b"\xff\xd9")
    trunc = tmp_path / "trunc.onnx"
    data = small_model.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    unsup = tmp_path / "unsup.onnx"
    onnx.save(unsupported_op_model(), str(unsup))
    afile = tmp_path / "afile"
    afile.write_text("x")
    return {"model": small_model, "jpeg": jpeg, "trunc": trunc, "unsup": unsup, "afile": afile}


CASES = [
    # name, argv (with {placeholders}), code, exit status
    ("missing file", ["compile", "{tmp}/nope.onnx", "-o", "{tmp}/b"], "file-not-found", ExitStatus.BAD_INPUT),
    ("jpeg renamed .onnx", ["compile", "{jpeg}", "-o", "{tmp}/b"], "not-onnx", ExitStatus.BAD_INPUT),
    ("truncated onnx", ["compile", "{trunc}", "-o", "{tmp}/b"], "not-onnx", ExitStatus.BAD_INPUT),
    ("unsupported op", ["compile", "{unsup}", "-o", "{tmp}/b"], "unsupported-op", ExitStatus.UNSUPPORTED),
    ("unknown target", ["compile", "{model}", "-o", "{tmp}/b", "-t", "nokia3310"], "unknown-target", ExitStatus.USAGE),
    ("output is a file", ["compile", "{model}", "-o", "{afile}"], "output-exists", ExitStatus.USAGE),
    ("unwritable output dir", ["compile", "{model}", "-o", "{afile}/sub/b"], "write-failed", ExitStatus.IO),
    ("place unknown branch", ["compile", "{model}", "-o", "{tmp}/b", "--place", "s9.b7=gpu"], "unknown-branch", ExitStatus.USAGE),
    ("place dsp on pixel6", ["compile", "{model}", "-o", "{tmp}/b", "--place", "s1.b1=dsp"], "no-such-processor", ExitStatus.UNSUPPORTED),
    ("unknown pass", ["compile", "{model}", "-o", "{tmp}/b", "--pipeline", "find-branches,frobnicate"], "unknown-pass", ExitStatus.USAGE),
    ("malformed pipeline option", ["compile", "{model}", "-o", "{tmp}/b", "--pipeline", "find-branches{oops"], "bad-pipeline", ExitStatus.USAGE),
    ("malformed place", ["compile", "{model}", "-o", "{tmp}/b", "--place", "nonsense"], "bad-placement", ExitStatus.USAGE),
    ("no command", [], "usage", ExitStatus.USAGE),
    ("unknown option", ["compile", "{model}", "-o", "{tmp}/b", "--frobnicate"], "usage", ExitStatus.USAGE),
    ("missing -o", ["compile", "{model}"], "usage", ExitStatus.USAGE),
    ("bad diagnostics value", ["compile", "{model}", "-o", "{tmp}/b", "--atol", "x"], "usage", ExitStatus.USAGE),
    ("missing config", ["compile", "{model}", "-o", "{tmp}/b", "--config", "{tmp}/none.toml"], "file-not-found", ExitStatus.BAD_INPUT),
    ("missing calib", ["compile", "{model}", "-o", "{tmp}/b", "--calib", "{tmp}/none"], "bad-calibration", ExitStatus.BAD_INPUT),
    ("unknown command", ["frobnicate"], "usage", ExitStatus.USAGE),
]


@pytest.mark.parametrize("name, argv, code, status", CASES, ids=[c[0] for c in CASES])
def test_error_is_one_json_line(
    name: str, argv: list[str], code: str, status: int, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subst = {"tmp": str(tmp_path), **{k: str(v) for k, v in files.items()}}
    args = []
    for a in argv:
        for k, v in subst.items():
            a = a.replace("{" + k + "}", v)
        args.append(a)
    args.append("--diagnostics=json")
    rc = main(args)
    err = capsys.readouterr().err
    check_one_error(err, code, int(status), rc)
    assert not (tmp_path / "b").exists()


def test_internal_error_is_one_json_line(small_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import stretchc.driver

    def boom(*_a: object, **_k: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(stretchc.driver, "load_model", boom)
    rc = main(["compile", str(small_model), "-o", str(tmp_path / "b"), "--diagnostics=json"])
    check_one_error(capsys.readouterr().err, "internal", int(ExitStatus.INTERNAL), rc)


def test_usage_error_in_a_real_process(tmp_path: Path) -> None:
    """Nothing else reaches stderr (TensorFlow's start-up logging included)."""
    proc = cli(["compile", "--no-such-option", "--diagnostics", "json"], cache=tmp_path / "c", check=False)
    check_one_error(proc.stderr, "usage", int(ExitStatus.USAGE), proc.returncode)
    proc = cli(["compile", str(tmp_path / "x.onnx"), "-o", str(tmp_path / "b"), "--diagnostics=json"], cache=tmp_path / "c", check=False)
    check_one_error(proc.stderr, "file-not-found", int(ExitStatus.BAD_INPUT), proc.returncode)
