"""Models nobody here wrote: published architectures, exported by standard exporters, compile and verify.

Keras Applications architectures (defined by the Keras team; random weights, small inputs, logits out) are
exported by Keras as TF SavedModels and converted to ONNX by tf2onnx's command line,
`python -m tf2onnx.convert --saved-model DIR --opset 17`, once per test session. Each compiles for pixel6
and for mi9 with the default policy and verifies against ONNX Runtime with every sync point compared with
the ONNX tensor it carries (none left unmatched); each compiles for every target with the default policy
(`--calib random` where a DSP or an NPU needs int8 data), is never predicted slower than the whole model as
one partition on its best processor, and its bundle passes verify. MobileNetV2, ResNet50 and Xception have no stage by
find-branches' definition either and compile as one region. InceptionV3's inception modules and NASNetMobile's cells
(a concat of five combinations in a normal cell, three in a reduction cell, beside pass-through inputs) are found as
stages with the branches the architecture has; EfficientNetB0 (squeeze-excite MULs, residual ADDs) and DenseNet121
(each layer concatenates its input with new features: an empty branch) have no stage by find-branches'
definition and compile as one region. On mi9, InceptionV3 is also compiled with part of it placed on the DSP and
part on the GPU, `--precision float --calib random` (CPU and GPU partitions float32, DSP ones int8).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stretchc.analyses import Placement
from stretchc.console import Console, set_console
from stretchc.driver import CompileOptions, CompileResult, compile_model
from stretchc.verify import VerifyReport, verify_bundle

from tests.conftest import settings_with

HERE = Path(__file__).parent
# name -> input size (the smallest each architecture takes, or close: the tier's time is bounded)
MODELS = {"InceptionV3": 75, "EfficientNetB0": 32, "DenseNet121": 32, "MobileNetV2": 32, "ResNet50": 32, "NASNetMobile": 32, "Xception": 71}
TARGETS = ["pixel6", "mi9", "pixel4", "pixel3", "galaxy-s21", "galaxy-s23", "galaxy-s24"]
INT8_TARGETS = {"mi9", "pixel4", "pixel3", "galaxy-s23", "galaxy-s24"}  # a DSP or an NPU: int8 there needs --calib
# InceptionV3: mixed0..mixed10, each an inception module joined by a concat: its branch count
INCEPTION_BRANCHES = [4, 4, 4, 3, 4, 4, 4, 4, 3, 4, 4]
# NASNetMobile: two stem reduction cells, then three groups of four normal cells with a reduction cell between
NASNET_BRANCHES = [3, 3, 5, 5, 5, 5, 3, 5, 5, 5, 5, 3, 5, 5, 5, 5]

# slow as well: published models are never part of the fast tier (`scripts/test.sh --fast`)
pytestmark = [pytest.mark.external, pytest.mark.slow]


def _expected_regions(name: str) -> list[str]:
    branches = {"InceptionV3": INCEPTION_BRANCHES, "NASNetMobile": NASNET_BRANCHES}.get(name)
    if branches is None:
        return ["main"]
    regions = ["stem"]
    for k, n in enumerate(branches, start=1):
        regions += [f"s{k}.b{j}" for j in range(n)] + [f"s{k}.join"]
    return [*regions, "head"]


def _run(cmd: list[str], what: str) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, f"{what} failed:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every model of MODELS as ONNX, exported by Keras and converted by tf2onnx (once per session)."""
    root = tmp_path_factory.mktemp("published-models")
    _run([sys.executable, str(HERE / "export_keras.py"), str(root), *[f"{n}:{s}" for n, s in MODELS.items()]], "Keras export")
    for name in MODELS:
        cmd = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(root / name), "--opset", "17", "--output", str(root / f"{name}.onnx")]
        _run(cmd, f"tf2onnx of {name}")
    return {name: root / f"{name}.onnx" for name in MODELS}


def _compile_and_verify(model: Path, out: Path, options: CompileOptions) -> tuple[CompileResult, VerifyReport]:
    set_console(Console(quiet=True, stream=sys.stderr))
    result = compile_model(model, out, options)
    return result, verify_bundle(result.output, model, samples=2)


@pytest.mark.parametrize("target", ["pixel6", "mi9"])
@pytest.mark.parametrize("name", list(MODELS))
def test_compiles_and_verifies_with_the_default_policy(published: dict[str, Path], name: str, target: str, tmp_path: Path) -> None:
    result, report = _compile_and_verify(published[name], tmp_path / f"{name}.stretch", CompileOptions(target=target))
    assert [r.name for r in result.module.regions] == _expected_regions(name)
    assert report.ok, report.table()
    assert not report.unmatched, report.table()
    outputs = [c for c in report.checks if c.kind == "output"]
    assert len(outputs) == 1 and outputs[0].max_abs_reference > 0
    syncs = [c for c in report.checks if c.kind == "sync"]
    boundary = [s for s in result.manifest["sync_points"] if s["kind"] not in ("input", "output")]
    assert len(syncs) == len(boundary)  # every value crossing between partitions is compared by name
    assert all(c.onnx_tensor.startswith("StatefulPartitionedCall/") for c in syncs)
    # never predicted slower than the whole model as one partition on its best processor
    best = result.analyses.get(Placement).report["best_single"]
    assert result.analyses.get(Placement).report["predicted_latency_ms"] <= best["ms"] + 1e-3


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(MODELS))
def test_every_target_is_never_slower_than_the_best_single_processor_and_verifies(published: dict[str, Path], name: str, target: str, tmp_path: Path) -> None:
    set_console(Console(quiet=True, stream=sys.stderr))
    # the command line's defaults: --precision auto with its 30 dB guard
    calib = {"calib": "random"} if target in INT8_TARGETS else {}
    options = CompileOptions(target=target, settings=settings_with("auto", min_sqnr=30.0, **calib))
    result = compile_model(published[name], tmp_path / f"{name}.stretch", options)
    report = result.analyses.get(Placement).report
    assert report["speedup_over_best_single"] >= 1.0, (report["predicted_latency_ms"], report["best_single"])
    assert report["predicted_latency_ms"] <= report["best_single"]["ms"] + 1e-3
    covered = sorted(r for p in report["partitions"] for r in p["regions"])
    assert covered == sorted(r.name for r in result.module.regions)
    # and its bundle passes verify (what `compile --verify` would check before installing it)
    verified = verify_bundle(result.output, published[name])  # its defaults: what `compile --verify` runs
    assert verified.ok, verified.table()


def test_inception_on_the_dsp_with_random_calibration(published: dict[str, Path], tmp_path: Path) -> None:
    # Placed explicitly (the stem and three branches int8 on the DSP, four branches float32 on the GPU), so the
    # bundle verified does not follow the cost model's fit.
    dsp = ["stem", "s1.b2", "s2.b2", "s3.b2"]
    place = {r: "cpu" for r in _expected_regions("InceptionV3")} | {r: "dsp" for r in dsp} | {f"s{k}.b0": "gpu" for k in range(5, 9)}
    options = CompileOptions(target="mi9", place=place, settings=settings_with("float", calib="random"))
    result, report = _compile_and_verify(published["InceptionV3"], tmp_path / "dsp.stretch", options)
    assert [p["name"] for p in result.manifest["partitions"] if p["processor"] == "dsp"] == dsp
    assert report.quantized and report.ok, report.table()
    assert not report.unmatched, report.table()
