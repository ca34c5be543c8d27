"""The trained example: the committed model is the code's network with trained weights, classifies the
held-out digits well in ONNX Runtime, has the branches find-branches should find; the data split is fixed
and its files are deterministic; a short seeded training run gives a working, repeatable model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from stretchc.cli import main
from stretchc.console import Console, set_console
from stretchc.digits.data import data_files, load_split, split_mask
from stretchc.digits.export import heldout_top1, predict, trained_model
from stretchc.digits.model import INPUT, OUTPUT, digits_model
from stretchc.driver import CompileOptions, compile_model
from stretchc.frontend.module import onnx_inputs
from stretchc.quantize.calibration_data import load_calibration_data

from tests.conftest import REPO

MODEL = REPO / "examples" / "digits.onnx"


def test_committed_model_is_the_networks_architecture() -> None:
    committed = onnx.load(str(MODEL))
    onnx.checker.check_model(committed, full_check=True)
    weights = {i.name: numpy_helper.to_array(i) for i in committed.graph.initializer}
    rebuilt = digits_model(weights)
    assert rebuilt.graph.SerializeToString() == committed.graph.SerializeToString()
    assert [i.name for i in committed.graph.input] == [INPUT] and [o.name for o in committed.graph.output] == [OUTPUT]
    assert MODEL.stat().st_size < 200_000


def test_committed_model_classifies_the_heldout_digits() -> None:
    accuracy, samples = heldout_top1(onnx.load(str(MODEL)))
    assert samples == 449
    assert accuracy >= 0.97  # 99.55% when trained; chance is 10%


def test_find_branches_finds_the_stages(tmp_path: Path) -> None:
    set_console(Console(quiet=True, stream=sys.stderr))
    result = compile_model(MODEL, tmp_path / "digits.stretch", CompileOptions(target="pixel6"))
    assert [r.name for r in result.module.regions] == ["stem", "s1.b0", "s1.b1", "s1.b2", "s1.join", "s2.b0", "s2.b1", "s2.join", "head"]
    convs: dict[str, int] = {}
    for n in result.module.graph.nodes:
        if n.kind == "CONV_2D":
            convs[n.region] = convs.get(n.region, 0) + 1
    assert convs == {"stem": 1, "s1.b0": 2, "s1.b1": 2, "s1.b2": 2, "s2.b0": 2, "s2.b1": 2}


def test_split_is_fixed_disjoint_and_complete() -> None:
    masks = split_mask(1797)
    assert {k: int(m.sum()) for k, m in masks.items()} == {"train": 1123, "calib": 225, "heldout": 449}
    assert np.array_equal(masks["train"].astype(int) + masks["calib"] + masks["heldout"], np.ones(1797, int))
    images, labels = load_split("heldout")
    assert images.shape == (449, 1, 8, 8) and images.dtype == np.float32 and labels.dtype == np.int64
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert sorted(set(labels.tolist())) == list(range(10))


def test_data_files_are_deterministic_labelled_calibration_data(tmp_path: Path) -> None:
    files = data_files()
    assert files == data_files()
    model = onnx.load(str(MODEL))
    for name, split in (("calib.npz", "calib"), ("heldout.npz", "heldout")):
        (tmp_path / name).write_bytes(files[name])
        cal = load_calibration_data(str(tmp_path / name), onnx_inputs(model))
        images, labels = load_split(split)
        assert cal.labels is not None and np.array_equal(cal.labels, labels)
        assert len(cal.samples) == len(labels)
        k = len(labels) // 2  # labels stay aligned with their samples
        assert np.array_equal(cal.samples[k][INPUT], images[k : k + 1])


def test_example_command_writes_the_data(tmp_path: Path) -> None:
    assert main(["example", "digits", "--data", str(tmp_path / "d"), "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["calib.npz", "heldout.npz"]
    assert (tmp_path / "d" / "heldout.npz").read_bytes() == data_files()["heldout.npz"]


def test_example_command_default_is_branchy(tmp_path: Path) -> None:
    from stretchc.examples import example_model

    assert main(["example", "-o", str(tmp_path / "b.onnx"), "-q"]) == 0
    assert (tmp_path / "b.onnx").read_bytes() == example_model().SerializeToString()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["example", "branchy", "--data", "DIR"], "only the digits example has data"),
        (["example", "digits"], "give -o FILE.onnx and/or --data DIR"),
        (["example"], "give -o FILE.onnx"),
    ],
)
def test_example_command_usage_errors(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(tmp_path / a) if a == "DIR" else a for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "DIR").exists()


@pytest.fixture(scope="module")
def short_run() -> tuple[onnx.ModelProto, float]:
    return trained_model(epochs=2, seed=1)


@pytest.mark.slow  # trains the digits classifier with Keras (about 6 s)
def test_short_seeded_training_gives_a_working_model(short_run: tuple[onnx.ModelProto, float]) -> None:
    model, accuracy = short_run  # trained_model checked ONNX Runtime against Keras on training images
    onnx.checker.check_model(model, full_check=True)
    assert accuracy >= 0.85
    images, labels = load_split("heldout")
    assert np.mean(np.argmax(predict(model, images[:100]), axis=1) == labels[:100]) >= 0.8
    assert "2 epochs, seed 1" in model.doc_string


@pytest.mark.slow  # trains the digits classifier with Keras again (about 6 s)
def test_training_is_repeatable(short_run: tuple[onnx.ModelProto, float]) -> None:
    again, _ = trained_model(epochs=2, seed=1)
    assert again.SerializeToString() == short_run[0].SerializeToString()
