"""The accuracy guard's demotion: a partition that breaks its bound by itself is found in one pass, without
measuring the whole model once per partition, and demoted first; partitions that keep their bounds stay int8."""

from __future__ import annotations

import numpy as np
import pytest

from stretchc.native import NativeProcess
from stretchc.quantize.calibrate import WholeModel
from stretchc.quantize.guard import Evaluator, demote
from stretchc.quantize.rewrite import Forms, Quantized, adopt, partition_nodes
from stretchc.whole_model import graph_inputs

from tests.passes.quantize_partitions.test_quantize_partitions import SHAPE, _partitioned

# slow (not in `scripts/test.sh --fast`): each case calibrates the example with TFLite and measures every partition (about 7 s)
pytestmark = pytest.mark.slow

INT8 = ("s1.b0", "s1.b1", "s2.b0", "s2.b1")


def _samples(module, n: int, seed: int) -> list[list[np.ndarray]]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    return [graph_inputs(module, {"input": rng.random((1, *SHAPE)).astype(np.float32)}) for _ in range(n)]


@pytest.fixture(scope="module")
def partitioned():  # type: ignore[no-untyped-def]
    return _partitioned("mi9", {})


def _evaluator(module, native: NativeProcess, spoiled: tuple[str, ...]) -> Evaluator:  # type: ignore[no-untyped-def]
    """An evaluator with INT8's partitions quantized from one calibration; the `spoiled` ones' int8 weights are all
    zero (real int8 models that TFLite runs, computing the wrong thing)."""
    whole = WholeModel(module, _samples(module, 8, seed=0), native)
    forms = Forms(module, whole.variant("per-channel"))
    quantized = {}
    for name in INT8:
        nodes = partition_nodes(module, name, whole.variant("per-channel"))
        adopt(nodes, forms, "int8", name)
        if name in spoiled:
            for n in nodes:
                for v in n.inputs:
                    if v is not None and v.data is not None and v.dtype == "int8":
                        v.data = np.zeros_like(v.data)
        quantized[name] = Quantized(name, nodes, "int8", "per-channel")
    return Evaluator(module, quantized, forms, _samples(module, 3, seed=1), native)


@pytest.mark.parametrize("spoiled", [("s1.b1",), ("s1.b1", "s2.b0")])
def test_partitions_that_break_their_bounds_alone_are_demoted_first_together_and_the_rest_stay(partitioned, spoiled: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    module, _ = partitioned
    config = {p.name: "float32" for p in module.partitions} | dict.fromkeys(INT8, "int8")
    with NativeProcess() as native:
        evaluator = _evaluator(module, native, spoiled)
        alone = evaluator.alone(config, list(INT8), 20.0)
        measured = []
        measure = evaluator.measure
        evaluator.measure = lambda c, b: measured.append(dict(c)) or measure(c, b)  # type: ignore[method-assign]
        final, result, steps = demote(evaluator, config, list(INT8), 20.0)
        evaluator.close()
    assert max(alone[p] for p in spoiled) < 0 <= min(alone[p] for p in INT8 if p not in spoiled), alone
    assert sorted(s.partition for s in steps) == list(spoiled)  # one step
    assert all(sorted([s.partition, *s.with_]) == list(spoiled) for s in steps)
    assert result.kept and final == config | dict.fromkeys(spoiled, "float32")
    assert len(measured) == 2  # the configuration, then it without them: never once per partition to rank them
