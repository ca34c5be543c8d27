"""Calibration data for quantize-partitions: `--calib PATH` read into per-sample model feeds (ONNX layout); and the
checks every user array gets (calibration data here, `--input` / `--const-input` in stretchc.api.read_array).

PATH is one of
- a folder of images (JPEG/PNG, read with Pillow), for a model with one [1, 1|3, H, W] float input: each image is
  read with its range kept and scaled to [0, 1] by that range (8-bit modes, `1`, `L`, `LA`, `P`, `RGB`, `RGBA`,
  `CMYK`, ...: Pillow's conversion to RGB or L, alpha dropped, /255; 16-bit grey `I;16`, `I;16B`, ...: /65535;
  32-bit integer `I`: as 16-bit, values outside 0..65535 refused; 32-bit float `F`: taken as [0, 1], values
  outside refused; a grey image feeds every channel), resized bilinearly to the input's H x W, normalized
  `(x - mean) / std` per channel and laid out NCHW;
- a `.npy` array of N samples (N x the input's shape without its batch dimension, or exactly the input's shape
  for one sample), for a model with one input; memory-mapped, so only the samples used are read;
- a `.npz` archive with one such array per input name (or a single array for a one-input model), and
  optionally labels: under the key `labels` (reserved unless the model has an input of that name), a 1-D
  integer array with the class index (>= 0) of every sample, in sample order (`CalibrationSet.labels`:
  top-1 accuracy in `verify` and the placement report, stretchc/top1.py); a member is read whole (a
  compressed zip member cannot be mapped);
- the word `random`: uniform [0, 1) noise (the caller warns that accuracy will suffer).

Preprocessing: `--preprocess size=S|HxW,mean=M[:M:M],std=S[:S:S]`, or stretchc.toml's `[preprocessing]` table
with the same keys (a number, a list of numbers or the same text). It is parsed and checked completely whatever
the data (`parse_preprocess`): known keys, each once; `size` one or two positive integers, equal to the model
input's H x W; `mean` and `std` one value (used for every channel) or one per channel of the model input (image
inputs have 1 or 3), finite, and std > 0. Errors are `usage` for `--preprocess`, `bad-config` (naming the file)
for the table. Preprocessing says how images become model input, so `--preprocess` with a .npy, a .npz or
`random` is a `usage` error: the user asked for a transformation that would not happen, and array samples are
fed as they are. The table is a project default for image data and is not used for other data: the command
line cannot switch it off, so refusing it would leave no way to calibrate such a project on arrays.

Resources: every path is checked before it is opened: `--calib` must be a folder or a regular file, every
image entry of a folder a regular file (symlinks followed): a FIFO would block the read forever, a device or
socket is no data. At most `MAX_SAMPLES` (500) samples are used: from a larger data set, `MAX_SAMPLES` evenly
spaced ones in its order (sorted names for a folder; names often group the classes, so the first 500 could be
one class), with a note (`calibration-capped`); the others are never decoded. TFLite's calibrator keeps a
min/max range per tensor, which gains little past a few hundred samples. Hold-out (`split_holdout`) takes the
last samples of those used.

Values (`find_bad_value`): every floating-point array reaching the calibrator (images after preprocessing) or
given with `--input` / `--const-input` is screened. NaN and infinities are refused, and so is a value far
outside the rest: per input across the data set, |x| above `OUTLIER_FACTOR` (10^4) times the
`OUTLIER_PERCENTILE`-th (99th) percentile of the nonzero |x| (the value at that rank, never interpolated: of
100 values or fewer, the second largest). Calibrated on such a range, int8 rounds at least 99 % of the input's
other values to zero (one step is then about 79 times that percentile), so no accurate int8 model can come of
it, and the value is almost always a mistake (uninitialized memory, wrong units, a sentinel). The percentile
ignores zeros (sparse data) and lets up to 1 % of the values (at least one) be outliers; the factor leaves
heavy-tailed data room (a Gaussian's maximum is about twice its 99th percentile). The percentile is estimated
on at most `REFERENCE_VALUES` evenly strided values. Integer and boolean arrays are not screened.

Anything wrong is StretchError("bad-calibration") (`bad-input-data` for --input / --const-input) naming the
file, and for values the sample and the position (its index in the sample's ONNX-layout array), raised before
anything is written.
"""

