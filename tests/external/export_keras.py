"""Export Keras Applications architectures as TF SavedModels: `python export_keras.py OUT_DIR NAME:SIZE ...`.

Each `keras.applications.<NAME>(weights=None, input_shape=(SIZE, SIZE, 3), classes=10,
classifier_activation=None)` (seeded random weights; logits, so a wrong bundle cannot hide behind a
saturated softmax) is written to `OUT_DIR/<NAME>` with `model.export(..., format="tf_saved_model")`.
Run in its own process: it imports TensorFlow and Keras, which the test process keeps out of its memory.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv: list[str]) -> None:
    import keras

    out_dir, specs = argv[0], argv[1:]
    for spec in specs:
        name, size = spec.split(":")
        keras.utils.set_random_seed(0)
        model = getattr(keras.applications, name)(
            weights=None, input_shape=(int(size), int(size), 3), classes=10, classifier_activation=None
        )
        model.export(os.path.join(out_dir, name), format="tf_saved_model", verbose=False)


if __name__ == "__main__":
    main(sys.argv[1:])
