"""Command-line values shared by run, verify and compile: `--input` / `--const-input NAME=FILE.npy` arrays and
numeric option types."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from stretchc.errors import StretchError

NPY_MAGIC = b"\x93NUMPY"


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a seed)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a count)."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (a duration)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def load_npy(path: str) -> np.ndarray:
    """One .npy array, checked before it is read: a .npy file (not an .npz or other archive), no pickled
    objects, and a header whose shape and dtype match the file's size (a header may claim petabytes)."""
    try:
        with open(path, "rb") as f:
            if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise StretchError("bad-input-data", "not a .npy array (an .npz or zip archive holds several: save one array with np.save)", file=path)
            f.seek(0)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise StretchError("bad-input-data", f".npy format version {version} is not supported (1.0 and 2.0 are)", file=path)
            header_end = f.tell()
            f.seek(0, 2)
            size = f.tell()
    except StretchError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise StretchError("bad-input-data", f"not a .npy array ({exc})", file=path) from None
    if dtype.hasobject:
        raise StretchError("bad-input-data", "the array holds Python objects (pickles are never loaded)", file=path)
    need = math.prod(shape) * dtype.itemsize
    if size - header_end != need:
        raise StretchError("bad-input-data", f"its header says {dtype}{list(shape)} ({need} bytes) but the file holds {size - header_end}", file=path)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise StretchError("bad-input-data", f"not a .npy array ({exc})", file=path) from None


def input_files(specs: list[str], flag: str = "--input") -> dict[str, str]:
    """Parse NAME=FILE.npy options into NAME -> FILE (a name given twice is a usage error)."""
    files: dict[str, str] = {}
    for spec in specs:
        name, eq, path = spec.partition("=")
        if not eq or not name or not path:
            raise StretchError("usage", f"{flag} {spec!r}: expected NAME=FILE.npy")
        if name in files:
            raise StretchError("usage", f"{flag} gives {name!r} twice")
        files[name] = path
    return files


def read_inputs(specs: list[str], flag: str = "--input") -> dict[str, np.ndarray]:
    """Parse NAME=FILE.npy options and load the arrays; errors name the file."""
    arrays: dict[str, np.ndarray] = {}
    for name, path in input_files(specs, flag).items():
        if not Path(path).is_file():
            raise StretchError("file-not-found", f"input file for {name!r} does not exist", file=path)
        arrays[name] = load_npy(path)
    return arrays
