"""Calibration data for quantize-partitions: `--calib PATH` read into per-sample model feeds (ONNX layout).

PATH is one of
- a folder of images (JPEG/PNG, read with Pillow): each is converted to RGB, resized to the model's input
  size (or `size=` of `--preprocess`), scaled to [0, 1], normalized `(x - mean) / std` per channel and laid
  out NCHW, for a model with one [1, 3, H, W] float input;
- a `.npy` array of N samples (N x the input's shape without its batch dimension, or exactly the input's
  shape for one sample), for a model with one input;
- a `.npz` archive with one such array per input name (or a single array for a one-input model), and
  optionally labels: under the key `labels` (reserved unless the model has an input of that name), a 1-D
  integer array with the class index (>= 0) of every sample, in sample order (`CalibrationSet.labels`:
  top-1 accuracy in `verify` and the placement report, stretchc/accuracy.py);
- the word `random`: uniform [0, 1) noise (the caller warns that accuracy will suffer).

Anything wrong (empty folder, unreadable image, wrong shape or dtype) is StretchError("bad-calibration")
naming the file, raised before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from stretchc.errors import StretchError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
RANDOM = "random"
DEFAULT_RANDOM_SAMPLES = 32
DEFAULT_HOLDOUT_FRACTION = 0.2  # share of a calibration data set held out for --min-sqnr (at least one sample)
LABELS_KEY = "labels"  # reserved .npz key: the class index of every sample

T = TypeVar("T")


@dataclass(frozen=True)
class Preprocess:
    """Image preprocessing: resize to `size` (None: the model's input size), /255, (x - mean) / std."""

    size: tuple[int, int] | None = None
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)


def parse_preprocess(spec: Any) -> Preprocess:
    """`size=224,mean=0.485:0.456:0.406,std=0.229:0.224:0.225` (or the same keys as a dict, from stretchc.toml)."""
    if spec is None or spec == "":
        return Preprocess()
    items: dict[str, Any]
    if isinstance(spec, dict):
        items = dict(spec)
    else:
        items = {}
        for part in (p.strip() for p in str(spec).split(",") if p.strip()):
            key, eq, val = part.partition("=")
            if not eq:
                raise StretchError("usage", f"--preprocess item {part!r}: expected KEY=VALUE (keys: size, mean, std)")
            items[key.strip()] = val.strip()
    unknown = set(items) - {"size", "mean", "std"}
    if unknown:
        raise StretchError("usage", f"--preprocess: unknown key(s) {', '.join(sorted(unknown))} (keys: size, mean, std)")

    def floats(val: Any) -> tuple[float, ...]:
        if isinstance(val, (list, tuple)):
            return tuple(float(x) for x in val)
        return tuple(float(x) for x in str(val).replace(":", " ").split())

    try:
        size = None
        if "size" in items:
            s = items["size"]
            dims = [int(x) for x in (s if isinstance(s, (list, tuple)) else str(s).lower().replace("x", " ").replace(":", " ").split())]
            size = (dims[0], dims[-1]) if dims else None
        mean = floats(items.get("mean", "0:0:0"))
        std = floats(items.get("std", "1:1:1"))
    except ValueError as exc:
        raise StretchError("usage", f"--preprocess {spec!r}: {exc}") from None
    if any(s == 0 for s in std):
        raise StretchError("usage", f"--preprocess {spec!r}: std must not be 0")
    return Preprocess(size=size, mean=mean, std=std)


@dataclass
class CalibrationSet:
    """Samples as feeds {input name: array with batch 1, ONNX layout}; `source` names where they came from.

    `labels`: the class index of every sample (int64, aligned with `samples`), when the data set has them.
    """

    samples: list[dict[str, np.ndarray]] = field(default_factory=list)
    source: str = ""
    random: bool = False
    labels: np.ndarray | None = None


def _bad(message: str, file: str | Path) -> StretchError:
    return StretchError("bad-calibration", message, file=str(file))


