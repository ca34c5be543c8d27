"""assign-delegates{policy=critical-path}: never predicted slower than other placements; overrides win."""

from __future__ import annotations

import itertools

import pytest

from stretchc.analyses import Placement
from stretchc.costmodel import CostModel
from stretchc.costmodel.placement import plan
from stretchc.passmanager import PassContext, parse_pipeline
from stretchc.targets import load_target

from tests.conftest import example_with_regions


@pytest.fixture(scope="module")
def module():  # type: ignore[no-untyped-def]
    return example_with_regions()


@pytest.mark.parametrize("target", ["mi9", "pixel6", "pixel3"])
def test_optimiser_no_slower_than_any_configured_placement(module, target) -> None:  # type: ignore[no-untyped-def]
    t = load_target(target)
    branches = [r.name for r in module.regions if r.kind == "branch"]
    best = plan(module, t)["predicted_latency_ms"]
    procs = ["cpu", "gpu"]
    for combo in itertools.product(procs, repeat=len(branches)):
        configured = dict(zip(branches, combo))
        conf = plan(module, t, fixed=configured, optimise_free=False)
        assert best <= conf["predicted_latency_ms"] + 1e-6


def test_optimiser_with_dsp_no_slower_than_dsp_configuration(module) -> None:  # type: ignore[no-untyped-def]
    t = load_target("mi9")
    configured = {r.name: ("dsp" if r.kind == "branch" and r.branch == 1 else "cpu") for r in module.regions}
    conf = plan(module, t, fixed=configured, calibrated=True, optimise_free=False)
    opt = plan(module, t, calibrated=True, seeds=[configured])
    assert opt["predicted_latency_ms"] <= conf["predicted_latency_ms"] + 1e-6


def test_overrides_win_and_are_reported(module) -> None:  # type: ignore[no-untyped-def]
    rep = plan(module, load_target("mi9"), fixed={"s1.b1": "gpu"})
    row = next(r for r in rep["regions"] if r["region"] == "s1.b1")
    assert rep["placement"]["s1.b1"] == "gpu" and row["override"] and "override" in row["why"]


def test_float_pipeline_never_picks_dsp_and_explains_why(module) -> None:  # type: ignore[no-untyped-def]
    rep = plan(module, load_target("mi9"))
    assert "dsp" not in rep["placement"].values()
    for r in rep["regions"]:
        assert not r["alternatives"]["dsp"]["eligible"] and "--calib" in r["alternatives"]["dsp"]["reason"]
    rep6 = plan(module, load_target("pixel6"))
    assert "no Hexagon" in rep6["regions"][0]["alternatives"]["dsp"]["reason"]


def test_concurrent_branches_cost_their_maximum(module) -> None:  # type: ignore[no-untyped-def]
    fixed = {r.name: "cpu" for r in module.regions} | {"s2.b1": "gpu"}  # unpinned regions would be optimised
    rep = plan(module, load_target("mi9"), fixed=fixed, optimise_free=False)
    tl = {r: t for t in rep["timeline"] for r in t["regions"]}  # the partition each region runs in
    a, b = tl["s2.b0"], tl["s2.b1"]
    # The GPU branch starts as soon as its input has crossed to the GPU, whatever the CPU branch does.
    cm = CostModel(load_target("mi9"))
    ready = max(tl[e["from"]]["end_ms"] + cm.transfer_ms(e["bytes"], rep["placement"][e["from"]], "gpu") for e in rep["edges"] if e["to"] == "s2.b1")
    assert b["start_ms"] == pytest.approx(ready, abs=1e-3)
    assert b["end_ms"] > a["start_ms"]  # so they overlap unless the input crossing takes longer than the CPU branch
    c = tl["s2.b2"]  # on the CPU like s2.b0: one partition, the two run one after the other inside it
    assert c is a and a["regions"] == ["s2.b0", "s2.b2"]


def test_pass_records_prediction(module) -> None:  # type: ignore[no-untyped-def]
    from stretchc.passes.assign_delegates import AssignDelegates

    ctx = PassContext(target=load_target("mi9"), pipeline=parse_pipeline("find-branches,assign-delegates"))
    AssignDelegates().run(module, ctx)
    placed = ctx.analyses.get(Placement)
    assert placed is not None and placed.predicted_latency_ms > 0
    assert placed.report["policy"] == "critical-path"
    assert AssignDelegates().spelled() == "assign-delegates{policy=critical-path,grouping=cost}"  # the precision policy is a compile setting
