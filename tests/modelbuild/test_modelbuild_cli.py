"""`stretchc build-model`: arguments, atomic output, --complexity, errors."""

from __future__ import annotations

import argparse

import onnx
import pytest
from mbhelpers import PROTOTYPE, variant

from stretchc import fileio
from stretchc.cli import _Parser
from stretchc.commands import build_model as cmd
from stretchc.console import Console, set_console
from stretchc.errors import StretchError


def parse(argv: list[str]) -> argparse.Namespace:
    """A parser with only this command, built the way stretchc.cli.build_parser builds it."""
    parser = _Parser(prog="stretchc")
    common = _Parser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true")
    common.add_argument("--diagnostics", choices=("text", "json"), default="text")
    common.add_argument("--debug", action="store_true")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    cmd.register(sub, common)
    return parser.parse_args(argv)


@pytest.fixture(autouse=True)
def console():
    c = Console()
    set_console(c)
    return c


def test_writes_model_and_prints_complexity(write_cfg, tmp_path, capsys):
    cfg = write_cfg(variant(), name="tiny")
    out = tmp_path / "tiny.onnx"
    args = parse(["build-model", str(cfg), "-o", str(out), "--image-size", "64", "--seed", "3", "--complexity"])
    assert args.func(args) == 0
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["stretchc.config"] == "tiny" and props["stretchc.seed"] == "3" and props["stretchc.image_size"] == "64"
    stdout = capsys.readouterr().out
    assert "flops" in stdout and "params" in stdout and "acts" in stdout and "image size 64" in stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_same_seed_same_bytes_through_the_cli(write_cfg, tmp_path):
    cfg = write_cfg(variant())
    for name in ("a.onnx", "b.onnx"):
        args = parse(["build-model", str(cfg), "-o", str(tmp_path / name), "--image-size", "32"])
        args.func(args)
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_default_output_in_cwd(write_cfg, tmp_path, monkeypatch):
    cfg = write_cfg(variant(), name="dflt")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    args = parse(["build-model", str(cfg), "--image-size", "32"])
    assert args.func(args) == 0
    assert (work / "dflt.onnx").is_file()


def test_strict_refuses_and_writes_nothing(tmp_path):
    out = tmp_path / "x.onnx"
    args = parse(["build-model", str(PROTOTYPE / "mi_RX-4-CDG.yaml"), "-o", str(out), "--strict"])
    with pytest.raises(StretchError) as info:
        args.func(args)
    assert info.value.code == "bad-config" and "ANYNET.ORIGINAL_WIDTHS stage 4" in info.value.message
    assert "--strict" in info.value.message
    assert list(tmp_path.iterdir()) == []


def test_lenient_build_warns_per_inconsistency(tmp_path, console):
    out = tmp_path / "x.onnx"
    args = parse(["build-model", str(PROTOTYPE / "mi_EN-L4-CD.yaml"), "-o", str(out), "--image-size", "32"])
    assert args.func(args) == 0 and out.is_file()
    warnings = [d for d in console.diagnostics if d.severity == "warning"]
    assert [d.code for d in warnings] == ["lenient-config", "lenient-config"]
    assert "ANYNET.STRIDES stage 1" in warnings[0].message and "ANYNET.STRIDES stage 7" in warnings[1].message


def test_never_overwrites_the_config(write_cfg):
    cfg = write_cfg(variant())
    before = cfg.read_bytes()
    args = parse(["build-model", str(cfg), "-o", str(cfg)])
    with pytest.raises(StretchError) as info:
        args.func(args)
    assert info.value.code == "usage"
    assert cfg.read_bytes() == before


def test_unwritable_output(write_cfg, tmp_path):
    cfg = write_cfg(variant())
    args = parse(["build-model", str(cfg), "-o", str(tmp_path / "missing" / "m.onnx"), "--image-size", "32"])
    with pytest.raises(StretchError) as info:
        args.func(args)
    assert info.value.code == "write-failed"
    args = parse(["build-model", str(cfg), "-o", str(tmp_path), "--image-size", "32"])
    with pytest.raises(StretchError) as info:
        args.func(args)
    assert info.value.code == "write-failed"


def test_write_failure_leaves_no_temp_file(write_cfg, tmp_path, monkeypatch):
    cfg = write_cfg(variant())
    out = tmp_path / "out"
    out.mkdir()

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", boom)
    args = parse(["build-model", str(cfg), "-o", str(out / "m.onnx"), "--image-size", "32"])
    with pytest.raises(StretchError) as info:
        args.func(args)
    assert info.value.code == "write-failed" and "No space left" in info.value.message
    assert list(out.iterdir()) == []


def test_missing_config_and_bad_image_size(tmp_path):
    args = parse(["build-model", str(tmp_path / "none.yaml"), "-o", str(tmp_path / "m.onnx")])
    with pytest.raises(StretchError) as info:
        args.func(args)
    assert info.value.code == "file-not-found"
    args = parse(["build-model", str(PROTOTYPE / "mi_R-50-C.yaml"), "--image-size", "0"])
    with pytest.raises(StretchError) as info:
        args.func(args)
    assert info.value.code == "usage"


def test_full_cli_when_every_command_exists(write_cfg, tmp_path, capsys):
    from stretchc import cli

    try:
        cli.build_parser()
    except ModuleNotFoundError as exc:
        pytest.skip(f"another command module is not written yet: {exc}")
    out = tmp_path / "m.onnx"
    rc = cli.main(["build-model", str(write_cfg(variant())), "-o", str(out), "--image-size", "32", "--complexity"])
    assert rc == 0 and out.is_file() and "flops" in capsys.readouterr().out
    assert cli.main(["build-model", str(PROTOTYPE / "mi_EN-L4-CD.yaml"), "-o", str(out), "--strict"]) == 3