from __future__ import annotations

import math
import os
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np

from stretchc.console import get_console
from stretchc.errors import StretchError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGE_CHANNELS = (1, 3)  # the inputs image data can feed: grey or RGB
WIDE_MODES = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0, "I": 65535.0, "F": 1.0}  # Pillow mode -> full scale
RANDOM = "random"
DEFAULT_RANDOM_SAMPLES = 32
DEFAULT_HOLDOUT_FRACTION = 0.2  # share of a calibration data set held out for --min-sqnr (at least one sample)
LABELS_KEY = "labels"  # reserved .npz key: the class index of every sample
MAX_SAMPLES = 500  # samples used of a larger data set (see the module docstring)
OUTLIER_FACTOR = 1e4  # a value beyond this many times the percentile below is an outlier
OUTLIER_PERCENTILE = 99.0
REFERENCE_VALUES = 1 << 20  # at most this many values estimate the percentile
NPY_MAGIC = b"\x93NUMPY"
PREPROCESS_KEYS = ("size", "mean", "std")

T = TypeVar("T")


@dataclass(frozen=True)
class Preprocess:
    """Image preprocessing: resize to `size` (None: the model's input size), scale to [0, 1], then
    `(x - mean) / std` per channel (one value: every channel). `given`: the user gave some; `where` names the
    option in messages and `table` says it is stretchc.toml's table (`file`), for `error`."""

    size: tuple[int, int] | None = None
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    given: bool = False
    where: str = "--preprocess"
    table: bool = False
    file: str | None = None

    def error(self, message: str) -> StretchError:
        """A mistake in the preprocessing: `usage` on the command line, `bad-config` in stretchc.toml."""
        return StretchError("bad-config" if self.table else "usage", f"{self.where}: {message}", file=self.file)

    def per_channel(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) as float32 [channels, 1, 1] arrays; a count other than 1 or `channels` is an error."""
        out = []
        for key, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, channels):
                raise self.error(f"{key} has {len(values)} values; the model input has {channels} channel(s): give 1 value or {channels}")
            out.append(np.array(values * (channels // len(values)), np.float32).reshape(channels, 1, 1))
        return out[0], out[1]


def parse_preprocess(spec: Any, *, file: str | None = None) -> Preprocess:
    """`size=224,mean=0.485:0.456:0.406,std=0.229:0.224:0.225` (`--preprocess`), or the same keys as a table
    (stretchc.toml's `[preprocessing]`, in `file`), parsed and checked completely (see the module docstring)."""
    table = isinstance(spec, dict)
    origin = Preprocess(where="[preprocessing]" if table else f"--preprocess {spec!r}", table=table, file=file if table else None)
    if not spec:
        return origin
    items: dict[str, Any] = dict(spec) if table else {}
    for part in [] if table else [p.strip() for p in str(spec).split(",") if p.strip()]:
        key, eq, val = (s.strip() for s in part.partition("="))
        if not eq or not key:
            raise origin.error(f"item {part!r}: expected KEY=VALUE (keys: {', '.join(PREPROCESS_KEYS)})")
        if key in items:
            raise origin.error(f"{key} is given twice")
        items[key] = val
    unknown = sorted(set(items) - set(PREPROCESS_KEYS))
    if unknown:
        raise origin.error(f"unknown key(s) {', '.join(map(str, unknown))} (keys: {', '.join(PREPROCESS_KEYS)})")
    size = None
    if "size" in items:
        dims = _numbers(origin, "size", items["size"])
        if len(dims) not in (1, 2) or not all(d.is_integer() and d >= 1 for d in dims):
            raise origin.error(f"size must be S or HxW, positive integers; it is {items['size']!r}")
        size = (int(dims[0]), int(dims[-1]))
    mean = _channel_values(origin, "mean", items.get("mean", 0.0), positive=False)
    std = _channel_values(origin, "std", items.get("std", 1.0), positive=True)
    return Preprocess(size=size, mean=mean, std=std, given=True, where=origin.where, table=table, file=origin.file)


def _numbers(origin: Preprocess, key: str, val: Any) -> list[float]:
    """A preprocessing value as numbers: a number, a list of numbers, or text separated by ':' (or 'x' for size)."""
    if isinstance(val, str):
        text = val.lower().replace("x", ":") if key == "size" else val
        items: list[Any] = [s.strip() for s in text.split(":")] if text.strip() else []
    else:
        items = list(val) if isinstance(val, (list, tuple)) else [val]
    out = []
    for item in items:
        try:
            if isinstance(item, bool) or not isinstance(item, (int, float, str)):
                raise ValueError
            out.append(float(item))
        except ValueError:
            raise origin.error(f"{key}: {item!r} is not a number") from None
    return out


def _channel_values(origin: Preprocess, key: str, val: Any, *, positive: bool) -> tuple[float, ...]:
    """`mean` or `std`: 1 value or one per channel of an image input, finite (and > 0 when `positive`)."""
    values = _numbers(origin, key, val)
    if len(values) not in {1, *IMAGE_CHANNELS}:
        raise origin.error(f"{key} needs 1 value (for every channel) or one per channel (3 for RGB); it has {len(values)}")
    if not all(math.isfinite(v) and (v > 0 or not positive) for v in values):
        raise origin.error(f"{key} values must be finite{' and > 0' if positive else ''}; they are {val!r}")
    return tuple(values)


def check_calibration_options(calib: str | None, preprocess: Any, *, config: Path | None = None) -> None:
    """The --calib and --preprocess settings (`preprocess` a table: stretchc.toml's, in `config`) checked before
    any work: the preprocessing parses, the data exists, is a folder or a regular file, and is images when
    --preprocess is given (see the module docstring)."""
    pre = parse_preprocess(preprocess, file=str(config) if config else None)
    if calib is None:
        return
    if calib == RANDOM:
        _check_applies(pre, images=False, source=calib)
        return
    path = Path(calib)
    if not path.exists():
        raise _bad("calibration data does not exist", path)
    _check_applies(pre, images=check_regular(path, "bad-calibration", folder=True), source=calib)


def _check_applies(pre: Preprocess, *, images: bool, source: str | Path) -> None:
    """--preprocess is for image folders only; stretchc.toml's table is not used for other data (module docstring)."""
    if pre.given and not pre.table and not images:
        raise pre.error(f"preprocessing applies to a folder of images; {source} is fed as it is (drop --preprocess, or preprocess the arrays before saving them)")


def check_regular(path: Path, code: str, *, folder: bool = False) -> bool:
    """True if `path` (symlinks followed) is a folder and `folder` allows one, False if it is a regular file;
    anything else (a FIFO, device or socket, a folder where a file is wanted, an unreadable path) is
    StretchError(code). Checked before opening: opening or reading a FIFO without a writer blocks forever."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise StretchError(code, f"cannot read it ({exc.strerror or exc})", file=str(path)) from None
    if folder and stat.S_ISDIR(mode):
        return True
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "a FIFO, device or socket"
        raise StretchError(code, f"not a regular file ({what}): give a {'file or folder' if folder else 'file'}", file=str(path))
    return False


def open_regular(path: Path, code: str) -> IO[bytes]:
    """`path` opened for reading if it is a regular file (`check_regular`), else StretchError(code)."""
    check_regular(path, code)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # should it have become a FIFO since, open() must not wait for a writer
    except OSError as exc:
        raise StretchError(code, f"cannot read it ({exc.strerror or exc})", file=str(path)) from None
    return os.fdopen(fd, "rb")


def read_npy(path: Path, code: str, *, mmap: bool = False) -> np.ndarray:
    """One .npy array, checked before its data is read: a regular file holding a .npy (not an .npz or other
    archive), no pickled objects, and a header whose shape and dtype match the file's size (a header may claim
    petabytes). `mmap`: memory-mapped read-only, so that only what is used is read. Errors: StretchError(code)."""
    file = str(path)
    with open_regular(path, code) as f:
        try:
            if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise StretchError(code, "not a .npy array (np.save writes one; an .npz or zip archive holds several)", file=file)
            f.seek(0)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise StretchError(code, f".npy format version {version} is not supported (1.0 and 2.0 are)", file=file)
            if dtype.hasobject:
                raise StretchError(code, "the array holds Python objects (pickles are never loaded)", file=file)
            offset, count = f.tell(), math.prod(shape)
            held = os.fstat(f.fileno()).st_size - offset
            if held != count * dtype.itemsize:
                raise StretchError(code, f"its header says {dtype}{list(shape)} ({count * dtype.itemsize} bytes) but the file holds {held}", file=file)
            order = "F" if fortran else "C"
            if mmap and held:
                return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
            return np.fromfile(f, dtype=dtype, count=count).reshape(shape, order=order)
        except (ValueError, OSError, EOFError) as exc:
            raise StretchError(code, f"not a .npy array ({exc})", file=file) from None


@dataclass(frozen=True)
class BadValue:
    """A value screening refuses: in array `index` of those screened together, at `position`; `limit`: the
    outlier bound it exceeds, `reference` the percentile that bound comes from (both None: NaN or infinite)."""

    index: int
    position: tuple[int, ...]
    value: float
    limit: float | None = None
    reference: float | None = None

    def describe(self) -> str:
        """What is wrong, for a message that says which array: `inf at (0, 1, 2, 3), not a finite number`."""
        if self.limit is None:
            return f"{self.value} at {self.position}, not a finite number"
        return (
            f"{self.value:g} at {self.position}, over {OUTLIER_FACTOR:g} x the {OUTLIER_PERCENTILE:g}th percentile of the nonzero |x| ({self.reference:.3g}): "
            "far outside the rest (int8 on that range would round almost every other value to zero)"
        )


def find_bad_value(arrays: Sequence[np.ndarray]) -> BadValue | None:
    """The first NaN or infinity in `arrays` (the values of one input: in array order, then C order), else the
    first value beyond `OUTLIER_FACTOR` x the `OUTLIER_PERCENTILE`-th percentile of their nonzero |x| (module
    docstring); None when there is none or the arrays are not floating point."""
    if not arrays or arrays[0].dtype.kind != "f":
        return None
    for k, a in enumerate(arrays):
        finite = np.isfinite(a)
        if not finite.all():
            at = np.unravel_index(int(np.argmin(finite)), a.shape)
            return BadValue(k, tuple(int(i) for i in at), float(a[at]))
    step = max(1, sum(a.size for a in arrays) // REFERENCE_VALUES)
    picked = np.concatenate([np.abs(np.ravel(a)[::step]) for a in arrays])
    picked = picked[picked > 0]
    if not picked.size:
        return None
    reference = float(np.percentile(picked, OUTLIER_PERCENTILE, method="lower"))  # "lower": never the largest of 100 or fewer
    limit = OUTLIER_FACTOR * reference
    for k, a in enumerate(arrays):
        over = np.abs(a) > limit
        if over.any():
            at = np.unravel_index(int(np.argmax(over)), a.shape)
            return BadValue(k, tuple(int(i) for i in at), float(a[at]), limit, reference)
    return None


@dataclass
class CalibrationSet:
    """Samples as feeds {input name: array with batch 1, ONNX layout}; `source` names where they came from.

    `labels`: the class index of every sample (int64, aligned with `samples`), when the data set has them.
    """

    samples: list[dict[str, np.ndarray]] = field(default_factory=list)
    source: str = ""
    random: bool = False
    labels: np.ndarray | None = None


Origin = tuple[str, int]  # where a sample came from: its file, and its index in the data set


def _bad(message: str, file: str | Path) -> StretchError:
    return StretchError("bad-calibration", message, file=str(file))


def _chosen(total: int, cap: int, source: Path) -> list[int]:
    """The indices of the samples used: all, or `cap` evenly spaced ones (with a note) when there are more."""
    if total <= cap:
        return list(range(total))
    get_console().note("calibration-capped", f"{total} samples; using {cap} of them, evenly spaced (the calibrator gains little past a few hundred)", file=str(source))
    return [k * total // cap for k in range(cap)]


def _load_images(folder: Path, inputs: list[tuple[str, tuple[int, ...], str]], pre: Preprocess, cap: int) -> tuple[list[dict[str, np.ndarray]], list[Origin]]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise _bad("the calibration folder holds no JPEG or PNG images", folder)
    for f in files:
        check_regular(f, "bad-calibration")
    if len(inputs) != 1:
        raise _bad(f"image calibration needs a model with one input; the model has {len(inputs)} (give a .npz)", folder)
    name, shape, _ = inputs[0]
    if len(shape) != 4 or shape[1] not in IMAGE_CHANNELS:
        raise _bad(f"image calibration needs an input [1, 1|3, H, W]; input {name!r} is {list(shape)}", folder)
    channels, height, width = shape[1], shape[2], shape[3]
    if pre.size not in (None, (height, width)):
        raise pre.error(f"size {pre.size[0]}x{pre.size[1]} does not match the model input {height}x{width}")
    mean, std = pre.per_channel(channels)
    chosen = _chosen(len(files), cap, folder)
    with np.errstate(over="ignore"):  # a tiny std overflows to inf, which the value screening names
        samples = [{name: ((_read_image(files[k], channels, height, width) - mean) / std).astype(np.float32)[None]} for k in chosen]
    return samples, [(str(files[k]), k) for k in chosen]


def _read_image(file: Path, channels: int, height: int, width: int) -> np.ndarray:
    """One image as [channels, height, width] float32, scaled to [0, 1] by its mode's range (module docstring)."""
    from PIL import Image, UnidentifiedImageError  # lazy: Pillow, for a folder of images only

    try:
        with open_regular(file, "bad-calibration") as f, Image.open(f) as im:
            full = WIDE_MODES.get(im.mode)
            if full is None:  # 8 bits per channel; a palette's transparency goes through RGBA, as Pillow asks
                rgb = im.convert("RGBA") if "transparency" in im.info else im
                small = rgb.convert("RGB" if channels == 3 else "L").resize((width, height), Image.BILINEAR)
                return (np.asarray(small, dtype=np.float32) / 255.0).reshape(height, width, channels).transpose(2, 0, 1)
            grey = np.asarray(im).astype(np.float32)
            if grey.min() < 0 or grey.max() > full:  # NaN passes here; the value screening names it
                raise _bad(f"a {im.mode} image with values outside 0..{full:g} (save it as an 8- or 16-bit PNG)", file)
            small = np.asarray(Image.fromarray(grey / full).resize((width, height), Image.BILINEAR))
            return np.broadcast_to(small, (channels, height, width))  # a grey image feeds every channel
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise _bad(f"unreadable image ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", file) from None


