"""The cost model's stored held-out errors: current, what a refit gives, and the error band every compile prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from stretchc.cli import main
from stretchc.costmodel.accuracy import evidence
from stretchc.costmodel.calibration import load_calibration
from stretchc.costmodel.fit import Fitter, error_pct
from stretchc.costmodel.held_out import family, load_held_out, stale
from stretchc.targets import load_target

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "branchy.onnx"


def test_the_stored_errors_follow_from_the_present_calibration() -> None:
    assert not stale(), "stale stretchc/targets/data/costmodel/held_out.yaml: run bench/fit_cost_model.py"
    points = load_held_out()["points"]
    assert sorted(points) == sorted(p.key for p in load_calibration().points())


def test_a_stored_error_is_what_a_fit_without_the_point_predicts() -> None:
    cal = load_calibration()
    fitter = Fitter(cal.points())
    stored = load_held_out()["points"]
    nets = [p for p in cal.points() if p.network]
    point = nets[0]  # one left out, and its whole family left out
    left = fitter.fit(exclude=[point.key]).predictions[point.key]
    assert abs(error_pct(left, point.latency_ms) - stored[point.key]["left_out"]) < 0.01
    kin = [p.key for p in nets if family(p.label) == family(point.label)]
    assert len(kin) == 5
    without = fitter.fit(exclude=kin).predictions[point.key]
    assert abs(error_pct(without, point.latency_ms) - stored[point.key]["family_left_out"]) < 0.01


def test_the_band_is_the_held_out_error_of_the_groups_a_plan_uses(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    mi9 = evidence(load_target("mi9"))
    stored = load_held_out()["points"]
    sd855 = [row for key, row in stored.items() if key.startswith("sd855:")]
    # cpu int8 on mi9 runs TFLite's builtin kernels (the prototype's protocol)
    expected = float(np.median([abs(r["left_out"]) for r in sd855 if "cpu-int8-builtin" in r["kinds"]]))
    assert mi9["groups"]["cpu/int8"]["left_out_median_pct"] == round(expected, 1)
    fam = [abs(r["family_left_out"]) for r in sd855 if "family_left_out" in r]
    assert mi9["family_left_out"] == {"points": 15, "median_pct": round(float(np.median(fam)), 1), "worst_pct": round(max(fam), 1)}
    out = tmp_path / "b.stretch"
    assert main(["compile", str(EXAMPLE), "-t", "mi9", "-o", str(out), "--precision", "float"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("cost model:"))
    report = json.loads((out / "report.json").read_text())
    used = {f"{p['processor']}/{p['precision']}" for p in report["partitions"]}
    band = max(report["cost_model"]["groups"][g]["left_out_median_pct"] for g in used)
    assert re.search(rf"typical error \+-{band:.0f}% .* up to {max(fam):.0f}% on network families the fit never saw", line), line


def test_a_prior_dominated_group_a_plan_uses_is_named(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "b.stretch"
    assert main(["compile", str(EXAMPLE), "-t", "pixel6", "-o", str(out)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("cost model:"))
    report = json.loads((out / "report.json").read_text())
    for p in report["partitions"]:
        group = report["cost_model"]["groups"][f"{p['processor']}/{p['precision']}"]
        if group["basis"] == "prior-dominated":
            assert re.search(rf"\b{p['processor']} {p['precision']}\b[^;]*prior-dominated", line), line
