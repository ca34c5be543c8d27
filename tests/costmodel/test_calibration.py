"""The cost model's calibration: unique points, one prediction path, honest (leave-one-out) error."""

from __future__ import annotations

import pytest

from stretchc.backends import processors
from stretchc.cli import main
from stretchc.costmodel import CostModel, eff_clamp, load_params
from stretchc.costmodel.accuracy import MIN_POINTS, accuracy
from stretchc.costmodel.calibration import load_calibration, predict, set_targets
from stretchc.costmodel.fit import Fitter, params_close
from stretchc.costmodel.refnets import reference_net
from stretchc.targets import known_targets, load_target

LOO_LIMIT_PCT = 15.0
LOO_MIN_POINTS = 10


@pytest.fixture(scope="module")
def every_target_accuracy():  # type: ignore[no-untyped-def]
    # the left-out predictions held_out.yaml stores (tests/costmodel/test_held_out.py checks they are a refit's)
    return accuracy([load_target(n) for n in known_targets()])


def test_leave_one_out_median_within_15_percent(every_target_accuracy, capsys) -> None:  # type: ignore[no-untyped-def]
    checked = []
    with capsys.disabled():
        for a in every_target_accuracy:
            loo = a.median(True)
            print(f"\n{a.target}: {len(a.rows)} unique points, leave-one-out median {'—' if loo is None else f'{loo:.1f}%'}")
    for a in every_target_accuracy:
        if len(a.rows) >= LOO_MIN_POINTS:
            checked.append(a.target)
            assert a.median(True) <= LOO_LIMIT_PCT, f"{a.target}: leave-one-out median {a.median(True):.1f}%"
    assert {"mi9", "pixel4", "pixel3"} <= set(checked)


def test_points_are_counted_once_per_soc() -> None:
    cal = load_calibration()
    keys = [p.key for p in cal.points()]
    assert len(keys) == len(set(keys))
    by_soc: dict[int | None, set[str]] = {}
    for n in known_targets():
        t = load_target(n)
        assert t.raw["calibration"] in cal.sets
        if t.raw["soc"]["soc_id"] is not None:
            by_soc.setdefault(t.raw["soc"]["soc_id"], set()).add(t.raw["calibration"])
    assert all(len(sets) == 1 for sets in by_soc.values())  # one SoC, one set (pixel4 and mi9: sd855)
    assert set_targets("sd855") and {t.name for t in set_targets("sd855")} == {"mi9", "pixel4"}
    for name in cal.sets:  # targets sharing a set describe the same hardware
        carriers = set_targets(name)
        assert all(all(t.raw.get(k) == carriers[0].raw.get(k) for k in (*processors(), "memory")) for t in carriers)


@pytest.mark.slow  # prices every calibration point twice, the second time one by one (about 3.5 s)
def test_fit_prices_points_like_the_calibration_prediction() -> None:
    cal = load_calibration()
    params = load_params()
    fitter = Fitter(cal.points())
    fast = fitter.predict_all(params)
    for p in cal.points():
        assert fast[p.key] == pytest.approx(predict(p, params), rel=1e-9), p.key


def test_committed_fit_is_current() -> None:
    refit = Fitter(load_calibration().points()).fit().params.to_raw()
    assert params_close(refit, load_params().to_raw()), "stale stretchc/targets/data/costmodel/fitted.yaml: run bench/fit_cost_model.py"


@pytest.mark.slow  # shares every_target_accuracy (2-4 minutes)
def test_prior_dominated_groups_are_flagged(every_target_accuracy) -> None:  # type: ignore[no-untyped-def]
    acc = {a.target: a for a in every_target_accuracy}
    assert all(g.prior_dominated for g in acc["galaxy-s21"].groups)  # no points at all
    dsp = next(g for g in acc["pixel3"].groups if g.processor == "dsp")
    assert dsp.points < MIN_POINTS and dsp.prior_dominated and "point" in dsp.flags[0]
    for g in (g for a in every_target_accuracy for g in a.groups):  # an efficiency at a clamp is flagged
        at = [c for c in ("conv", "dwconv", "mem") if getattr(g, c) >= 0.99 * eff_clamp(g.kind, c)[1] or getattr(g, c) <= 0.00505]
        assert not at or any("at the clamp" in f for f in g.flags)
    mi9 = {(g.processor, g.dtype): g for g in acc["mi9"].groups}
    assert not mi9[("cpu", "int8")].prior_dominated and mi9[("cpu", "int8")].points >= MIN_POINTS
    assert not mi9[("dsp", "int8")].prior_dominated


def test_mi9_prices_under_the_prototype_protocol() -> None:
    mi9, pixel4 = CostModel(load_target("mi9")), CostModel(load_target("pixel4"))
    assert mi9.protocol.get("cpu_kernels") == "builtin" and mi9.protocol.statistic == "min" and mi9.protocol.get("gpu_precision") == "fp16"
    assert mi9.execution("gpu", "int8").kind == "gpu-int8" and mi9.execution("dsp", "int8").kind == "dsp-int8-hexagon"
    ops = reference_net("resnet50")
    # Same SoC and points, different protocols: the minimum of runs is faster than their mean.
    assert mi9.ops_ms(ops, "cpu", "int8") < pixel4.ops_ms(ops, "cpu", "int8")


@pytest.mark.parametrize("name,mmac", [("mobilenet_v1", 569), ("mobilenet_v2", 300), ("efficientnet_lite0", 407), ("efficientnet_lite4", 2640), ("resnet50", 4100)])
def test_reference_nets_match_published_macs(name: str, mmac: int) -> None:
    macs = sum(o.flops for o in reference_net(name)) / 2e6
    assert abs(macs - mmac) / mmac < 0.1


