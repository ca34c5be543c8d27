"""The NPU backend (Hexagon NPU of Snapdragon 8 Gen 2/3 through LiteRT's NPU accelerator): targets, op rules, a
Galaxy S23 compile that places work on the NPU, GPU and CPU, and what its manifest asks of the runtime."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stretchc.analyses import Placement
from stretchc.backends import backend
from stretchc.cli import main
from stretchc.driver import CompileOptions, CompileResult, compile_model
from stretchc.targets import load_target
from stretchc.verify import verify_bundle
from tests.conftest import settings_with
from tests.precision.images import natural_images

NPU = backend("npu")


def _value(name: str, *, const: bool = False, dtype: str = "int8", shape: tuple[int, ...] = (1, 8, 8, 4)) -> Any:
    return SimpleNamespace(name=name, is_const=const, dtype=dtype, shape=shape)


def _node(kind: str, inputs: list[Any], **attrs: Any) -> Any:
    return SimpleNamespace(kind=kind, attrs=attrs, inputs=inputs, outputs=[_value("out")])


def test_targets_say_which_phones_have_the_npu(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    for phone in ("galaxy-s23", "galaxy-s24"):
        assert "npu" in rows[phone] and "dsp" not in rows[phone]
    for phone in ("mi9", "pixel4", "pixel6"):
        assert "npu" not in rows[phone]
    assert main(["targets", "show", "galaxy-s24"]) == 0
    shown = capsys.readouterr().out
    assert "#  npu  litert-npu  yes: Hexagon NPU (HTP) (HTP v75, SM8650) through LiteRT's NPU accelerator, int8 and fp16" in shown
    assert "#  dsp  hexagon     no: galaxy-s24 cannot run the DSP: soc_id 557 (SM8650)" in shown


def test_precisions_follow_the_target() -> None:
    assert NPU.precisions(load_target("galaxy-s23")) == ("int8", "float16")
    assert load_target("mi9").unavailable("npu") == "target mi9 has no NPU that LiteRT's NPU accelerator reaches"


@pytest.mark.parametrize(
    ("node", "rule"),
    [
        (_node("CONV_2D", [_value("x"), _value("w", const=True), _value("b", const=True)], fusedActivationFunction="RELU6"), None),
        (_node("LOCAL_RESPONSE_NORMALIZATION", [_value("x")]), "op"),
        (_node("ADD", [_value("x"), _value("y")], fusedActivationFunction="SIGN_BIT"), "fused-activation"),
        (_node("PAD", [_value("x"), _value("paddings", dtype="int32", shape=(4, 2))]), "static-input"),
        (_node("PAD", [_value("x"), _value("paddings", const=True, dtype="int32", shape=(4, 2))]), None),
        (_node("CONV_2D", [_value("x"), _value("w"), _value("b", const=True)]), "const-weights"),
        (_node("MUL", [_value("x", dtype="float64"), _value("y")]), "type"),
    ],
)
def test_op_rules_name_the_rule_a_node_breaks(node: Any, rule: str | None) -> None:
    found = NPU.op_violation(node)
    assert (found.rule if found else None) == rule


@pytest.fixture(scope="module")
def s23(mi_config_model, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CompileResult]:  # type: ignore[no-untyped-def]
    """R-50-CD (NN-Stretch configs/mi) compiled for the Galaxy S23 by the cost model, one branch pinned on the GPU
    (the cost model alone puts every region it can on the NPU or, for joins, the CPU)."""
    source = mi_config_model("R-50-CD")
    out = tmp_path_factory.mktemp("s23") / "r50cd.stretch"
    return source, compile_model(source, out, CompileOptions(target="galaxy-s23", place={"s4.b1": "gpu"}, settings=settings_with("auto", calib="random", min_sqnr=20.0)))


@pytest.mark.slow  # shares the s23 compile: an NN-Stretch R-50 configuration, calibrated (about 20 s)
def test_galaxy_s23_places_work_on_the_npu_and_gpu_with_int8_npu_partitions_its_rules_accept(s23) -> None:  # type: ignore[no-untyped-def]
    _, res = s23
    parts = res.manifest["partitions"]
    # s4.b1 is pinned to the GPU; the rest is the cost model's: NPU partitions (merged: few invokes), and no CPU
    # partition is worth its invoke and syncs here
    assert {p["processor"] for p in parts} >= {"npu", "gpu"}
    assert len([p for p in parts if p["processor"] == "npu"]) < len(res.module.regions) - 1
    npu = [p for p in parts if p["processor"] == "npu"]
    assert npu and all(p["precision"] == "int8" for p in npu)
    on_npu = [n for n in res.module.graph.nodes if n.processor == "npu" and n.op.startswith("tfl.")]
    assert on_npu and [(n.kind, NPU.op_violation(n, quantized=True)) for n in on_npu if NPU.op_violation(n, quantized=True)] == []
    for p in npu:
        assert p["delegate"] == "litert-npu" and p["fallback"]["processor"] == "cpu"
        assert p["delegate_options"] == {"vendor": "qualcomm", "soc_model": "SM8550", "htp_performance_mode": "burst", "dispatch_library_dir": "/data/local/tmp/stretch"}


@pytest.mark.slow  # shares the s23 compile (about 20 s)
def test_the_report_explains_every_region_of_the_s23_compile(s23) -> None:  # type: ignore[no-untyped-def]
    _, res = s23
    report = res.analyses.get(Placement).report
    for r in report["regions"]:
        if r["override"]:
            assert r["region"] == "s4.b1" and r["processor"] == "gpu"
            continue
        others = [p for p, a in r["alternatives"].items() if a.get("eligible") and p != r["processor"]]
        assert r["why"].startswith(f"critical-path: {r['processor']} gives the least predicted end-to-end latency"), r["why"]
        assert "npu" in r["alternatives"] and all(p in r["why"] for p in others)
        assert r["precision_why"]


@pytest.mark.slow  # shares the s23 compile (about 20 s)
def test_the_s23_bundle_computes_the_model(s23) -> None:  # type: ignore[no-untyped-def]
    source, res = s23
    feeds = [{"input": x[None]} for x in natural_images(4, 64, seed=3)]
    report = verify_bundle(res.output, source, inputs=feeds)
    out = next(c for c in report.checks if c.kind == "output")
    assert out.sqnr_db is not None and out.sqnr_db >= 20.0, report.table()
