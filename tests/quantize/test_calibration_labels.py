"""Labelled calibration data: a .npz with a `labels` array; labels stay aligned with samples when held out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stretchc.errors import StretchError
from stretchc.quantize.calibration_data import holdout_count, load_calibration_data, split_holdout

INPUTS = [("input", (1, 3, 4, 4), "float32")]


def _npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


def _images(n: int) -> np.ndarray:
    # sample k is filled with the value k, so a sample says which one it is
    return np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 3, 4, 4)).copy()


def test_labels_are_read_with_their_samples(tmp_path: Path) -> None:
    cal = load_calibration_data(_npz(tmp_path / "a.npz", input=_images(6), labels=np.array([3, 1, 4, 1, 5, 9], np.int32)), INPUTS)
    assert len(cal.samples) == 6
    assert cal.labels is not None and cal.labels.dtype == np.int64 and cal.labels.tolist() == [3, 1, 4, 1, 5, 9]


def test_a_single_unnamed_array_with_labels(tmp_path: Path) -> None:
    cal = load_calibration_data(_npz(tmp_path / "a.npz", images=_images(3), labels=np.array([0, 1, 2])), INPUTS)
    assert len(cal.samples) == 3 and cal.labels is not None and cal.labels.tolist() == [0, 1, 2]


def test_no_labels(tmp_path: Path) -> None:
    assert load_calibration_data(_npz(tmp_path / "a.npz", input=_images(2)), INPUTS).labels is None
    np.save(tmp_path / "a.npy", _images(2))
    assert load_calibration_data(str(tmp_path / "a.npy"), INPUTS).labels is None
    assert load_calibration_data("random", INPUTS).labels is None


def test_an_input_named_labels_is_an_input(tmp_path: Path) -> None:
    inputs = [("labels", (1, 3, 4, 4), "float32")]
    cal = load_calibration_data(_npz(tmp_path / "a.npz", labels=_images(2)), inputs)
    assert len(cal.samples) == 2 and cal.labels is None


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0.0, 1.0, 2.0]), "must be a 1-D integer array"),
        (np.array([[0], [1], [2]]), "must be a 1-D integer array"),
        (np.array([0, 1]), "holds 2 label(s) for 3 sample(s)"),
        (np.array([0, -1, 2]), "negative class index"),
    ],
)
def test_bad_labels_name_the_file(tmp_path: Path, labels: np.ndarray, message: str) -> None:
    path = _npz(tmp_path / "bad.npz", input=_images(3), labels=labels)
    with pytest.raises(StretchError) as exc:
        load_calibration_data(path, INPUTS)
    assert exc.value.code == "bad-calibration" and exc.value.location.file == path and message in exc.value.message


def test_holdout_split_keeps_labels_aligned(tmp_path: Path) -> None:
    labels = np.array([7, 0, 5, 2, 9, 1, 3, 8, 4, 6])
    cal = load_calibration_data(_npz(tmp_path / "a.npz", input=_images(10), labels=labels), INPUTS)
    assert cal.labels is not None
    n = holdout_count(len(cal.samples), None)
    (kept, held), (kept_labels, held_labels) = split_holdout(cal.samples, n), split_holdout(cal.labels, n)
    assert len(held) == len(held_labels) == 2 and len(kept) == len(kept_labels) == 8
    for samples, sample_labels in ((kept, kept_labels), (held, held_labels)):
        for s, label in zip(samples, sample_labels):
            assert label == labels[int(s["input"].flat[0])]