@pytest.mark.slow  # the CLI report refits the cost model leaving each point out (10-20 s)
def test_cost_model_cli_report(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["cost-model", "--report", "-t", "pixel6"]) == 0
    out = capsys.readouterr().out
    assert "calibration set tensor-g1 (6 unique points" in out and "leave-one-out median" in out
    assert "prior-dominated" in out and "yes: 2 points (< 5)" in out


@pytest.mark.slow  # rebuilds EN-L4-CD and compiles it int8, calibrated with TFLite (about 25 s)
def test_stored_workload_is_the_compilers_and_priced_like_a_compile(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """EN-L4-CD (CPU+DSP): rebuilt from its stored configuration, its workload is the stored one, and compiled for
    mi9 with --place-from-model --precision int8 --calib random, the JSON report predicts the calibration point
    (every partition int8, priced with the conversions at the float32 model input and output)."""
    import json

    import onnx

    from stretchc.costmodel.calibration import NETWORKS_DIR, load_workloads
    from stretchc.costmodel.workload import Workload
    from stretchc.driver import compute_network_workload
    from stretchc.modelbuild import as_timed, build_model, load_config

    record = compute_network_workload("EN-L4-CD", work_dir=tmp_path)
    stored = load_workloads()["EN-L4-CD"]
    assert record == stored, "stale stretchc/costmodel/networks/workloads.json: run bench/fit_cost_model.py --refresh-workloads"
    assert Workload.from_json(stored["workload"]).regions[0].name == "stem"
    point = next(p for p in load_calibration().points(["sd855"]) if p.network and p.label == "EN-L4-CD")
    model = tmp_path / "EN-L4-CD.onnx"
    onnx.save(build_model(as_timed(load_config(NETWORKS_DIR / "EN-L4-CD.yaml")), image_size=224, seed=0), str(model))
    report = tmp_path / "report.json"
    args = ["compile", str(model), "-t", "mi9", "--place-from-model", "--precision", "int8", "--calib", "random", "--report", str(report), "-o", str(tmp_path / "b"), "-q"]
    assert main(args) == 0, capsys.readouterr().err
    rep = json.loads(report.read_text())
    assert set(rep["precision"].values()) == {"int8"} and rep["placement"] == stored["placement"]
    # The compile prices the same workload with the same code, cut into its own partitions (it merges what the
    # prototype's runtime ran one region at a time); cut per region, it is the calibration point's prediction.
    from stretchc.costmodel.calibration import NETWORK_IO_DTYPE, network_choices, point_cost_model
    from stretchc.costmodel.grouping import per_region
    from stretchc.costmodel.placement import price, simulate, workload_graph

    cm = point_cost_model(point, load_params())
    rg = workload_graph(Workload.from_json(stored["workload"]), NETWORK_IO_DTYPE)
    chosen = network_choices(point, stored["placement"])
    price(rg, cm, {r: [c] for r, c in chosen.items()})
    groups = tuple(tuple(p["regions"]) for p in rep["partitions"])
    assert rep["predicted_latency_ms"] == pytest.approx(simulate(rg, cm, chosen, groups)[0], abs=1e-3)
    assert simulate(rg, cm, chosen, per_region(rg, chosen))[0] == pytest.approx(predict(point, load_params()), abs=1e-9)
    assert rep["predicted_latency_ms"] <= predict(point, load_params()) + 1e-3  # merging never costs

def test_conversions_run_in_the_8bit_family_of_the_processor_that_can_run_them() -> None:
    cm = CostModel(load_target("mi9"))
    n = 100_000
    # The Hexagon delegate leaves float <-> 8-bit conversions to the CPU; it runs 8-bit requantization itself.
    assert cm.conversion_ms(n, "dsp", "float32", "int8") == cm.conversion_ms(n, "cpu", "float32", "int8") > 0
    assert cm.conversion_ms(n, "dsp", "int8", "uint8") != cm.conversion_ms(n, "cpu", "int8", "uint8")
    # Moving 4 + 1 bytes a value costs more than 1 + 1.
    assert cm.conversion_ms(n, "cpu", "float32", "int8") > cm.conversion_ms(n, "cpu", "int8", "uint8")


def test_every_compile_says_what_its_predictions_rest_on(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from stretchc.costmodel.accuracy import evidence

    # galaxy-s21's SoC has no measurement: everything is priors; mi9's CPU, GPU and DSP are fitted to its SoC's
    # measured networks (at least MIN_POINTS per processor, no efficiency at a clamp).
    s21 = evidence(load_target("galaxy-s21"))
    assert s21["points"] == 0 and {p["basis"] for p in s21["processors"].values()} == {"prior"}
    mi9 = evidence(load_target("mi9"))
    assert mi9["calibration_set"] == "sd855" and mi9["points"] == len(load_calibration().sets["sd855"])
    assert all(p["basis"] == "measured" and p["points"] >= MIN_POINTS for p in mi9["processors"].values())
    s23 = evidence(load_target("galaxy-s23"))
    assert s23["processors"]["cpu"]["basis"] == "prior" and s23["processors"]["npu"]["basis"] == "prior-dominated"
    # ... in the compile summary and the bundle's placement report
    import json

    from pathlib import Path

    out = tmp_path / "b.stretch"
    example = Path(__file__).resolve().parents[2] / "examples" / "branchy.onnx"
    assert main(["compile", str(example), "-t", "galaxy-s21", "-o", str(out)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("cost model:"))
    assert "from published peak figures and priors alone (no measurement of this SoC)" in line and "a prediction, not a measurement" in line
    assert json.loads((out / "report.json").read_text())["cost_model"] == s21
