"""Calibration data: images with preprocessing, .npy/.npz arrays, and bad input reported as bad-calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stretchc.cli import main
from stretchc.errors import StretchError
from stretchc.quantize.calibration_data import load_calibration_data, parse_preprocess

from tests.conftest import REPO

INPUTS = [("input", (1, 3, 8, 8), "float32")]


def _images(folder: Path, n: int = 3) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def test_images_are_resized_scaled_normalized_nchw(tmp_path: Path) -> None:
    folder = _images(tmp_path / "imgs")
    cal = load_calibration_data(str(folder), INPUTS, preprocess="size=8,mean=0.5:0.5:0.5,std=0.25:0.25:0.25")
    assert len(cal.samples) == 3 and not cal.random
    x = cal.samples[0]["input"]
    assert x.shape == (1, 3, 8, 8) and x.dtype == np.float32
    assert -2.0 - 1e-6 <= x.min() and x.max() <= 2.0 + 1e-6
    plain = load_calibration_data(str(folder), INPUTS)
    assert 0.0 <= plain.samples[0]["input"].min() and plain.samples[0]["input"].max() <= 1.0
    np.testing.assert_allclose((plain.samples[0]["input"] - 0.5) / 0.25, x, atol=1e-5)


def test_arrays(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((5, 3, 8, 8), np.float32))
    assert len(load_calibration_data(str(tmp_path / "a.npy"), INPUTS).samples) == 5
    np.savez(tmp_path / "a.npz", input=np.zeros((4, 1, 3, 8, 8), np.float32))
    cal = load_calibration_data(str(tmp_path / "a.npz"), INPUTS)
    assert len(cal.samples) == 4 and cal.samples[0]["input"].shape == (1, 3, 8, 8)
    assert load_calibration_data("random", INPUTS).random


def test_preprocess_parse() -> None:
    p = parse_preprocess("size=224,mean=0.485:0.456:0.406,std=0.229:0.224:0.225")
    assert p.size == (224, 224) and p.mean == (0.485, 0.456, 0.406) and p.std[2] == 0.225
    with pytest.raises(StretchError):
        parse_preprocess("scale=2")


def _bad(tmp_path: Path, kind: str) -> Path:
    if kind == "empty-folder":
        (tmp_path / "empty").mkdir()
        return tmp_path / "empty"
    if kind == "unreadable-image":
        folder = _images(tmp_path / "imgs", 1)
        (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
        return folder
    if kind == "wrong-shape":
        np.save(tmp_path / "s.npy", np.zeros((5, 3, 9, 8), np.float32))
        return tmp_path / "s.npy"
    if kind == "wrong-dtype":
        np.save(tmp_path / "d.npy", np.zeros((5, 3, 8, 8), np.int32))
        return tmp_path / "d.npy"
    if kind == "not-an-array":
        (tmp_path / "x.npy").write_bytes(b"garbage")
        return tmp_path / "x.npy"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["empty-folder", "unreadable-image", "wrong-shape", "wrong-dtype", "not-an-array"])
def test_bad_calibration_names_the_file(tmp_path: Path, kind: str) -> None:
    path = _bad(tmp_path, kind)
    with pytest.raises(StretchError) as exc:
        load_calibration_data(str(path), INPUTS)
    assert exc.value.code == "bad-calibration"
    assert exc.value.location.file is not None and Path(exc.value.location.file).name in {path.name, "broken.jpg"}


def test_compile_with_bad_calibration_writes_nothing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 3, 32, 32), np.float32))  # the example's input is 1x3x160x160
    out = tmp_path / "b.stretch"
    argv = ["compile", str(REPO / "examples" / "branchy.onnx"), "-t", "mi9", "-o", str(out), "--place", "s1.b1=dsp"]
    assert main([*argv, "--calib", str(bad)]) == 3
    assert "error[bad-calibration]" in capsys.readouterr().err
    assert main(argv) == 3  # a DSP partition without calibration data
    assert "--calib" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".b.stretch*"))
