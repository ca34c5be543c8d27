"""The cost model reproduces its calibration points (median absolute percentage error <= 20%)."""

from __future__ import annotations

import pytest

from stretchc.cli import main
from stretchc.costmodel import calibration_table
from stretchc.costmodel.fit import fit_target, mape
from stretchc.costmodel.refnets import reference_net
from stretchc.targets import known_targets, load_target


def test_calibration_mape_within_20_percent(capsys) -> None:  # type: ignore[no-untyped-def]
    rows = []
    for n in known_targets():
        rows += [(n, r) for r in calibration_table(load_target(n))]
    with capsys.disabled():
        print(f"\n{'target':<11} {'model':<19} {'dtype':<8} {'proc':<4} {'measured':>9} {'predicted':>9} {'error':>7}")
        for n, r in rows:
            print(f"{n:<11} {r['model']:<19} {r['dtype']:<8} {r['processor']:<4} {r['latency_ms']:9.2f} {r['predicted_ms']:9.2f} {r['error_pct']:+6.1f}%")
        print(f"MdAPE over {len(rows)} points: {mape([r for _, r in rows]):.1f}%")
    assert len(rows) >= 30
    assert mape([r for _, r in rows]) <= 20.0


@pytest.mark.parametrize("name,mmac", [("mobilenet_v1", 569), ("mobilenet_v2", 300), ("efficientnet_lite0", 407), ("efficientnet_lite4", 2640), ("resnet50", 4100)])
def test_reference_nets_match_published_macs(name: str, mmac: int) -> None:
    ops = reference_net(name, "float32")
    macs = sum(o.flops for o in ops if o.cls != "mem") / 2e6
    assert abs(macs - mmac) / mmac < 0.1


def test_committed_fit_is_current() -> None:
    for n in known_targets():
        raw = load_target(n).raw
        if raw.get("calibration"):
            assert fit_target(raw) == {k: v for k, v in raw["cost"]["efficiency"].items() if k in fit_target(raw)}


def test_cost_model_cli_report(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["cost-model", "--report", "-t", "mi9"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite4" in out and "median absolute percentage error" in out