def _load_images(folder: Path, inputs: list[tuple[str, tuple[int, ...], str]], pre: Preprocess) -> list[dict[str, np.ndarray]]:
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise _bad("the calibration folder holds no JPEG or PNG images", folder)
    if len(inputs) != 1:
        raise _bad(f"image calibration needs a model with one input; the model has {len(inputs)} (give a .npz)", folder)
    name, shape, _ = inputs[0]
    if len(shape) != 4 or shape[1] not in (1, 3):
        raise _bad(f"image calibration needs an input [1, 1|3, H, W]; input {name!r} is {list(shape)}", folder)
    channels, height, width = shape[1], shape[2], shape[3]
    size = pre.size or (height, width)
    if size != (height, width):
        raise _bad(f"--preprocess size {size[0]}x{size[1]} does not match the model input {height}x{width}", folder)
    mean = np.array(pre.mean if len(pre.mean) == channels else pre.mean[:1] * channels, dtype=np.float32).reshape(channels, 1, 1)
    std = np.array(pre.std if len(pre.std) == channels else pre.std[:1] * channels, dtype=np.float32).reshape(channels, 1, 1)
    samples = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert("RGB" if channels == 3 else "L").resize((width, height), Image.BILINEAR)
                arr = np.asarray(im, dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise _bad(f"unreadable image ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", f) from None
        arr = arr.reshape(height, width, channels).transpose(2, 0, 1)
        samples.append({name: ((arr - mean) / std).astype(np.float32)[None]})
    return samples


def _split_array(arr: Any, name: str, shape: tuple[int, ...], file: Path) -> list[np.ndarray]:
    if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
        dtype = getattr(arr, "dtype", type(arr).__name__)
        raise _bad(f"array for input {name!r} has dtype {dtype}; expected float32", file)
    if tuple(arr.shape) == tuple(shape):
        arr = arr[None] if shape and shape[0] == 1 else arr.reshape((1, *shape))
    if tuple(arr.shape[1:]) == tuple(shape[1:]) and shape and shape[0] == 1:
        samples = [arr[i : i + 1] for i in range(arr.shape[0])]
    elif tuple(arr.shape[1:]) == tuple(shape):
        samples = [arr[i] for i in range(arr.shape[0])]
    else:
        raise _bad(f"array for input {name!r} has shape {list(arr.shape)}; expected N x {list(shape[1:])} (input shape {list(shape)})", file)
    if not samples:
        raise _bad(f"array for input {name!r} holds no samples", file)
    return [s.astype(np.float32) for s in samples]


def _labels(arr: np.ndarray, count: int, file: Path) -> np.ndarray:
    """The `labels` array checked against the samples: 1-D, integer, >= 0, one per sample."""
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise _bad(f"{LABELS_KEY!r} must be a 1-D integer array (one class index per sample); it is {arr.dtype} {list(arr.shape)}", file)
    if len(arr) != count:
        raise _bad(f"{LABELS_KEY!r} holds {len(arr)} label(s) for {count} sample(s)", file)
    if arr.size and int(arr.min()) < 0:
        raise _bad(f"{LABELS_KEY!r} holds a negative class index ({int(arr.min())})", file)
    return arr.astype(np.int64)


def _load_arrays(path: Path, inputs: list[tuple[str, tuple[int, ...], str]]) -> tuple[list[dict[str, np.ndarray]], np.ndarray | None]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _bad(f"not a readable {path.suffix} file ({exc})", path) from None
    labels = None
    if isinstance(loaded, np.ndarray):
        if len(inputs) != 1:
            raise _bad(f"a .npy holds one array; the model has {len(inputs)} inputs (give a .npz keyed by input name)", path)
        per_input = {inputs[0][0]: _split_array(loaded, inputs[0][0], inputs[0][1], path)}
    else:
        with loaded:
            has_labels = LABELS_KEY in loaded.files and LABELS_KEY not in {n for n, _, _ in inputs}
            keys = [k for k in loaded.files if not (has_labels and k == LABELS_KEY)]
            if has_labels:
                labels = loaded[LABELS_KEY]
            if len(inputs) == 1 and len(keys) == 1:
                arrays = {inputs[0][0]: loaded[keys[0]]}
            else:
                missing = [n for n, _, _ in inputs if n not in keys]
                if missing:
                    raise _bad(f"the archive lacks input(s) {', '.join(missing)} (it has {', '.join(keys) or 'nothing'})", path)
                arrays = {n: loaded[n] for n, _, _ in inputs}
        per_input = {n: _split_array(arrays[n], n, s, path) for n, s, _ in inputs}
    counts = {len(v) for v in per_input.values()}
    if len(counts) != 1:
        raise _bad("the inputs' arrays hold different numbers of samples", path)
    count = counts.pop()
    return [{n: per_input[n][k] for n in per_input} for k in range(count)], None if labels is None else _labels(labels, count, path)


def load_calibration(
    spec: str | None,
    inputs: list[tuple[str, tuple[int, ...], str]],
    *,
    preprocess: Any = None,
    random_samples: int = DEFAULT_RANDOM_SAMPLES,
    seed: int = 0,
) -> CalibrationSet:
    """Read calibration data for a model whose inputs are (name, ONNX shape, dtype). See the module docstring."""
    if spec is None:
        raise StretchError("bad-calibration", "DSP partitions need calibration data: pass --calib DIR|FILE.npy|FILE.npz (or --calib random, which costs accuracy)")
    if spec == RANDOM:
        rng = np.random.default_rng(seed)
        samples = [{n: rng.random(s).astype(np.float32) for n, s, _ in inputs} for _ in range(random_samples)]
        return CalibrationSet(samples, source=RANDOM, random=True)
    path = Path(spec)
    if not path.exists():
        raise _bad("calibration data does not exist", path)
    for name, _, dtype in inputs:
        if dtype != "float32":
            raise _bad(f"input {name!r} is {dtype}; calibration supports float32 inputs only", path)
    labels = None
    if path.is_dir():
        samples = _load_images(path, inputs, parse_preprocess(preprocess))
    elif path.suffix.lower() in (".npy", ".npz"):
        samples, labels = _load_arrays(path, inputs)
    else:
        raise _bad("calibration data must be a folder of images, a .npy or a .npz file", path)
    return CalibrationSet(samples, source=str(path), labels=labels)


def holdout_count(total: int, requested: int | None, *, source: str = "") -> int:
    """How many of `total` calibration samples to hold out: `requested`, or 20% (at least 1) when None.

    At least one sample must remain for calibration (StretchError("bad-calibration") otherwise).
    """
    n = max(1, round(total * DEFAULT_HOLDOUT_FRACTION)) if requested is None else int(requested)
    if n < 0:
        raise StretchError("usage", f"--calib-holdout {n}: must be >= 0")
    if n >= total:
        raise StretchError(
            "bad-calibration",
            f"holding out {n} of {total} calibration sample(s) for --min-sqnr leaves none to calibrate; give more samples or a smaller --calib-holdout",
            file=source or None,
        )
    return n


def split_holdout(samples: Sequence[T], n: int) -> tuple[list[T], list[T]]:
    """(calibration samples, held-out samples): the last `n` samples (in the data set's order) are held out.

    Split the labels with the same call to keep them aligned with their samples.
    """
    if n <= 0:
        return list(samples), []
    return list(samples[:-n]), list(samples[-n:])
