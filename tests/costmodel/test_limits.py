"""Placement under the target's delegate limits: the search keeps to them, the report says what bound and what
it cost, explain names the limit, and an Inception-style model compiles for mi9 with the default placement."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import yaml

from stretchc.cli import main
from stretchc.costmodel import CostModel
from stretchc.costmodel.grouping import group, per_region
from stretchc.costmodel.limits import repair, target_limits, violations
from stretchc.costmodel.placement import Choice, plan, price, region_graph, simulate
from stretchc.examples import branched_model
from stretchc.frontend.lower import lower_to_tflite
from stretchc.frontend.module import build_module
from stretchc.passes.find_branches import FindBranches
from stretchc.passmanager import PassContext
from stretchc.targets import DATA_DIR, load_target

# Ten stages of four branches (an Inception-v3-like shape), small enough to compile in seconds.
INCEPTION_STYLE = {"branches": (4,) * 10, "size": 48, "width": 96, "depth": 2, "name": "inception_style"}

# slow (not in `scripts/test.sh --fast`): lowers an Inception-style model (10 stages of 4 branches) and compiles it with calibration (about 25 s)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limits") / "inception_style.onnx"
    onnx.save(branched_model(**INCEPTION_STYLE), str(path))
    return path


@pytest.fixture(scope="module")
def module(model_file: Path):  # type: ignore[no-untyped-def]
    m = onnx.load(str(model_file))
    mod = build_module(m, lower_to_tflite(m, file=str(model_file)), name="inception_style", file=str(model_file))
    FindBranches().run(mod, PassContext())
    return mod


def capped_target(tmp_path: Path, cap: int) -> Path:
    """mi9 with one CPU thread and no GPU (so the DSP is worth using for every region) and at most `cap` DSP
    partitions."""
    raw = yaml.safe_load((DATA_DIR / "mi9.yaml").read_text())
    raw.update(name="mi9-capped", gpu=None)
    raw["cpu"]["threads"] = 1
    raw["delegate_limits"]["hexagon_max_partitions"] = cap
    path = tmp_path / "mi9-capped.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_violations_per_partition_of_a_grouping(module) -> None:  # type: ignore[no-untyped-def]
    t = load_target("mi9")
    rg = region_graph(module)
    cpu, dsp = Choice("cpu", "int8"), Choice("dsp", "int8")
    all_dsp = {r: dsp for r in rg.names}
    assert group(rg, all_dsp) == (tuple(rg.names),)  # one choice everywhere: the whole model is one partition
    assert not violations(rg, all_dsp, target_limits(t))
    groups = per_region(rg, all_dsp)
    assert len(groups) == len(rg.names)
    found = violations(rg, all_dsp, target_limits(t), groups)
    assert found[0].limit == "hexagon-max-partitions" and f"{len(groups)} DSP partitions" in found[0].message
    assert {v.regions for v in found if v.limit == "hexagon-min-nodes"} == {(f"s{k}.join",) for k in range(1, 11)}
    assert not violations(rg, {r: cpu for r in rg.names}, target_limits(t), per_region(rg, {r: cpu for r in rg.names}))
    assert len(group(rg, {**all_dsp, "head": Choice("dsp", "uint8")})) == 2  # a precision apart: the head is its own partition
    # Two branches of every stage on the DSP: the canonical grouping gives one DSP partition per stage (ten),
    # which breaks a cap of three; repair moves regions off the DSP until it keeps to it.
    spread = {r: (dsp if rg.kinds[r] == "branch" and int(r.rsplit(".b", 1)[1]) % 2 else cpu) for r in rg.names}
    capped = {**target_limits(t), "hexagon_max_partitions": 3}
    assert [v.limit for v in violations(rg, spread, capped)] == ["hexagon-max-partitions"]
    assert not violations(rg, spread, target_limits(t))  # ten are within the delegate's sixteen
    cm = CostModel(t)
    price(rg, cm, {r: [cpu, dsp] for r in rg.names})
    fixed = repair(rg, spread, {r: [cpu, dsp] for r in rg.names}, capped, lambda pl: simulate(rg, cm, pl)[0])
    assert not violations(rg, fixed, capped)


# The joins pinned to the CPU: the branches of each stage (on the DSP, one partition per stage) cannot merge
# across stages, so the best placement regardless of limits wants ten DSP partitions.
JOINS_ON_CPU = {f"s{k}.join": "cpu" for k in range(1, 11)}


def test_search_keeps_to_the_limits_and_reports_what_bound(module, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    capped = load_target(str(capped_target(tmp_path, 3)))
    rep = plan(module, capped, calibrated=True, fixed=JOINS_ON_CPU)
    dsp = [p["regions"] for p in rep["partitions"] if p["processor"] == "dsp"]
    assert len(dsp) <= 3
    bound = {b["limit"]: b for b in rep["limits"]}
    b = bound["hexagon-max-partitions"]
    assert b["cost_ms"] > 0 and b["cost_ms"] == pytest.approx(rep["predicted_latency_ms"] - b["wanted_ms"], abs=1e-3)
    assert "under the target's limits" in rep["method"]
    moved = [r for r in rep["regions"] if r["limit"] == "hexagon-max-partitions"]
    assert moved and all(r["processor"] != "dsp" and "target limit hexagon-max-partitions" in r["why"] for r in moved)
    assert int(b["message"].split()[0]) > 3  # the best placement regardless of limits wanted more DSP partitions
    assert not plan(module, capped, calibrated=False, fixed=JOINS_ON_CPU)["limits"]  # no DSP candidate: no limit binds


def test_inception_style_model_compiles_for_mi9_with_the_default_placement(model_file: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "mi9.stretch"
    assert main(["compile", str(model_file), "-t", "mi9", "-o", str(bundle), "--calib", "random", "--report", str(tmp_path / "r.json"), "-q"]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert len([p for p in manifest["partitions"] if p["processor"] == "dsp"]) <= 16  # the Hexagon delegate's cap
    report = json.loads((tmp_path / "r.json").read_text())
    branches = [r for r in report["regions"] if r["kind"] == "branch"]
    assert len(branches) == 40 and all(r["alternatives"]["dsp"]["eligible"] for r in branches)  # the DSP was a candidate
    assert all(r["ops"] >= 2 for r in report["regions"] if r["processor"] == "dsp")


def test_a_binding_limit_is_kept_by_the_compile_and_named_by_explain(model_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bundle = tmp_path / "capped.stretch"
    place = ",".join(f"{r}={p}" for r, p in JOINS_ON_CPU.items())
    args = ["compile", str(model_file), "-t", str(capped_target(tmp_path, 3)), "-o", str(bundle), "--calib", "random", "--place", place, "-q"]
    assert main(args) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert len([p for p in manifest["partitions"] if p["processor"] == "dsp"]) <= 3
    report = json.loads((bundle / "report.json").read_text())
    region = next(r["region"] for r in report["regions"] if r["limit"] == "hexagon-max-partitions")
    capsys.readouterr()
    assert main(["explain", str(bundle), region]) == 0
    out = capsys.readouterr().out
    assert "target limit hexagon-max-partitions" in out and "at most 3" in out and "cost" in out
