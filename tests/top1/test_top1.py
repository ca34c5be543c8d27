"""Top-1 counting: float and bundle accuracy against labels, agreement, classifier outputs only, bad labels."""

from __future__ import annotations

import numpy as np
import pytest

from stretchc.top1 import Top1, is_classifier
from stretchc.errors import StretchError


def _onehot(k: int, classes: int = 4) -> np.ndarray:
    out = np.zeros((1, classes), np.float32)
    out[0, k] = 1.0
    return out


def test_counts_float_bundle_and_agreement() -> None:
    labels = np.array([0, 1, 2, 3])
    top1 = Top1(labels)
    for ref, got in ((0, 0), (1, 2), (3, 2), (3, 3)):  # float right on 0, 1, 3; bundle right on 0, 2, 3
        top1.add({"logits": _onehot(ref), "features": np.ones((1, 2, 3, 3))}, {"logits": _onehot(got), "features": np.ones((1, 2, 3, 3))})
    (acc,) = top1.results()
    assert (acc.output, acc.classes, acc.samples) == ("logits", 4, 4)
    assert (acc.float_top1, acc.bundle_top1, acc.agreement) == (0.75, 0.75, 0.5)
    assert "float 75.00%, bundle 75.00% (+0.00 points), agreement 50.00%, on 4 labelled sample(s)" in acc.line()


def test_every_classifier_output_in_name_order() -> None:
    top1 = Top1(np.array([1]))
    top1.add({"b": _onehot(1), "a": _onehot(0, 3)}, {"b": _onehot(1), "a": _onehot(1, 3)})
    assert [(a.output, a.float_top1, a.bundle_top1) for a in top1.results()] == [("a", 0.0, 1.0), ("b", 1.0, 1.0)]


def test_classifier_shape() -> None:
    assert is_classifier(np.zeros((1, 10)))
    assert not is_classifier(np.zeros((1, 1)))
    assert not is_classifier(np.zeros((1, 10, 2)))
    assert not is_classifier(np.zeros((2, 10)))


def test_a_label_that_is_not_a_class_is_bad_data() -> None:
    top1 = Top1(np.array([4]), source="data.npz")
    top1.add({"logits": _onehot(0)}, {"logits": _onehot(0)})
    with pytest.raises(StretchError) as exc:
        top1.results()
    assert exc.value.code == "bad-calibration" and exc.value.location.file == "data.npz"
    assert "label 4 is not a class of output 'logits', which has 4 classes" in exc.value.message
