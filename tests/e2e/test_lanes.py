"""A processor with several lanes (the host target's CPU, one lane per core): the cost model may run branches on
two CPU lanes at the same time, the bundle's schedule has one lane per (processor, index), both runtimes run the
lanes concurrently, and the lanes survive an IR dump read back.

The model is the bundled example (two stages of two and three branches); the target is this machine described
as `stretchc calibrate` describes it, with fixed efficiencies (tests.conftest.host_target_file)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from stretchc.analyses import Placement
from stretchc.console import Console, set_console
from stretchc.driver import CompileOptions, CompileResult, compile_model
from stretchc.examples import example_model
from stretchc.irtext import parse_module, print_module
from stretchc.runtime.host import HostRuntime, Profile
from stretchc.targets.host import describe
from stretchc.verify import verify_bundle

from tests.conftest import host_target_file


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, CompileResult]]:
    """The example compiled with the command line's defaults for this machine with one and with two CPU lanes."""
    root = tmp_path_factory.mktemp("lanes")
    model = root / "example.onnx"
    onnx.save(example_model(), str(model))
    set_console(Console(quiet=True, stream=sys.stderr))
    out = {}
    for lanes in (1, 2):
        target = host_target_file(root, lanes)
        out[lanes] = (model, compile_model(model, root / f"example-{lanes}.stretch", CompileOptions(target=str(target))))
    return out


def _lanes(result: CompileResult) -> dict[tuple[str, int], list[str]]:
    return {(la["processor"], la["index"]): la["partitions"] for la in result.manifest["schedule"]["lanes"]}


def test_the_host_target_has_a_lane_per_core() -> None:
    assert describe()["cpu"]["lanes"] == (os.cpu_count() or 1)


def test_two_lanes_run_branches_at_the_same_time(compiled: dict[int, tuple[Path, CompileResult]]) -> None:
    one, two = compiled[1][1], compiled[2][1]
    assert set(_lanes(one)) == {("cpu", 0)}
    lanes = _lanes(two)
    assert set(lanes) == {("cpu", 0), ("cpu", 1)} and all(lanes.values()), lanes
    predicted = two.manifest["predicted_latency_ms"], one.manifest["predicted_latency_ms"]
    assert predicted[0] < predicted[1], predicted  # what the second lane is for
    timeline = _placement(two)["timeline"]
    first = [t for t in timeline if t["lane"] == 0]
    second = [t for t in timeline if t["lane"] == 1]
    # some partition of the second lane runs while one of the first does (the predicted timeline overlaps)
    assert any(a["start_ms"] < b["end_ms"] and b["start_ms"] < a["end_ms"] for a in first for b in second), timeline
    # the partitions carry their lane; every lane's partitions are the schedule's
    for p in two.module.partitions:
        assert p.name in lanes[(p.processor, p.lane)]
    # each lane on a core of its own (one thread each), when there are cores enough
    cores = {k: {tuple(q["affinity"]) for q in two.manifest["partitions"] if q["name"] in names} for (_, k), names in lanes.items()}
    if (os.cpu_count() or 1) >= 2:
        assert cores == {0: {(0,)}, 1: {(1,)}}, cores


def _placement(result: CompileResult) -> dict[str, Any]:
    placed = result.analyses.get(Placement)
    assert placed is not None and placed.report is not None
    return placed.report


def test_a_two_lane_bundle_verifies_and_the_runtime_runs_both_lanes(compiled: dict[int, tuple[Path, CompileResult]]) -> None:
    model, result = compiled[2]
    report = verify_bundle(result.output, model, samples=3, seed=0)
    assert report.ok, report.table()
    profile = Profile()
    rng = np.random.default_rng(0)
    HostRuntime(result.output).run({i["name"]: rng.standard_normal(i["shape"]).astype(i["dtype"]) for i in result.manifest["inputs"]}, profile=profile)
    assert {lane for _, _, lane in profile.partitions.values()} == {"cpu", "cpu.1"}


def test_lanes_survive_an_ir_dump_read_back(compiled: dict[int, tuple[Path, CompileResult]]) -> None:
    module = compiled[2][1].module
    text = print_module(module)
    assert " lane=1" in text and '"lane":1' in text
    again = parse_module(text)
    assert print_module(again) == text
    assert [(p.name, p.lane) for p in again.partitions] == [(p.name, p.lane) for p in module.partitions]
