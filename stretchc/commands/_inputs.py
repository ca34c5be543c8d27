"""Reading `--input NAME=FILE.npy` options (shared by run and verify)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stretchc.errors import StretchError


def read_inputs(specs: list[str]) -> dict[str, np.ndarray]:
    """Parse NAME=FILE.npy options and load the arrays; errors name the file."""
    arrays: dict[str, np.ndarray] = {}
    for spec in specs:
        name, eq, path = spec.partition("=")
        if not eq or not name or not path:
            raise StretchError("usage", f"--input {spec!r}: expected NAME=FILE.npy")
        if not Path(path).is_file():
            raise StretchError("file-not-found", f"input file for {name!r} does not exist", file=path)
        try:
            arrays[name] = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise StretchError("bad-input-data", f"not a .npy array ({exc})", file=path) from None
    return arrays
