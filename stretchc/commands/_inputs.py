"""Command-line values shared by run, verify and compile: `--input` / `--const-input NAME=FILE.npy` arrays and
numeric option types.

The arrays are read and checked by `stretchc.api.read_array`, as the API reads the ones it is given as files: a
regular file (a FIFO would block the read forever) holding one .npy array whose header matches the file's size; a
floating-point array must hold no NaN or infinity and no value far outside the rest (the rule of
stretchc/quantize/calibration_data.py: beyond 10^4 x the 99th percentile of its nonzero |x|). Anything else is
`bad-input-data` naming the file (and the position of a bad value); a missing file is `file-not-found`."""

from __future__ import annotations

import argparse
import math

import numpy as np

from stretchc.api import read_array
from stretchc.errors import StretchError


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
    """Parse NAME=FILE.npy options and load the arrays, checked as the module docstring says; errors name the file."""
    return {name: read_array(name, path, flag) for name, path in input_files(specs, flag).items()}