def _batched(arr: Any, name: str, shape: tuple[int, ...], file: Path) -> np.ndarray:
    """`arr` as N samples of exactly `shape` (a view): it is N x `shape`, N x `shape` without a batch of 1, or
    `shape` (one sample)."""
    if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
        dtype = getattr(arr, "dtype", type(arr).__name__)
        raise _bad(f"array for input {name!r} has dtype {dtype}; expected float32", file)
    if arr.shape == tuple(shape):
        batched = arr[None]
    elif shape and shape[0] == 1 and arr.shape[1:] == tuple(shape[1:]):
        batched = arr[:, None]
    elif arr.shape[1:] == tuple(shape):
        batched = arr
    else:
        raise _bad(f"array for input {name!r} has shape {list(arr.shape)}; expected N x {list(shape[1:])} (input shape {list(shape)})", file)
    if not len(batched):
        raise _bad(f"array for input {name!r} holds no samples", file)
    return batched


def _labels(arr: np.ndarray, count: int, file: Path) -> np.ndarray:
    """The `labels` array checked against the samples: 1-D, integer, >= 0, one per sample."""
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise _bad(f"{LABELS_KEY!r} must be a 1-D integer array (one class index per sample); it is {arr.dtype} {list(arr.shape)}", file)
    if len(arr) != count:
        raise _bad(f"{LABELS_KEY!r} holds {len(arr)} label(s) for {count} sample(s)", file)
    if arr.size and int(arr.min()) < 0:
        raise _bad(f"{LABELS_KEY!r} holds a negative class index ({int(arr.min())})", file)
    return arr.astype(np.int64)


