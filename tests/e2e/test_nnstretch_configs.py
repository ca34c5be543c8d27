"""NN-Stretch configurations built with the model builder compile into exactly the stages and branches
they describe, and --place-from-model reproduces the configured placement (issue 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import pytest
import yaml

from stretchc.analyses import Placement
from stretchc.compile_settings import CompileSettings
from stretchc.driver import CompileOptions, compile_model
from stretchc.modelbuild import build_model, load_config, placement_from_model
from stretchc.verify import verify_bundle

R50_2B: dict[str, Any] = {
    "MODEL": {"TYPE": "mbanynet", "NUM_CLASSES": 10},
    "ANYNET": {
        "STEM_TYPE": "res_stem_in", "STEM_W": 16, "BLOCK_TYPE": "res_bottleneck_block",
        "STRIDES": [[1, 1], [2, 2]], "DEPTHS": [[2, 1], [1, 2]], "WIDTHS": [[16, 16], [24, 16]],
        "BOT_MULS": [0.25, 0.25], "GROUP_WS": [[4, 4], [6, 4]], "DEVICES": ["cpu", "gpu"],
        "STEM_DEVICE": "cpu", "MERGE_DEVICE": "cpu", "HEAD_DEVICE": "cpu", "ORIGINAL_WIDTHS": [32, 40],
    },
}
# Basic blocks with a strided first conv in both branches: the converter merges the two branches' PADs,
# which unshare-pads undoes (without it the stage would not be found).
R34_2B: dict[str, Any] = {
    "MODEL": {"TYPE": "mbanynet", "NUM_CLASSES": 10},
    "ANYNET": {
        "STEM_TYPE": "res_stem_in", "STEM_W": 16, "BLOCK_TYPE": "res_basic_block",
        "STRIDES": [[1, 1], [2, 2], [2, 2]], "DEPTHS": [[1, 2], [2, 1], [1, 1]], "WIDTHS": [[8, 8], [16, 8], [16, 16]],
        "BOT_MULS": [1, 1, 1], "GROUP_WS": [[8, 8], [16, 8], [16, 16]], "DEVICES": ["cpu", "gpu"],
        "STEM_DEVICE": "cpu", "MERGE_DEVICE": "cpu", "HEAD_DEVICE": "cpu", "ORIGINAL_WIDTHS": [16, 24, 32],
    },
}
EN_2B_SE: dict[str, Any] = {
    "MODEL": {"TYPE": "mbanynet", "NUM_CLASSES": 10, "ACTIVATION_FUN": "silu"},
    "ANYNET": {
        "STEM_TYPE": "simple_stem_in", "STEM_W": 16, "STEM_K": 3, "BLOCK_TYPE": "mbconv",
        "STRIDES": [[1], [2, 2], [2, 2]], "DEPTHS": [[1], [2, 1], [1, 2]], "WIDTHS": [[16], [16, 16], [24, 16]],
        "BOT_MULS": [1, [4, 4], [4, 4]], "KERNELS": [3, 3, 5], "HEAD_W": 64, "SE_ON": True, "SE_R": 0.25,
        "MB_VER": 1, "ACTIVATION_FUN": ["relu", "silu"], "DEVICES": ["gpu", "cpu"],
        "STEM_DEVICE": "cpu", "MERGE_DEVICE": "cpu", "HEAD_DEVICE": "gpu", "ORIGINAL_WIDTHS": [16, 24, 32],
    },
}
RX_3B: dict[str, Any] = {
    "MODEL": {"TYPE": "mbanynet", "NUM_CLASSES": 10},
    "ANYNET": {
        "STEM_TYPE": "simple_stem_in", "STEM_W": 16, "BLOCK_TYPE": "res_bottleneck_block",
        "STRIDES": [[1, 1], [2, 2, 2], [2, 2, 2]], "DEPTHS": [[1, 1], [1, 2, 1], [2, 1, 1]],
        "WIDTHS": [[16, 8], [16, 16, 8], [24, 16, 8]], "BOT_MULS": [1, 1, 1],
        "GROUP_WS": [[8, 8], [8, 8, 8], [8, 8, 8]], "DEVICES": ["cpu", "gpu", "dsp"],
        "STEM_DEVICE": "cpu", "MERGE_DEVICE": "cpu", "HEAD_DEVICE": "cpu", "ORIGINAL_WIDTHS": [24, 40, 48],
    },
}
# DSP branches are quantized by quantize-partitions; these tests calibrate on explicit random data (accuracy is
# measured in tests/backends/dsp), so the configured DSP placement compiles for the Snapdragon 855 phone.
CASES = {"resnet50-2b": (R50_2B, [2, 2]), "resnet34-2b": (R34_2B, [2, 2, 2]), "effnet-mbv1-se-2b": (EN_2B_SE, [2, 2]), "regnetx-3b": (RX_3B, [2, 3, 3])}

# slow (not in `scripts/test.sh --fast`): builds four NN-Stretch configurations and compiles each, calibrated with TFLite (about 15 s)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=sorted(CASES))
def compiled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cfg, stages = CASES[request.param]
    d = tmp_path_factory.mktemp(request.param)
    cfg_path = d / f"{request.param}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    model = build_model(load_config(cfg_path), image_size=64, seed=0)
    model_path = d / "model.onnx"
    onnx.save(model, str(model_path))
    uses_dsp = "dsp" in (placement_from_model(model) or {}).values()
    options = CompileOptions(target="mi9" if uses_dsp else "pixel6", place_from_model=True, settings=CompileSettings(calib="random" if uses_dsp else None))
    result = compile_model(model_path, d / "bundle", options)
    return model, model_path, result, stages


def test_finds_the_configured_stages_and_branches(compiled) -> None:  # type: ignore[no-untyped-def]
    _, _, result, stages = compiled
    found: dict[int, int] = {}
    for r in result.module.regions:
        if r.kind == "branch":
            found[r.stage] = found.get(r.stage, 0) + 1  # type: ignore[index]
    assert [found[k] for k in sorted(found)] == stages


def test_place_from_model_reproduces_the_configured_placement(compiled) -> None:  # type: ignore[no-untyped-def]
    model, _, result, _ = compiled
    recorded = placement_from_model(model)
    assert recorded is not None
    placed = {r: p["processor"] for p in result.manifest["partitions"] for r in p["regions"]}
    assert placed == recorded
    assert set(result.analyses.get(Placement).overrides) == set(recorded)  # explicit placements, from the model or --place


def test_place_from_model_refuses_dsp_without_calibration_data(tmp_path: Path) -> None:
    from stretchc.errors import StretchError

    cfg_path = tmp_path / "rx.yaml"
    cfg_path.write_text(yaml.safe_dump(RX_3B, sort_keys=False))
    model_path = tmp_path / "rx.onnx"
    onnx.save(build_model(load_config(cfg_path), image_size=64, seed=0), str(model_path))
    with pytest.raises(StretchError) as err:
        compile_model(model_path, tmp_path / "b", CompileOptions(target="mi9", place_from_model=True))
    assert err.value.code == "bad-calibration"
    assert not (tmp_path / "b").exists()


def test_bundle_matches_onnxruntime(compiled) -> None:  # type: ignore[no-untyped-def]
    _, model_path, result, _ = compiled
    report = verify_bundle(Path(result.output), model_path, samples=2)
    assert report.ok, report.table()
