"""Trained networks as their exporter wrote them: PP-OCR's text-angle classifier and text detector (issue 20).

The models ship as ONNX in the rapidocr-onnxruntime wheel (installed without its dependencies; this module
is skipped when it is absent, and never downloads anything): `ch_ppocr_mobile_v2.0_cls_infer.onnx`
(paddle2onnx, opset 11, input `x` [-1, 3, ?, ?], node names such as `Softmax@0`) and
`ch_PP-OCRv4_det_infer.onnx` (input `x` [N, 3, H, W] with named dimensions, a feature pyramid, HardSigmoid
gates). Data (tests/external/ocr_data.py): crops of scikit-learn's two sample photos with words drawn on them in
Pillow's bundled font, at the model's input size, normalized as RapidOCR normalizes ((x / 255 - 0.5) / 0.5): a
folder of PNGs for `--calib` and a held-out `.npz` (other crops) for `stretchc verify --input-dir`.

Each model compiles with its `--input-shape` for pixel6 (no calibration: float32) and for mi9 (a DSP phone:
`--calib` on the crops; the detector gets a DSP partition there), and the bundle verifies against ONNX
Runtime on the held-out crops. On every target both pass the compile's own `--verify` (on the calibration
crops held out of calibration where there is calibration data, else on seeded random inputs).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stretchc.cli import main
from tests.external import ocr_data

# slow as well: trained models are never part of the fast tier (`scripts/test.sh --fast`)
pytestmark = [pytest.mark.external, pytest.mark.slow]

# model -> (file in the wheel's models/, input height, input width)
MODELS = {
    "cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", 48, 192),
    "det": ("ch_PP-OCRv4_det_infer.onnx", 320, 320),
}
TARGETS = ["pixel6", "pixel4", "mi9", "pixel3", "galaxy-s21", "galaxy-s23", "galaxy-s24"]
INT8_TARGETS = {"pixel4", "mi9", "pixel3", "galaxy-s23", "galaxy-s24"}  # a Hexagon DSP or an NPU
CALIBRATION_CROPS = 12
HELD_OUT_CROPS = 3


def _models_dir() -> Path:
    models = ocr_data.models_dir()
    if models is None:
        pytest.skip(f"rapidocr-onnxruntime is not installed ({ocr_data.INSTALL_HINT}): it ships the PP-OCR models")
    return models


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Per model: (calibration folder of PNG crops, held-out .npz of normalized crops keyed `x`)."""
    out = {}
    for name, (_, height, width) in MODELS.items():
        root = tmp_path_factory.mktemp(name)
        ocr_data.write_calibration(root / "calib", ocr_data.crops(height, width, CALIBRATION_CROPS, seed=0))
        np.savez(root / "heldout.npz", x=ocr_data.normalized(ocr_data.crops(height, width, HELD_OUT_CROPS, seed=1)))
        out[name] = (root / "calib", root / "heldout.npz")
    return out


def _cli(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, list[dict[str, str]]]:
    capsys.readouterr()
    rc = main([*args, "--diagnostics=json"])
    cap = capsys.readouterr()
    return rc, cap.out, [json.loads(line) for line in cap.err.splitlines() if line.startswith("{")]


def _compile_args(name: str, target: str, bundle: Path, data: dict[str, tuple[Path, Path]]) -> list[str]:
    file, height, width = MODELS[name]
    args = ["compile", str(_models_dir() / file), "-t", target, "--input-shape", f"x=1,3,{height},{width}", "-o", str(bundle)]
    if target in INT8_TARGETS:  # the DSP or NPU runs int8: calibrate on the crops, preprocessed as the held-out inputs are
        args += ["--calib", str(data[name][0]), "--preprocess", f"size={height}x{width},mean=0.5,std=0.5"]
    return args


@pytest.mark.parametrize("target", ["pixel6", "mi9"])
@pytest.mark.parametrize("name", list(MODELS))
def test_compiles_and_verifies_on_real_inputs(name: str, target: str, data: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / f"{name}.stretch"
    rc, _, diags = _cli(capsys, _compile_args(name, target, bundle, data))
    assert rc == 0, diags
    manifest = json.loads((bundle / "manifest.json").read_text())
    _, height, width = MODELS[name]
    assert [i["shape"] for i in manifest["inputs"]] == [[1, 3, height, width]]
    if (name, target) == ("det", "mi9"):  # its HardSigmoid gates lower to RELU6 (hard-sigmoid-to-relu6): DSP-eligible
        assert "dsp" in {p["processor"] for p in manifest["partitions"]}, manifest["partitions"]
    rc, out, diags = _cli(capsys, ["verify", str(bundle), str(_models_dir() / MODELS[name][0]), "--input-dir", str(data[name][1])])
    assert rc == 0 and "verdict: PASS" in out, (out, diags)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(MODELS))
def test_every_target_passes_the_compiles_own_verify(name: str, target: str, data: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default compile (with the crops as calibration data where a DSP or NPU runs int8) installs a bundle
    its own `--verify` accepts, on every target."""
    rc, out, diags = _cli(capsys, [*_compile_args(name, target, tmp_path / "b", data), "--verify"])
    assert rc == 0 and "verdict: PASS" in out, (out, diags)
