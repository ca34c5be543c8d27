"""Compiled-once fixtures for the pass-debugging tests (issue 14): bundles with their --dump-dir dumps.

Compiles go through the CLI in this process (`stretchc.cli.main`), as a user runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest

from stretchc.cli import main
from stretchc.examples import branched_model

from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "branchy.onnx"


@dataclass
class Dumped:
    """A compiled bundle, the model and arguments it came from, and its dump folder."""

    model: Path
    args: list[str]  # the compile options (besides the model, -o and --dump-dir)
    bundle: Path
    dumps: Path


def compile_with_dumps(root: Path, model: Path, args: list[str]) -> Dumped:
    bundle, dumps = root / f"{model.stem}.stretch", root / f"{model.stem}.dumps"
    assert main(["compile", str(model), "-o", str(bundle), "--dump-dir", str(dumps), "-q", *args]) == 0
    return Dumped(model, args, bundle, dumps)


@pytest.fixture(scope="session")
def example_dumps(tmp_path_factory: pytest.TempPathFactory) -> Dumped:
    """The README example for pixel6, default pipeline."""
    return compile_with_dumps(tmp_path_factory.mktemp("example"), EXAMPLE, ["-t", "pixel6"])


def small_model(root: Path) -> Path:
    path = root / "small.onnx"
    onnx.save(branched_model(branches=(2,), size=32, width=8, name="small"), str(path))
    return path


@pytest.fixture(scope="session", params=["calib-random", "calib-file-holdout"])
def quantized_dumps(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Dumped:
    """A small two-branch model for mi9 with branch s1.b1 on the DSP (int8): calibrated on random data, or
    on a .npy file with samples held out for --min-sqnr."""
    root = tmp_path_factory.mktemp(request.param)
    model = small_model(root)
    if request.param == "calib-random":
        calib = ["--calib", "random"]
    else:
        np.save(root / "calib.npy", np.random.default_rng(3).random((10, 3, 32, 32), dtype=np.float32))
        calib = ["--calib", str(root / "calib.npy"), "--min-sqnr", "10", "--calib-holdout", "2"]
    return compile_with_dumps(root, model, ["-t", "mi9", "--place", "s1.b1=dsp", *calib])
