"""The DSP backend's Hexagon op rules: each broken rule is caught and named, with --on-ineligible=error and =cpu."""

from __future__ import annotations

from pathlib import Path

import pytest

from stretchc.analyses import Placement
from stretchc.backends.dsp.op_rules import check_node
from stretchc.compile_settings import CompileSettings
from stretchc.console import Console, set_console, get_console
from stretchc.driver import CompileOptions, compile_model
from stretchc.errors import StretchError
from stretchc.ir import Node, Value

from tests.backends.dsp.models import INELIGIBLE, conv_model


def _opts(mode: str) -> CompileOptions:
    return CompileOptions(target="mi9", place={"main": "dsp"}, settings=CompileSettings(calib="random", on_ineligible=mode))


@pytest.fixture
def console():  # type: ignore[no-untyped-def]
    old = get_console()
    c = Console(quiet=True)
    set_console(c)
    yield c
    set_console(old)


@pytest.mark.parametrize("rule", sorted(INELIGIBLE))
def test_ineligible_op_is_caught_in_both_modes(rule: str, tmp_path: Path, save_model, console) -> None:  # type: ignore[no-untyped-def]
    factory, kind = INELIGIBLE[rule]
    path = save_model(factory())
    with pytest.raises(StretchError) as exc:
        compile_model(path, tmp_path / "err.stretch", _opts("error"))
    err = exc.value
    assert err.code == "ineligible-op"
    assert f"rule {rule}:" in err.message and f"tfl.{kind}" in err.message
    assert err.location.branch == "main" and err.location.node
    assert not (tmp_path / "err.stretch").exists()

    result = compile_model(path, tmp_path / "cpu.stretch", _opts("cpu"))
    warnings = [d for d in console.diagnostics if d.severity == "warning" and d.code == "ineligible-op"]
    assert warnings and any(f"rule {rule}:" in d.message and f"tfl.{kind}" in d.message for d in warnings)
    assert all(p["processor"] == "cpu" for p in result.manifest["partitions"])
    assert result.analyses.get(Placement).moved["main"]


@pytest.mark.slow  # calibrates with TFLite (about 3.5 s)
def test_eligible_model_compiles_int8_on_dsp(tmp_path: Path, save_model, console) -> None:  # type: ignore[no-untyped-def]
    result = compile_model(save_model(conv_model()), tmp_path / "ok.stretch", _opts("error"))
    (dsp,) = [p for p in result.manifest["partitions"] if p["processor"] == "dsp"]
    assert dsp["fallback"]["file"] == dsp["file"]
    kinds = {n.kind: n for n in result.module.graph.nodes if n.partition == dsp["name"]}
    assert kinds["CONV_2D"].outputs[0].dtype == "int8"
    assert all(check_node(n, quantized=True) is None for n in result.module.graph.nodes if n.kind == "CONV_2D")


def _conv(**attrs: object) -> Node:
    x = Value("x", [1, 8, 8, 4], "float32")
    import numpy as np

    w = Value("w", [4, 3, 3, 4], "float32", data=np.zeros((4, 3, 3, 4), np.float32))
    return Node("tfl.CONV_2D", [x, w, None], [Value("y", [1, 8, 8, 4], "float32")], {"fusedActivationFunction": "NONE", **attrs})


def test_rules_on_single_nodes() -> None:
    assert check_node(_conv()) is None
    assert check_node(_conv(fusedActivationFunction="TANH")).rule == "fused-activation"  # type: ignore[union-attr]
    assert check_node(_conv(strideH=4)).rule == "stride"  # type: ignore[union-attr]
    assert check_node(_conv(dilationWFactor=2)).rule == "dilation"  # type: ignore[union-attr]
    assert check_node(_conv(version=4), quantized=False) is None
    x = Value("x", [1, 2, 2, 2, 2], "float32")
    assert check_node(Node("tfl.RELU", [x], [Value("y", [1, 2, 2, 2, 2], "float32")])).rule == "rank"  # type: ignore[union-attr]
    assert check_node(Node("tfl.GATHER", [Value("a", [4], "float32")], [Value("b", [4], "float32")])).rule == "op"  # type: ignore[union-attr]


def test_hexagon_rules_are_never_silently_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12 item 13: an ImportError of stretchc.backends.dsp.op_rules used to turn the DSP rules off."""
    import sys

    from stretchc.costmodel.placement import EligibilityContext, eligibility

    monkeypatch.setitem(sys.modules, "stretchc.backends.dsp.op_rules", None)  # importing it now raises ImportError
    x, y = Value("x", (1, 8, 8, 4), "float32"), Value("y", (1, 8, 8, 4), "float32")
    node = Node("tfl.SUM", [x], [y])
    reason = eligibility(EligibilityContext(region="s1.b0", nodes=[node], target=None, calibrated=True), "dsp")
    assert reason is not None and "rule sum" in reason
