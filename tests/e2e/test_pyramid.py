"""A feature-pyramid network (`stretchc.examples.pyramid_model`: a strided backbone c2..c5, a lateral path per
scale upsampled to the c2 scale, one concat, a head; the shape of a text detector's neck) has parallel paths
that start at different tensors. find-branches finds them as one multi-entry stage of four branches; the model
compiles for pixel6 with the default options, verifies against ONNX Runtime, and the cost model stretches it
over the CPU and the GPU (at 160 px it predicts about 1.18x over the GPU alone: the lateral branches run on
both processors at once)."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
import pytest

from stretchc.analyses import Placement
from stretchc.console import Console, set_console
from stretchc.driver import CompileOptions, CompileResult, compile_model
from stretchc.examples import pyramid_model
from stretchc.verify import verify_bundle

# slow (not in `scripts/test.sh --fast`): the shared compile of the 160 px pyramid lowers it and measures it in TFLite's native process (about 3 s)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CompileResult]:
    """The pyramid (160 px) compiled for pixel6 with the command line's defaults."""
    root = tmp_path_factory.mktemp("pyramid")
    model = root / "pyramid.onnx"
    onnx.save(pyramid_model(), str(model))
    set_console(Console(quiet=True, stream=sys.stderr))
    return model, compile_model(model, root / "pyramid.stretch", CompileOptions(target="pixel6"))


def test_the_lateral_paths_are_one_multi_entry_stage(compiled: tuple[Path, CompileResult]) -> None:
    module = compiled[1].module
    assert [r.name for r in module.regions] == ["stem", "s1.b0", "s1.b1", "s1.b2", "s1.b3", "s1.join", "head"]
    entries = set()
    for r in ("s1.b0", "s1.b1", "s1.b2", "s1.b3"):
        nodes = module.nodes_of(region=r)
        inside = {id(v) for n in nodes for v in n.outputs}
        entries |= {v.name.removesuffix(".sync") for n in nodes for v in n.inputs if v is not None and not v.is_const and id(v) not in inside}
    assert len(entries) == 3  # the branches start at c2, c3 and c4 (c5 only feeds its lateral: it is in s1.b0)


def test_it_is_placed_on_the_cpu_and_the_gpu_and_pays(compiled: tuple[Path, CompileResult]) -> None:
    report = compiled[1].analyses.get(Placement).report
    assert report["speedup_over_best_single"] > 1.0, (report["predicted_latency_ms"], report["best_single"])
    branches = [t for t in report["timeline"] if any(r.startswith("s1.b") for r in t["regions"])]
    assert {t["processor"] for t in branches} == {"cpu", "gpu"}
    cpu, gpu = (min((t for t in branches if t["processor"] == p), key=lambda t: t["start_ms"]) for p in ("cpu", "gpu"))
    assert max(cpu["start_ms"], gpu["start_ms"]) < min(cpu["end_ms"], gpu["end_ms"])  # at the same time


def test_it_verifies_against_onnxruntime(compiled: tuple[Path, CompileResult]) -> None:
    model, result = compiled
    report = verify_bundle(result.output, model, samples=3, seed=0)
    assert report.ok, report.table()
    assert not report.unmatched, report.table()
