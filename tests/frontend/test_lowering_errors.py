"""lowering_errors: onnx2tf's and the converter's failures as one clean line naming the op and node."""

from __future__ import annotations

from onnx import TensorProto, helper

from stretchc.frontend.lowering_errors import converter_error, onnx2tf_error


def _model(op: str = "Resize") -> object:
    node = helper.make_node(op, ["x"], ["y"], name="up")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    return helper.make_model(graph)


CONVERTER_TEXT = """Could not translate MLIR to FlatBuffer./x.py:96:1: error: 'tf.ScaleAndTranslate' op is neither a custom op nor a flex op
            return fn(*args, **kwargs)
^
<unknown>:0: error: failed while converting: 'main':
Some ops in the model are custom ops, See instructions to implement custom ops: https://www.tensorflow.org/lite/guide/ops_custom
Custom ops: ScaleAndTranslate
Details:
\ttf.ScaleAndTranslate(tensor<1x4x4x1xf32>, tensor<2xi32>, tensor<2xf32>, tensor<2xf32>) -> (tensor<1x2x2x1xf32>) : {T = f32, antialias = true}
"""


def test_converter_error_names_the_tensorflow_op_its_types_and_the_onnx_node() -> None:
    err = converter_error(RuntimeError(CONVERTER_TEXT), _model(), file="m.onnx")  # type: ignore[arg-type]
    assert err.code == "unsupported-op" and err.location.node == "up"
    assert err.message == "onnx2tf lowers the model to TensorFlow op ScaleAndTranslate on f32/i32 tensors (from op Resize of node 'up'), which TFLite has no built-in kernel for"


def test_converter_error_without_a_known_op_keeps_one_specific_line() -> None:
    err = converter_error(RuntimeError("\n\nsomething broke\nmore\n"), _model(), file="m.onnx")  # type: ignore[arg-type]
    assert err.message == "TensorFlow's TFLite converter cannot convert the lowered model: something broke"


def test_onnx2tf_sys_exit_uses_its_last_error_line_without_colour_codes() -> None:
    printed = "\x1b[32mINFO:\x1b[0m fine\n\x1b[31mERROR:\x1b[0m The trace log is below.\n\x1b[31mERROR:\x1b[0m Unsupported dtype complex64\n"
    err = onnx2tf_error(SystemExit(1), printed, _model(), file="m.onnx")  # type: ignore[arg-type]
    assert err.message == "onnx2tf cannot lower the model: Unsupported dtype complex64"
