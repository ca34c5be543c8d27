"""Real-looking inputs for PP-OCR's models and the other trained networks (tests/external/networks.py; shared by
tests/external/test_trained_models.py and bench/trained_quality.py): where a wheel's files are, plain crops of
scikit-learn's two sample photos (photo_crops) and crops with words drawn on them in Pillow's bundled font (crops),
normalized as RapidOCR normalizes ((x / 255 - 0.5) / 0.5) or with any mean and std (normalized). No network.

The models ship as ONNX in wheels (installed without their dependencies: `pip install --no-deps`, see
requirements.lock); a package is found without importing it (they import cv2), see tests/external/networks.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

WORDS = ["stretchc", "TOTAL 42.50", "Hello world", "Pixel 6", "Snapdragon", "parallel"]


def package_dir(package: str) -> Path | None:
    """The folder of an installed top-level package, found without importing it (the wheels that ship trained models
    import cv2 or onnxruntime wrappers that are not installed), or None when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def sample_photos() -> list[Any]:
    """scikit-learn's two bundled sample photographs (china.jpg, flower.jpg; 427 x 640 RGB) as PIL images."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    return [Image.fromarray(p) for p in load_sample_images().images]


def photo_crop(photo: Any, height: int, width: int, rng: np.random.Generator) -> Any:
    """A random crop of `photo` with the aspect ratio of height x width (30-100 % of the largest such crop), resized
    (bilinear) to height x width. Draws three numbers from `rng`, always in the same order (seeded data stays put)."""
    from PIL import Image

    w = int(min(photo.width, photo.height * width / height) * rng.uniform(0.3, 1.0))
    h = max(1, int(w * height / width))
    x0, y0 = int(rng.integers(0, photo.width - w + 1)), int(rng.integers(0, photo.height - h + 1))
    return photo.crop((x0, y0, x0 + w, y0 + h)).resize((width, height), Image.BILINEAR)


def photo_crops(height: int, width: int, count: int, seed: int) -> list[Any]:
    """`count` plain crops (PIL images) of the sample photos at height x width, alternating between the two photos.
    Deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    photos = sample_photos()
    return [photo_crop(photos[k % len(photos)], height, width, rng) for k in range(count)]


def crops(height: int, width: int, count: int, seed: int) -> list[object]:
    """`count` crops (PIL images) of the sample photos at height x width, each with a word or a few drawn on it:
    one text line filling 60 % of the height for line-sized inputs (height <= 64: the classifier and the
    recogniser), three of random sizes for page-sized ones (the detector). Deterministic in `seed`. Each image's
    `info["words"]` lists the words drawn on it, in drawing order."""
    from PIL import ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    photos = sample_photos()
    out = []
    for k in range(count):
        crop = photo_crop(photos[k % len(photos)], height, width, rng)
        draw = ImageDraw.Draw(crop)
        crop.info["words"] = []
        for _ in range(1 if height <= 64 else 3):
            size = int(height * 0.6) if height <= 64 else int(rng.integers(14, 40))
            xy = (int(rng.integers(0, width // 4)), int(rng.integers(0, max(1, height - size))))
            word = WORDS[int(rng.integers(len(WORDS)))]
            crop.info["words"].append(word)
            draw.text(xy, word, fill=(255, 255, 255) if rng.random() < 0.5 else (0, 0, 0), font=ImageFont.load_default(size=size))
        out.append(crop)
    return out


def normalized(images: list[object], mean: tuple[float, ...] = (0.5,), std: tuple[float, ...] = (0.5,)) -> np.ndarray:
    """The RGB images as one float32 NCHW batch, scaled to [0, 1] and then (x - mean) / std per channel (one value or
    one per channel), as `--preprocess size=HxW,mean=..,std=..` preprocesses a calibration folder. The defaults are
    RapidOCR's normalization: (x / 255 - 0.5) / 0.5, in [-1, 1]."""
    batch = np.stack([np.asarray(c, np.float32).transpose(2, 0, 1) / 255.0 for c in images])
    m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    return ((batch - m) / s).astype(np.float32)


def write_calibration(folder: Path, images: list[object]) -> Path:
    """Save the images as PNGs into `folder` (created) for `--calib FOLDER --preprocess size=HxW,mean=0.5,std=0.5`."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, crop in enumerate(images):
        crop.save(folder / f"crop{i:02d}.png")  # type: ignore[attr-defined]
    return folder