def _read_npz(path: Path, inputs: list[tuple[str, tuple[int, ...], str]]) -> tuple[dict[str, Any], np.ndarray | None]:
    """The arrays of a .npz by input name (its single array for a one-input model), and its labels if any."""
    names = [n for n, _, _ in inputs]
    try:
        with open_regular(path, "bad-calibration") as f:
            if not zipfile.is_zipfile(f):
                raise _bad("not a .npz archive (np.savez writes one)", path)
            f.seek(0)
            with np.load(f, allow_pickle=False) as loaded:
                has_labels = LABELS_KEY in loaded.files and LABELS_KEY not in names
                keys = [k for k in loaded.files if not (has_labels and k == LABELS_KEY)]
                labels = loaded[LABELS_KEY] if has_labels else None
                if len(names) == 1 and len(keys) == 1:
                    return {names[0]: loaded[keys[0]]}, labels
                missing = [n for n in names if n not in keys]
                if missing:
                    raise _bad(f"the archive lacks input(s) {', '.join(missing)} (it has {', '.join(keys) or 'nothing'})", path)
                return {n: loaded[n] for n in names}, labels
    except (ValueError, OSError, EOFError, MemoryError, zipfile.BadZipFile) as exc:
        raise _bad(f"not a readable .npz file ({exc})", path) from None


