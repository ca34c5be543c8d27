"""`--depfile`: every input of the bundle as one Make/Ninja rule, written atomically and only on success."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from stretchc.cli import main
from stretchc.depfile import escape, render
from stretchc.examples import branched_model
from stretchc.targets import load_target


def parse(text: str) -> tuple[str, list[str]]:
    joined = text.replace("\\\n", " ")
    target, _, rest = joined.partition(": ")
    return target, rest.split()


def test_depfile_lists_model_calib_target_config(tmp_path: Path, small_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calib = tmp_path / "calib"
    (calib / "sub").mkdir(parents=True)
    for name in ("b.npy", "a.npy", "sub/c.npy"):
        np.save(calib / name, np.zeros((1, 3, 32, 32), np.float32))
    (calib / ".hidden").write_text("x")
    (tmp_path / "stretchc.toml").write_text('target = "pixel6"\n')
    dep = tmp_path / "out" / "b.d"
    monkeypatch.chdir(tmp_path)
    assert main(["compile", str(small_model), "-o", "b.stretch", "--calib", str(calib), "--depfile", str(dep), "-q"]) == 0
    target, deps = parse(dep.read_text())
    assert target == str(tmp_path / "b.stretch" / "manifest.json")
    assert deps == sorted(
        [
            str(small_model),
            str(calib / "a.npy"),
            str(calib / "b.npy"),
            str(calib / "sub" / "c.npy"),
            str(load_target("pixel6").path.resolve()),
            str(tmp_path / "stretchc.toml"),
        ]
    )


def test_depfile_lists_external_data(tmp_path: Path) -> None:
    model = branched_model(size=32, width=8)
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="ext.onnx.data", size_threshold=0)
    dep = tmp_path / "ext.d"
    assert main(["compile", str(path), "-o", str(tmp_path / "b"), "--depfile", str(dep), "-q"]) == 0
    _, deps = parse(dep.read_text())
    assert str(tmp_path / "ext.onnx.data") in deps and str(path) in deps


def test_no_depfile_on_failure(tmp_path: Path, small_model: Path) -> None:
    dep = tmp_path / "b.d"
    assert main(["compile", str(small_model), "-o", str(tmp_path / "b"), "-t", "nosuchphone", "--depfile", str(dep), "-q"]) == 2
    assert not dep.exists()


def test_missing_calib_is_an_error(tmp_path: Path, small_model: Path) -> None:
    assert main(["compile", str(small_model), "-o", str(tmp_path / "b"), "--calib", str(tmp_path / "nope"), "-q"]) == 3


def test_escaping() -> None:
    assert escape("/a b/$x#y") == "/a\\ b/$$x\\#y"
    assert render(Path("/o/manifest.json"), [Path("/a"), Path("/b c")]) == "/o/manifest.json: \\\n /a \\\n /b\\ c\n"
