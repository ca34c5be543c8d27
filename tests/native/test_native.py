"""TFLite's native steps run in a child process: a crash there is an error naming the step, never a dead compiler."""

from __future__ import annotations

import numpy as np
import pytest

from stretchc.errors import StretchError
from stretchc.native import NativeError, NativeProcess
from stretchc.quantize.calibrate import WholeModel
from stretchc.quantize.guard import Evaluator, demote
from stretchc.quantize.rewrite import Forms, Quantized, adopt, partition_nodes
from stretchc.tflite_io import emit_model
from stretchc.ir import Node, Value
from stretchc.whole_model import graph_inputs

from tests.passes.quantize_partitions.test_quantize_partitions import SHAPE, _partitioned

# slow (not in `scripts/test.sh --fast`): every test starts TFLite's native child process, and most crash it on purpose (about 12 s)
pytestmark = pytest.mark.slow


def _samples(module, n: int, seed: int = 0) -> list[list[np.ndarray]]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    return [graph_inputs(module, {"input": rng.random((1, *SHAPE)).astype(np.float32)}) for _ in range(n)]


@pytest.fixture(scope="module")
def partitioned():  # type: ignore[no-untyped-def]
    return _partitioned("mi9", {})


def test_a_quantizer_crash_on_an_infinite_value_is_an_error_naming_the_step(partitioned) -> None:  # type: ignore[no-untyped-def]
    """One inf among the calibration values kills TFLite's quantizer with SIGSEGV; the compiler lives on."""
    module, _ = partitioned
    samples = _samples(module, 4)
    samples[1][0][0, 3, 4, 0] = np.inf
    with NativeProcess() as native:
        whole = WholeModel(module, samples, native)  # the calibrator takes it; the quantizer does not
        with pytest.raises(StretchError) as info:
            whole.variant("per-channel")
        assert native._child is None  # the dead child was reaped
    assert info.value.code == "native-crash"
    assert "TFLite's quantizer" in info.value.message and "SIGSEGV" in info.value.message


def test_the_next_request_after_a_crash_starts_a_new_child(partitioned) -> None:  # type: ignore[no-untyped-def]
    module, _ = partitioned
    bad = _samples(module, 2)
    bad[0][0][0, 0, 0, 0] = np.inf
    with NativeProcess() as native:
        calibrated = native.calibrate(_float_model(module), bad)
        with pytest.raises(NativeError) as info:
            native.quantize(calibrated, per_channel=True, per_channel_dense=True)
        assert info.value.crashed
        good = native.calibrate(_float_model(module), _samples(module, 2))
        assert len(native.quantize(good, per_channel=True, per_channel_dense=True)) > 0


def test_a_model_the_interpreter_refuses_is_a_failure_not_a_crash() -> None:
    with NativeProcess() as native:
        with pytest.raises(NativeError) as info:
            native.invoke("k", lambda: b"not a flatbuffer", [{}], [])
        assert not info.value.crashed
        assert native._child is not None and native._child.poll() is None  # the child is still serving
    assert native._child is None


def test_a_partition_the_interpreter_cannot_run_is_demoted_first_and_says_why(partitioned) -> None:  # type: ignore[no-untyped-def]
    """The guard measures a configuration using a partition TFLite cannot load as -inf dB, demotes that partition
    first, and records why (the partition's int8 model here holds an op version TFLite does not have)."""
    module, _ = partitioned
    with NativeProcess() as native:
        whole = WholeModel(module, _samples(module, 4), native)
        forms = Forms(module, whole.variant("per-channel"))
        quantized = {}
        for name in ("s1.b0", "s1.b1"):
            nodes = partition_nodes(module, name, whole.variant("per-channel"))
            adopt(nodes, forms, "int8", name)
            quantized[name] = Quantized(name, nodes, "int8", "per-channel")
        evaluator = Evaluator(module, quantized, forms, _samples(module, 2, seed=1), native)
        broken = next(p for p in evaluator.parts if p.name == "s1.b1")
        broken.models["int8"] = lambda: _unknown_op_model(forms.get(broken.inputs[0], "int8"))
        config = {p.name: "float32" for p in module.partitions} | {"s1.b0": "int8", "s1.b1": "int8"}
        assert evaluator.measure(config, 25.0).margin == float("-inf")
        final, measured, steps = demote(evaluator, config, ["s1.b0", "s1.b1"], 25.0)
        evaluator.close()
    assert steps[0].partition == "s1.b1" and "TFLite's interpreter cannot run it" in steps[0].failure
    assert final["s1.b1"] == "float32" and measured.kept and min(measured.outputs.values()) > 25.0
    assert ("s1.b1", "int8") in evaluator.failed and ("s1.b0", "int8") not in evaluator.failed


def _unknown_op_model(x: Value) -> bytes:
    """A model of one ADD at an op version no TFLite has."""
    y = Value("y", x.shape, x.dtype, quant=x.quant)
    return emit_model([Node("tfl.ADD", [x, x], [y], {"version": 99, "fused_activation_function": "NONE"})], [x], [y])


def _float_model(module) -> bytes:  # type: ignore[no-untyped-def]
    g = module.graph
    return emit_model(g.nodes, list(g.inputs), list(g.outputs))