def _load_arrays(path: Path, inputs: list[tuple[str, tuple[int, ...], str]], cap: int) -> tuple[list[dict[str, np.ndarray]], np.ndarray | None, list[Origin]]:
    labels = None
    if path.suffix.lower() == ".npy":
        if len(inputs) != 1:
            raise _bad(f"a .npy holds one array; the model has {len(inputs)} inputs (give a .npz keyed by input name)", path)
        arrays: dict[str, Any] = {inputs[0][0]: read_npy(path, "bad-calibration", mmap=True)}
    else:
        arrays, labels = _read_npz(path, inputs)
    batched = {n: _batched(arrays[n], n, s, path) for n, s, _ in inputs}
    counts = {len(b) for b in batched.values()}
    if len(counts) != 1:
        raise _bad("the inputs' arrays hold different numbers of samples", path)
    count = counts.pop()
    if labels is not None:
        labels = _labels(labels, count, path)
    chosen = _chosen(count, cap, path)
    samples = [{n: np.array(b[k], dtype=np.float32) for n, b in batched.items()} for k in chosen]  # copies: the map is let go
    return samples, None if labels is None else labels[chosen], [(str(path), k) for k in chosen]


def _screen(samples: list[dict[str, np.ndarray]], origins: list[Origin]) -> None:
    """Refuse NaN, infinities and outliers (`find_bad_value`) per input across the samples, naming where."""
    for name in samples[0]:
        bad = find_bad_value([s[name] for s in samples])
        if bad is not None:
            file, index = origins[bad.index]
            raise _bad(f"input {name!r}, sample {index}: {bad.describe()}; fix or drop that sample", file)


