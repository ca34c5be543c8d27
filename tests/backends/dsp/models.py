"""Tiny ONNX models (onnx.helper) that each break one Hexagon delegate rule, plus an eligible one."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

C, H = 8, 16


def _model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], out_shape: list[int], name: str) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, C, H, H])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="stretchc-tests")
    onnx.checker.check_model(model)
    return model


def _w(name: str, shape: list[int], seed: int) -> onnx.TensorProto:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)


def conv_model(*, kernel: tuple[int, int] = (3, 3), stride: int = 1, dilation: int = 1, group: int = 1, name: str = "conv") -> onnx.ModelProto:
    """Conv(kernel, stride, dilation, group) -> Relu -> 1x1 Conv: two or more delegate ops."""
    kh, kw = kernel
    ph, pw = dilation * (kh - 1) // 2, dilation * (kw - 1) // 2
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], kernel_shape=[kh, kw], strides=[stride, stride],
                         dilations=[dilation, dilation], pads=[ph, pw, ph, pw], group=group, name="ineligible_conv"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["output"], kernel_shape=[1, 1], name="pointwise"),
    ]
    out_hw = (H + 2 * ph - dilation * (kh - 1) - 1) // stride + 1
    out_hw_w = (H + 2 * pw - dilation * (kw - 1) - 1) // stride + 1
    inits = [_w("w1", [C, C // group, kh, kw], 1), _w("b1", [C], 2), _w("w2", [C, C, 1, 1], 3), _w("b2", [C], 4)]
    return _model(nodes, inits, [1, C, out_hw, out_hw_w], name)


def sum_model() -> onnx.ModelProto:
    """Conv -> Relu -> ReduceSum over channels (keepdims): the ReduceSum lowers to tfl.SUM."""
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("ReduceSum", ["r1", "axes"], ["output"], keepdims=1, name="channel_sum"),
    ]
    inits = [_w("w1", [C, C, 3, 3], 1), _w("b1", [C], 2), numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")]
    return _model(nodes, inits, [1, 1, H, H], "sum")


INELIGIBLE = {
    # rule id -> (model factory, op kind named in the message)
    "dilation": (lambda: conv_model(dilation=2, name="dilated"), "CONV_2D"),
    "depthwise-filter-height": (lambda: conv_model(kernel=(1, 3), group=C, name="dw1x3"), "DEPTHWISE_CONV_2D"),
    "stride": (lambda: conv_model(kernel=(4, 4), stride=4, name="stride4"), "CONV_2D"),
    "sum": (sum_model, "SUM"),
}
