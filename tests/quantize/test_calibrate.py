"""The whole-model calibration: every value gets the range it takes, even one a TFLite op overwrites in place
(TFLite's calibrator logs an op's inputs again after the op ran, and the arena planner lets ADD write its output
over an input nothing else reads: a small residual added to a large value took the sum's range)."""

from __future__ import annotations

import numpy as np
import pytest

from stretchc.ir import Graph, Module, Node, Value
from stretchc.native import NativeProcess
from stretchc.quantize.calibrate import WholeModel, in_place_inputs, int8_range

SHAPE = (1, 8, 8, 4)


def _residual() -> Module:
    """x -> big = 100 x, tiny = 0.001 x -> y = tiny + big -> out = relu(y): `tiny` is read once, by an ADD of its
    size, as its first input (the one TFLite shares first); the ADD's output is no graph output (TFLite never
    writes a graph output over an input)."""
    g = Graph()
    x = Value("x", SHAPE, "float32")
    big, tiny, y, out = (Value(n, SHAPE, "float32") for n in ("big", "tiny", "y", "out"))

    def mul(inp: Value, k: float, dst: Value) -> Node:
        c = Value(f"k{dst.name}", (1,), "float32", data=np.array([k], np.float32))
        return Node("tfl.MUL", [inp, c], [dst], {"options": "MulOptions", "fusedActivationFunction": "NONE", "version": 1})

    g.inputs, g.outputs = [x], [out]
    g.nodes = [
        mul(x, 100.0, big), mul(x, 0.001, tiny),
        Node("tfl.ADD", [tiny, big], [y], {"options": "AddOptions", "fusedActivationFunction": "NONE", "version": 1}),
        Node("tfl.RELU", [y], [out], {"version": 1}),
    ]
    return Module(g)


def test_values_an_op_may_overwrite_in_place_are_the_ones_read_once_by_a_node_of_their_size() -> None:
    m = _residual()
    assert [v.name for v in in_place_inputs(m.graph)] == ["big", "tiny", "y"]  # out is an output; x a graph input
    add = m.graph.nodes[2]
    add.set_input(1, add.inputs[0])  # tiny + tiny: read twice, never shared (and big not read)
    assert [v.name for v in in_place_inputs(m.graph)] == ["y"]


@pytest.mark.slow  # starts TFLite's native child process and calibrates (about 5 s)
def test_an_input_added_in_place_keeps_its_own_calibrated_range() -> None:
    m = _residual()
    rng = np.random.default_rng(0)
    samples = [[rng.random(SHAPE).astype(np.float32)] for _ in range(4)]
    top = max(float(s[0].max()) for s in samples)
    with NativeProcess() as native:
        whole = WholeModel(m, samples, native)
        own = whole.own_quant()
        variant = whole.variant("per-channel")
    # tiny's range is [0, 0.001 max x], not the sum's [0, 100.001 max x]
    assert own["tiny"].scale[0] == pytest.approx(int8_range(0.0, 0.001 * top).scale[0], rel=1e-5)
    assert own["big"].scale[0] == pytest.approx(int8_range(0.0, 100.0 * top).scale[0], rel=1e-5)
    assert own["y"].scale[0] == pytest.approx(int8_range(0.0, 100.001 * top).scale[0], rel=1e-5)
    # the quantizer saw the float model as it is: one output, and tiny quantized with its own scale
    assert len(variant.outputs) == 1
    assert variant.value_map()["tiny"].quant.scale[0] == pytest.approx(own["tiny"].scale[0], rel=1e-5)
