"""Shared fixtures: models built with stretchc's own code, and a compile helper."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The lowering cache (stretchc/cache.py) of the test session: private, never ~/.cache; removed at exit.
if "STRETCHC_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="stretchc-test-cache-")
    os.environ["STRETCHC_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)

REPO = Path(__file__).resolve().parents[1]


def settings_with(precision: str = "auto", **fields: object):  # type: ignore[no-untyped-def]
    """Compile settings at `precision`, without the accuracy guard unless `min_sqnr` is given (`--precision` with
    a fixed policy has none; `auto` then gets none either)."""
    from stretchc.compile_settings import CompileSettings

    return CompileSettings(precision=precision, **{"min_sqnr": 0.0, **fields})  # type: ignore[arg-type]


def example_with_regions(model=None):  # type: ignore[no-untyped-def]
    """The example model (or `model`) lowered, imported and cut into regions by find-branches (for the placement
    tests)."""
    from stretchc.examples import example_model
    from stretchc.frontend.lower import lower_to_tflite
    from stretchc.frontend.module import build_module
    from stretchc.passes.find_branches import FindBranches
    from stretchc.passmanager import PassContext
    from stretchc.targets import load_target

    model = example_model() if model is None else model
    m = build_module(model, lower_to_tflite(model, file="example"), name="example", file="example")
    FindBranches().run(m, PassContext(target=load_target("mi9")))
    return m


def host_target_file(folder: Path, lanes: int = 2) -> Path:
    """This machine as a measured target file with `lanes` CPU lanes (one thread each), in `folder`: the nominal
    description `stretchc calibrate` starts from (stretchc.targets.host.describe) with fixed efficiencies, not a
    calibration (a test needs the target's shape, not its numbers; calibrating takes minutes)."""
    import yaml

    from stretchc.costmodel import CostModel
    from stretchc.costmodel.microbench import PROCESSOR
    from stretchc.targets.host import MEASURED_HEADER, describe

    raw = describe()
    raw[PROCESSOR]["lanes"] = lanes
    kinds = {CostModel(raw).execution(PROCESSOR, d).kind: {"conv": 0.9, "dwconv": 0.45, "mem": 0.7, "op_ms": 0.001} for d in ("float32", "int8")}
    raw["measured"] = {"runs": 1, "warmup": 0, "kinds": kinds, "dispatch_ms": {PROCESSOR: 0.0}, "points": []}
    path = folder / f"host-{lanes}-lanes.yaml"
    path.write_text(MEASURED_HEADER + yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def save_model(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a ModelProto into tmp_path and return the path."""

    def save(model: onnx.ModelProto, name: str = "model.onnx") -> Path:
        path = tmp_path / name
        onnx.save(model, str(path))
        return path

    return save


@pytest.fixture(scope="session")
def example_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example model compiled for pixel6 with s1.b1 and s2.b2 on the GPU (two lanes); shared, never modified."""
    from stretchc.driver import CompileOptions, compile_model
    from stretchc.examples import example_model

    d = tmp_path_factory.mktemp("example-bundle")
    onnx.save(example_model(), d / "example.onnx")
    compile_model(d / "example.onnx", d / "example.stretch", CompileOptions(place=example_placement({"s1.b1": "gpu", "s2.b2": "gpu"})))
    return d / "example.stretch"


EXAMPLE_REGIONS = ("stem", "s1.b0", "s1.b1", "s1.join", "s2.b0", "s2.b1", "s2.b2", "s2.join", "head")  # examples/branchy.onnx


def example_placement(place: dict[str, str]) -> dict[str, str]:
    """A --place for every region of the example: `place`, the rest on the CPU (so a bundle's shape does not
    follow the cost model's choice)."""
    return {r: "cpu" for r in EXAMPLE_REGIONS} | place


MI_CONFIGS = REPO / "tests" / "precision" / "configs"  # copied unchanged from the NN-Stretch artifact's configs/mi
MI_CONFIG_SIZE = 64  # px: the lowering's cost is the weights'; calibration and verification scale with the image


@pytest.fixture(scope="session")
def mi_config_model(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """NAME -> an NN-Stretch configs/mi model (`MI_CONFIGS/NAME.yaml`, random weights, seed 0, MI_CONFIG_SIZE px),
    written once per session: every test compiling it shares one lowering (the session's cache)."""
    from stretchc.modelbuild import build_model, load_config

    d = tmp_path_factory.mktemp("mi-configs")

    def get(name: str) -> Path:
        path = d / f"{name}.onnx"
        if not path.exists():
            onnx.save(build_model(load_config(MI_CONFIGS / f"{name}.yaml"), image_size=MI_CONFIG_SIZE, seed=0), str(path))
        return path

    return get
