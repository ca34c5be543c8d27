"""Training the trained example (`stretchc example digits`): Keras on the digits training split, seeded.

Adam (learning rate 3e-3, cosine decay), batch 32, 60 epochs, cross-entropy on the logits, on the 1123
training samples of `stretchc.digits.data` (the calibration and held-out samples are never seen). Keras'
random seed and TensorFlow's op determinism make a run repeatable on one machine (another CPU may round
differently). About half a minute on 2 cores. The Keras layers are built by the same walk as the ONNX model
(`stretchc.digits.model.build`) and `train()` returns their weights under the ONNX initializer names, in
ONNX layouts (conv OIHW, fully connected [out, in]); batch norm uses ONNX's default epsilon.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stretchc.digits.data import load_split
from stretchc.digits.model import SIZE, build

EPOCHS = 60
BATCH = 32
LEARNING_RATE = 3e-3
SEED = 0
BN_EPSILON = 1e-5  # ONNX BatchNormalization's default, so the exported model computes the same
BN_MOMENTUM = 0.9


@dataclass(frozen=True)
class Trained:
    weights: dict[str, np.ndarray]  # ONNX initializer name -> value
    epochs: int
    seed: int
    train_accuracy: float  # top-1 on the training split, Keras inference mode
    logits: np.ndarray  # Keras logits of `probe` (to check the ONNX export against)
    probe: np.ndarray  # NCHW images


class _KerasLayers:
    """`Layers` as Keras layers (NHWC); remembers each layer's variables by ONNX name for the export."""

    def __init__(self, keras: Any) -> None:
        self.keras = keras
        self.convs: dict[str, tuple[Any, Any]] = {}
        self.fc: Any = None

    def conv(self, name: str, x: Any, cin: int, cout: int, k: int) -> Any:
        key = name.replace("/", "_")
        conv = self.keras.layers.Conv2D(cout, k, padding="same", use_bias=False, name=f"{key}_conv")
        bn = self.keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{key}_bn")
        self.convs[name] = (conv, bn)
        return self.keras.layers.ReLU(name=f"{key}_relu")(bn(conv(x)))

    def concat(self, name: str, xs: Sequence[Any]) -> Any:
        return self.keras.layers.Concatenate(axis=-1, name=name.replace("/", "_"))(list(xs))

    def max_pool(self, name: str, x: Any) -> Any:
        return self.keras.layers.MaxPooling2D(2, name=name.replace("/", "_"))(x)

    def head(self, x: Any, channels: int, classes: int) -> Any:
        self.fc = self.keras.layers.Dense(classes, name="head_fc")
        return self.fc(self.keras.layers.GlobalAveragePooling2D(name="head_gap")(x))

    def onnx_weights(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name, (conv, bn) in self.convs.items():
            (kernel,) = conv.get_weights()
            out[f"{name}.w"] = kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW
            gamma, beta, mean, var = bn.get_weights()
            out.update({f"{name}.bn.scale": gamma, f"{name}.bn.bias": beta, f"{name}.bn.mean": mean, f"{name}.bn.var": var})
        kernel, bias = self.fc.get_weights()
        out["head.fc.w"] = kernel.T  # [in, out] -> [out, in] (Gemm transB=1)
        out["head.fc.b"] = bias
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def train(*, epochs: int = EPOCHS, seed: int = SEED, progress: Callable[[int, int], None] | None = None) -> Trained:
    """Train the network on the training split; `progress(epoch, epochs)` after every epoch."""
    # lazy: Keras and TensorFlow take seconds to import; only training needs them
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    images, labels = load_split("train")
    x = images.transpose(0, 2, 3, 1)  # NCHW -> NHWC
    steps = epochs * -(-len(x) // BATCH)
    layers = _KerasLayers(keras)
    inp = keras.Input((SIZE, SIZE, 1), name="image")
    net = keras.Model(inp, build(layers, inp), name="digits")
    net.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=lambda e, _logs: progress(e + 1, epochs))] if progress else []
    net.fit(x, labels, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0, callbacks=callbacks)
    logits = np.asarray(net.predict(x, batch_size=256, verbose=0))
    probe = images[:64]
    return Trained(
        weights=layers.onnx_weights(),
        epochs=epochs,
        seed=seed,
        train_accuracy=float(np.mean(np.argmax(logits, axis=1) == labels)),
        logits=logits[:64],
        probe=probe,
    )
