"""The trained example's data: scikit-learn's bundled handwritten digits, in a fixed three-way split.

1797 grayscale 8x8 images of the digits 0-9 from `sklearn.datasets.load_digits` (the data ships inside the
scikit-learn package: nothing is downloaded). Pixels (0..16) are scaled to [0, 1] and laid out NCHW,
[N, 1, 8, 8] float32; labels are int64 class indices. The split is fixed by sample index, with no random
numbers, so no library version can change it:

    heldout  index % 4 == 3           449 samples: accuracy is measured here, never trained or calibrated on
    calib    index % 8 == 1           225 samples: the `--calib` data for quantization
    train    every other index       1123 samples

`data_files()` gives `calib.npz` and `heldout.npz` in the labelled `--calib` format (the input array under
the model's input name `image`, the class of each sample under `labels`; see stretchc/quantize/calibration_data.py),
byte-identical on every run (`stretchc example digits --data DIR` writes them).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from stretchc.digits.model import INPUT
from stretchc.quantize.calibration_data import LABELS_KEY

SPLITS = ("train", "calib", "heldout")
DATA_FILES = {"calib": "calib.npz", "heldout": "heldout.npz"}


def split_mask(count: int) -> dict[str, np.ndarray]:
    """{split name: boolean mask over sample indices 0..count-1} (see the module docstring)."""
    index = np.arange(count)
    heldout = index % 4 == 3
    calib = index % 8 == 1
    return {"train": ~(heldout | calib), "calib": calib, "heldout": heldout}


def load_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images [N, 1, 8, 8] float32 in [0, 1], labels [N] int64) of one split, in data-set order."""
    from sklearn.datasets import load_digits  # lazy: scikit-learn takes a second to import

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
    digits = load_digits()
    images = (np.asarray(digits.images, dtype=np.float64) / 16.0).astype(np.float32)[:, None]
    labels = np.asarray(digits.target, dtype=np.int64)
    mask = split_mask(len(labels))[split]
    return images[mask], labels[mask]


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz archive of `arrays` with fixed entry timestamps (np.savez stamps the current time)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())
    return out.getvalue()


def data_files() -> dict[str, bytes]:
    """{file name: .npz bytes} of the calibration and held-out splits in the labelled `--calib` format."""
    out = {}
    for split, name in DATA_FILES.items():
        images, labels = load_split(split)
        out[name] = npz_bytes({INPUT: images, LABELS_KEY: labels})
    return out
