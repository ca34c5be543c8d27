"""Shape classes: ops a processor runs off its class's efficiency (a 7 x 7 depthwise window, a 3-channel stem, a
quantized RELU ...), named by the profile and priced at a measured factor where a target has one."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from stretchc.costmodel import ELTWISE, SHAPE_CLASSES, CostModel, OpProfile, profile_node, shape_class
from stretchc.costmodel.microbench import PROCESSOR, Kernel, float_graph
from stretchc.costmodel.workload import Workload
from stretchc.targets.host import describe


def _class_of(k: Kernel) -> str:
    return shape_class(float_graph(k)[0][0])


@pytest.mark.parametrize(
    ("kernel", "want"),
    [
        (Kernel("conv3x3", 28, 64, 64), ""),
        (Kernel("conv3x3s2", 112, 3, 32), "conv-narrow"),  # a 3-channel stem
        (Kernel("conv1x1", 56, 16, 96), "conv-narrow"),  # a reduction of 16
        (Kernel("conv1x1", 28, 128, 128), ""),
        (Kernel("dwconv3x3", 28, 128), ""),
        (Kernel("dwconv7x7s2", 56, 32), "dwconv-large"),
        (Kernel("dwconv5x5", 14, 672), "dwconv-5x5"),
        (Kernel("dwconv5x5s2", 28, 144), "dwconv-5x5"),
        (Kernel("relu", 28, 128), "relu"),
        (Kernel("add", 28, 128), ""),
        (Kernel("maxpool", 56, 64), ""),
        (Kernel("avgpool3x3", 28, 128), "avgpool"),
        (Kernel("subsample", 56, 64), "subsample"),
        (Kernel("pad", 56, 32), "pad"),
        (Kernel("pad", 112, 3), "pad-narrow"),  # rows of 3 elements
        (Kernel("concat", 28, 64), "concat"),
    ],
)
def test_the_profile_names_each_ops_shape_class(kernel: Kernel, want: str) -> None:
    assert _class_of(kernel) == want
    node = float_graph(kernel)[0][0]
    weights = node.inputs[1].data.size if kernel.op.startswith(("conv", "dwconv")) else 0  # type: ignore[union-attr]
    assert profile_node(node).weights == weights  # type: ignore[union-attr]
    # an op without weights and without a class of its own is priced as elementwise work
    profiled = want or (ELTWISE if not kernel.op.startswith(("conv", "dwconv", "fc")) else "")
    assert profile_node(float_graph(kernel)[0][0]).shape_class == profiled  # type: ignore[union-attr]
    assert profiled == "" or profiled in SHAPE_CLASSES


@lru_cache(maxsize=1)
def _host() -> dict:  # type: ignore[type-arg]
    return describe()  # once: it measures the memory's copy bandwidth, which varies from call to call


def _measured_target(factors: dict[str, float]) -> dict:  # type: ignore[type-arg]
    raw = _host()
    cm = CostModel(raw)
    kind = cm.execution(PROCESSOR, "float32").kind
    base = {"conv": 0.5, "dwconv": 0.2, "mem": 0.5, "op_ms": 0.001}
    return {**raw, "calibration": "host", "measured": {"kinds": {kind: {**base, "shape_classes": factors}}, "dispatch_ms": {PROCESSOR: 0.0}}}


def test_a_measured_factor_scales_the_ops_compute_and_data_movement_but_not_its_launch() -> None:
    op = profile_node(float_graph(Kernel("dwconv7x7s2", 56, 32))[0][0])
    plain, slow = CostModel(_measured_target({})), CostModel(_measured_target({"dwconv-large": 12.0}))
    assert op is not None and op.shape_class == "dwconv-large"
    launch = plain.group(PROCESSOR, "float32").op_ms
    assert slow.ops_ms([op], PROCESSOR, "float32") - launch == pytest.approx(12.0 * (plain.ops_ms([op], PROCESSOR, "float32") - launch))
    other = profile_node(float_graph(Kernel("dwconv3x3", 56, 32))[0][0])
    assert slow.ops_ms([other], PROCESSOR, "float32") == pytest.approx(plain.ops_ms([other], PROCESSOR, "float32"))  # no class: factor 1
    # without measured factors (every phone target) a shape class is priced as its class
    assert np.allclose(plain.features([op], PROCESSOR, "float32"), plain.features([op], PROCESSOR, "float32", shape_classes=False))


def test_a_stored_workload_keeps_its_ops_shape_classes() -> None:
    from stretchc.costmodel.workload import single_region

    ops = [OpProfile("dwconv", 10.0, 20.0, 1, "dwconv-large"), OpProfile("conv", 5.0, 6.0), OpProfile("conv", 5.0, 6.0, 1, "", 4.0)]
    again = Workload.from_json(single_region(ops).to_json())
    assert again.regions[0].ops == tuple(ops)
    assert single_region(ops[1:2]).to_json()["regions"][0]["ops"] == [["conv", 5.0, 6.0, 1]]  # the stored form of classless ops is unchanged
