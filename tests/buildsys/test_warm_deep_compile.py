"""A warm compile (lowering from the cache) of a deep model works (issue 12, item 10).

A cold compile imports onnx2tf, which raises Python's recursion limit; a warm one does not, so it runs with the
default limit of 1000 frames. R-50-CD compiled for mi9 with its DSP placement and calibration used to die there
(a deep copy of the graph recursed over its depth, about 8 frames per op); EN-L4-CG (NN-Stretch configs/mi,
about 190 ops deep), quantized by `--precision auto`, is deeper still. The first compile runs in this process
and fills the session's lowering cache (other tests compile the same model: it may be warm already); the warm
one runs in a fresh process, as a build system would run it, and checks that it ran under the default limit,
without onnx2tf, and gave the same partitions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stretchc.cli import main

# slow (not in `scripts/test.sh --fast`): a deep model lowered and calibrated, then compiled again in a separate process (about 25 s)
pytestmark = pytest.mark.slow

COMPILE = """
import sys
from stretchc.cli import main
rc = main(sys.argv[1:])
print("RECURSION", sys.getrecursionlimit(), "onnx2tf" in sys.modules)
sys.exit(rc)
"""


def _argv(model: Path, out: Path) -> list[str]:
    return ["compile", str(model), "-t", "mi9", "--place-from-model", "--calib", "random", "-o", str(out), "-q"]


def test_warm_compile_of_a_deep_model(tmp_path: Path, mi_config_model) -> None:  # type: ignore[no-untyped-def]
    model = mi_config_model("EN-L4-CG")
    assert main(_argv(model, tmp_path / "first")) == 0  # STRETCHC_CACHE_DIR: the session's cache (tests/conftest.py)
    warm = subprocess.run([sys.executable, "-c", COMPILE, *_argv(model, tmp_path / "warm")], capture_output=True, text=True, timeout=900)
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert "RECURSION 1000 False" in warm.stdout  # from the cache: default recursion limit, no onnx2tf
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("first", "warm")]
    assert manifests[0]["partitions"] == manifests[1]["partitions"]
    assert len(manifests[1]["partitions"]) > 10 and any(p["precision"] == "int8" for p in manifests[1]["partitions"])
