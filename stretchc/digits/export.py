"""The trained example end to end: train, export as ONNX with the trained weights, check the export.

The export is checked twice before anyone sees it: the ONNX checker (in `digits_model`), then ONNX Runtime
must give Keras' logits on training images (so the two networks really are one); its top-1 accuracy on the
held-out split is measured and written into the model's doc string.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

from stretchc.digits.data import load_split
from stretchc.digits.model import INPUT, OUTPUT, digits_model
from stretchc.digits.train import EPOCHS, SEED, train
from stretchc.errors import StretchError

EXPORT_RTOL = 1e-3  # ONNX Runtime vs Keras logits, relative to max|logits| (float32 rounding of the same math)


def predict(model: onnx.ModelProto, images: np.ndarray) -> np.ndarray:
    """Logits [N, 10] of `images` [N, 1, 8, 8] in ONNX Runtime (the model takes one image at a time)."""
    import onnxruntime as ort  # lazy: onnxruntime's native library, loaded only to export

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([OUTPUT], {INPUT: img[None]})[0] for img in images])


def heldout_top1(model: onnx.ModelProto) -> tuple[float, int]:
    """(top-1 accuracy, samples) of `model` on the held-out split, in ONNX Runtime."""
    images, labels = load_split("heldout")
    return float(np.mean(np.argmax(predict(model, images), axis=1) == labels)), len(labels)


def trained_model(*, epochs: int = EPOCHS, seed: int = SEED, progress: Callable[[int, int], None] | None = None) -> tuple[onnx.ModelProto, float]:
    """(the trained, checked ONNX model, its held-out top-1 accuracy)."""
    trained = train(epochs=epochs, seed=seed, progress=progress)
    model = digits_model(trained.weights)
    got = predict(model, trained.probe)
    err = float(np.max(np.abs(got - trained.logits)))
    if err > EXPORT_RTOL * float(np.max(np.abs(trained.logits))):
        raise StretchError("internal", f"the exported digits model differs from the Keras one it was trained as (max|logit error| {err:.3g})")
    accuracy, samples = heldout_top1(model)
    model.doc_string = (
        f"stretchc trained example: a branched CNN for scikit-learn's 8x8 digits, trained by `stretchc example digits` "
        f"({epochs} epochs, seed {seed}) on the {len(load_split('train')[1])}-sample training split; "
        f"held-out top-1 {100 * accuracy:.2f}% ({samples} samples, ONNX Runtime)"
    )
    return model, accuracy
