"""Real-looking inputs for PP-OCR's models (shared by tests/external/test_trained_models.py and
bench/trained_quality.py): where the models are, and crops of scikit-learn's two sample photos with words drawn
on them in Pillow's bundled font, normalized as RapidOCR normalizes ((x / 255 - 0.5) / 0.5). No network.

The models ship as ONNX in the rapidocr-onnxruntime wheel (installed without its dependencies:
`pip install --no-deps rapidocr-onnxruntime==1.4.4`); its package is found without importing it (it imports cv2).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

WORDS = ["stretchc", "TOTAL 42.50", "Hello world", "Pixel 6", "Snapdragon", "parallel"]
INSTALL_HINT = "pip install --no-deps rapidocr-onnxruntime==1.4.4"


def models_dir() -> Path | None:
    """The rapidocr-onnxruntime wheel's models/ folder, or None when the wheel is not installed."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "models"


def crops(height: int, width: int, count: int, seed: int) -> list[object]:
    """`count` crops (PIL images) of the sample photos at height x width, each with a word or a few drawn on it:
    one text line filling 60 % of the height for line-sized inputs (height <= 64: the classifier and the
    recogniser), three of random sizes for page-sized ones (the detector). Deterministic in `seed`. Each image's
    `info["words"]` lists the words drawn on it, in drawing order."""
    from PIL import Image, ImageDraw, ImageFont
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(p) for p in load_sample_images().images]
    out = []
    for k in range(count):
        photo = photos[k % len(photos)]
        w = int(min(photo.width, photo.height * width / height) * rng.uniform(0.3, 1.0))
        h = max(1, int(w * height / width))
        x0, y0 = int(rng.integers(0, photo.width - w + 1)), int(rng.integers(0, photo.height - h + 1))
        crop = photo.crop((x0, y0, x0 + w, y0 + h)).resize((width, height), Image.BILINEAR)
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


def normalized(images: list[object]) -> np.ndarray:
    """The images as one float32 NCHW batch, normalized as RapidOCR does: (x / 255 - 0.5) / 0.5, in [-1, 1]."""
    batch = np.stack([np.asarray(c, np.float32).transpose(2, 0, 1) / 255.0 for c in images])
    return ((batch - 0.5) / 0.5).astype(np.float32)


def write_calibration(folder: Path, images: list[object]) -> Path:
    """Save the images as PNGs into `folder` (created) for `--calib FOLDER --preprocess size=HxW,mean=0.5,std=0.5`."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, crop in enumerate(images):
        crop.save(folder / f"crop{i:02d}.png")  # type: ignore[attr-defined]
    return folder
