"""stretchc.toml project defaults, overridden by the command line; --print-config; bad-config errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stretchc.cli import main


def printed(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    out = capsys.readouterr().out
    return {k.strip(): v.strip() for k, _, v in (ln.partition("=") for ln in out.splitlines() if "=" in ln)}


def test_print_config_defaults_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["compile", "--print-config"]) == 0
    cfg = printed(capsys)
    assert cfg["target"] == '"pixel6"' and cfg["cache"] == "true" and "find-branches" in cfg["pipeline"]
    (tmp_path / "calib").mkdir()
    (tmp_path / "stretchc.toml").write_text(
        'target = "sd855"\ncalib = "calib"\nplace = { "s1.b1" = "gpu", stem = "cpu" }\ncache = false\n'
        "input-shape = { input = [1, 3, 32, 32] }\n[preprocessing]\nmean = [0.5]\n"
    )
    assert main(["compile", "--print-config", "-t", "pixel6", "--place", "s1.b1=cpu"]) == 0
    cfg = printed(capsys)
    assert cfg["target"] == '"pixel6"'  # command line wins
    assert cfg["calib"] == json.dumps(str(tmp_path / "calib"))  # relative to the file
    assert cfg["place"] == '{ "s1.b1" = "cpu", "stem" = "cpu" }'
    assert cfg["cache"] == "false"
    assert cfg["config"] == json.dumps(str(tmp_path / "stretchc.toml"))
    assert cfg["input-shape"] == '{ "input" = [1, 3, 32, 32] }'


def test_config_flag_and_compile(tmp_path: Path, small_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "sub" / "my.toml"
    conf.parent.mkdir()
    conf.write_text('place = "s1.b1=cpu"\n')
    assert main(["compile", str(small_model), "-o", str(tmp_path / "b"), "--config", str(conf)]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert [p["processor"] for p in manifest["partitions"] if "s1.b1" in p["regions"]] == ["cpu"]
    assert "(--place)" in next(line for line in out.splitlines() if "s1.b1" in line and " cpu " in line)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("targt = 'pixel6'\n", "unknown key 'targt'"),
        ("target = 3\n", "key 'target'"),
        ("target = \n", "not valid TOML"),
        ("input-shape = { input = [1, -3] }\n", "input-shape"),
    ],
)
def test_bad_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str, needle: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stretchc.toml").write_text(text)
    assert main(["compile", "--print-config", "--diagnostics=json"]) == 3
    (line,) = capsys.readouterr().err.splitlines()
    diag = json.loads(line)
    assert diag["code"] == "bad-config" and needle in diag["message"]
    assert diag["file"].endswith("stretchc.toml")


def test_missing_config_file(tmp_path: Path) -> None:
    assert main(["compile", "--print-config", "--config", str(tmp_path / "none.toml")]) == 3
