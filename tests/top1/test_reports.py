"""Top-1 accuracy where users see it: `verify` with labelled data and the placement report of `compile`
with labelled `--calib` data (JSON and HTML), on the trained digits example."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from stretchc.cli import main
from stretchc.console import Console, set_console
from stretchc.digits.data import data_files, load_split
from stretchc.digits.export import predict
from stretchc.driver import CompileOptions, compile_model
from stretchc.verify import verify_bundle

from tests.conftest import REPO

MODEL = REPO / "examples" / "digits.onnx"

# slow (not in `scripts/test.sh --fast`): compiles the digits model, calibrated with TFLite on labelled data (about 16 s)
pytestmark = pytest.mark.slow


def _float_top1(split: str, last: int = 0) -> float:
    images, labels = load_split(split)
    images, labels = images[-last:], labels[-last:]
    return float(np.mean(np.argmax(predict(onnx.load(str(MODEL)), images), axis=1) == labels))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("digits-data")
    for name, content in data_files().items():
        (folder / name).write_bytes(content)
    return folder


@pytest.fixture(scope="module")
def pixel6_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    set_console(Console(quiet=True, stream=sys.stderr))
    out = tmp_path_factory.mktemp("digits-pixel6") / "digits.stretch"
    compile_model(MODEL, out, CompileOptions(target="pixel6"))
    return out


def test_verify_reports_accuracy_of_float_model_and_bundle(data: Path, pixel6_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels = load_split("heldout")
    report = verify_bundle(pixel6_bundle, MODEL, inputs=[{"image": x[None]} for x in images], labels=labels)
    (acc,) = report.accuracy
    assert (acc.output, acc.samples, acc.classes) == ("logits", 449, 10)
    assert acc.float_top1 == pytest.approx(_float_top1("heldout"))
    assert acc.bundle_top1 == acc.float_top1 and acc.agreement == 1.0  # a float bundle
    assert main(["verify", str(pixel6_bundle), str(MODEL), "--input-dir", str(data / "heldout.npz")]) == 0
    out = capsys.readouterr().out
    assert f"top-1 accuracy logits: float {100 * acc.float_top1:.2f}%, bundle {100 * acc.bundle_top1:.2f}%" in out
    assert "on 449 labelled sample(s)" in out


def test_verify_without_labels_reports_no_accuracy(pixel6_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(pixel6_bundle), str(MODEL)]) == 0
    assert "top-1 accuracy" not in capsys.readouterr().out


def test_a_label_that_is_not_a_class_is_a_bad_calibration_error(tmp_path: Path, pixel6_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, _ = load_split("calib")
    np.savez(tmp_path / "bad.npz", image=images[:3], labels=np.array([1, 10, 2]))
    assert main(["verify", str(pixel6_bundle), str(MODEL), "--input-dir", str(tmp_path / "bad.npz")]) == 3
    err = capsys.readouterr().err
    assert f"error[bad-calibration]: {tmp_path / 'bad.npz'}: label 10 is not a class of output 'logits', which has 10 classes" in err


def test_placement_report_has_accuracy_on_labelled_calib_data(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle, js, page = tmp_path / "b.stretch", tmp_path / "r.json", tmp_path / "r.html"
    # --precision float: no accuracy guard, so no sample is held out of calibration (auto holds 20% out to measure on)
    argv = ["compile", str(MODEL), "-t", "mi9", "--place", "s1.b1=dsp", "--calib", str(data / "calib.npz"), "-o", str(bundle), "--precision", "float"]
    assert main([*argv, "--report", str(js), "--report", str(page)]) == 0
    acc = json.loads(js.read_text())["accuracy"]
    assert (acc["samples"], acc["held_out"], acc["source"]) == (225, False, str(data / "calib.npz"))
    (out,) = acc["outputs"]
    assert out["output"] == "logits" and out["float_top1"] == pytest.approx(_float_top1("calib"))
    assert 0.9 <= out["agreement"] <= 1.0 and abs(out["bundle_top1"] - out["float_top1"]) <= 0.02  # s1.b1 is int8 on the DSP
    html = page.read_text()
    assert "<table id='accuracy'>" in html and f"{100 * out['bundle_top1']:.2f}%" in html
    assert "accuracy on 225 labelled --calib sample(s)" in capsys.readouterr().out

    # with --min-sqnr, calibration holds the last 20% out, and accuracy is measured on those
    assert main([*argv, "--report", str(js), "--min-sqnr", "20"]) == 0
    acc = json.loads(js.read_text())["accuracy"]
    assert (acc["samples"], acc["held_out"]) == (45, True)
    assert acc["outputs"][0]["float_top1"] == pytest.approx(_float_top1("calib", last=45))


def test_placement_report_without_labels_has_no_accuracy(tmp_path: Path, data: Path) -> None:
    images, _ = load_split("calib")
    np.save(tmp_path / "calib.npy", images)
    js = tmp_path / "r.json"
    argv = ["compile", str(MODEL), "-t", "mi9", "--place", "s1.b1=dsp", "--calib", str(tmp_path / "calib.npy"), "-o", str(tmp_path / "b.stretch")]
    assert main([*argv, "--report", str(js), "-q"]) == 0
    assert "accuracy" not in json.loads(js.read_text())