def load_calibration_data(
    spec: str | None,
    inputs: list[tuple[str, tuple[int, ...], str]],
    *,
    preprocess: Any = None,
    random_samples: int = DEFAULT_RANDOM_SAMPLES,
    seed: int = 0,
    max_samples: int = MAX_SAMPLES,
) -> CalibrationSet:
    """Read calibration data for a model whose inputs are (name, ONNX shape, dtype). See the module docstring."""
    pre = parse_preprocess(preprocess)
    if spec is None:
        raise StretchError("bad-calibration", "DSP partitions need calibration data: pass --calib DIR|FILE.npy|FILE.npz (or --calib random, which costs accuracy)")
    if spec == RANDOM:
        _check_applies(pre, images=False, source=spec)
        rng = np.random.default_rng(seed)
        samples = [{n: rng.random(s).astype(np.float32) for n, s, _ in inputs} for _ in range(random_samples)]
        return CalibrationSet(samples, source=RANDOM, random=True)
    path = Path(spec)
    if not path.exists():
        raise _bad("calibration data does not exist", path)
    folder = check_regular(path, "bad-calibration", folder=True)
    _check_applies(pre, images=folder, source=path)
    for name, _, dtype in inputs:
        if dtype != "float32":
            raise _bad(f"input {name!r} is {dtype}; calibration supports float32 inputs only", path)
    labels = None
    if folder:
        samples, origins = _load_images(path, inputs, pre, max_samples)
    elif path.suffix.lower() in (".npy", ".npz"):
        samples, labels, origins = _load_arrays(path, inputs, max_samples)
    else:
        raise _bad("calibration data must be a folder of images, a .npy or a .npz file", path)
    _screen(samples, origins)
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
