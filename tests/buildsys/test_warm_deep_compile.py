"""A warm compile (lowering from the cache) of a deep model works (issue 12, item 10).

A cold compile imports onnx2tf, which raises Python's recursion limit; a warm one does not, so it runs with the
default limit of 1000 frames. R-50-CD compiled for mi9 with its DSP placement and calibration used to die there
(a deep copy of the graph recursed over its depth, about 8 frames per op); EN-L4-CG (NN-Stretch configs/mi,
about 190 ops deep), quantized by `--precision auto`, is deeper still. Each compile runs in a fresh process, as a
build system would run it; the warm one checks that it ran under the default limit, without onnx2tf."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx

from stretchc.modelbuild import build_model, load_config

CONFIG = Path(__file__).parents[1] / "precision" / "configs" / "EN-L4-CG.yaml"
COMPILE = """
import sys
from stretchc.cli import main
rc = main(sys.argv[1:])
print("RECURSION", sys.getrecursionlimit(), "onnx2tf" in sys.modules)
sys.exit(rc)
"""


def _compile(model: Path, out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    argv = ["compile", str(model), "-t", "mi9", "--place-from-model", "--calib", "random", "-o", str(out), "-q"]
    env = {**os.environ, "STRETCHC_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-c", COMPILE, *argv], capture_output=True, text=True, env=env, timeout=900)


def test_cold_then_warm_compile_of_a_deep_model(tmp_path: Path) -> None:
    model = tmp_path / "EN-L4-CG.onnx"
    onnx.save(build_model(load_config(CONFIG), image_size=64, seed=0), str(model))
    cold = _compile(model, tmp_path / "cold", tmp_path / "cache")
    assert cold.returncode == 0, cold.stderr[-2000:]
    assert "RECURSION" in cold.stdout and "True" in cold.stdout.split("RECURSION")[1]  # onnx2tf was imported: cold
    warm = _compile(model, tmp_path / "warm", tmp_path / "cache")
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert "RECURSION 1000 False" in warm.stdout  # from the cache: default recursion limit, no onnx2tf
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("cold", "warm")]
    assert manifests[0]["partitions"] == manifests[1]["partitions"]
    assert len(manifests[1]["partitions"]) > 10 and any(p["precision"] == "int8" for p in manifests[1]["partitions"])
