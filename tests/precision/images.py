"""Real-looking test inputs: crops of the two photographs scikit-learn ships (sklearn.datasets.load_sample_images,
no download), at random positions, scales and mirrorings, resized to the model's input: NCHW float32 in [0, 1]."""

from __future__ import annotations

import numpy as np
from PIL import Image


def natural_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """`n` seeded crops of the sample photographs, [n, 3, size, size] float32 in [0, 1]."""
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(img) for img in load_sample_images().images]
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, size, size), dtype=np.float32)
    for k in range(n):
        photo = photos[int(rng.integers(len(photos)))]
        w, h = photo.size
        side = int(rng.integers(min(w, h) // 4, min(w, h) + 1))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = photo.crop((x, y, x + side, y + side)).resize((size, size), Image.BILINEAR)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        out[k] = np.asarray(crop, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return out
