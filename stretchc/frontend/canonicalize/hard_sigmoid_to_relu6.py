"""hard-sigmoid-to-relu6: `HardSigmoid(x)` becomes `Clip(x * 6a + 6b, 0, 6) * (1/6)`, which lowers to RELU6.

onnx2tf lowers HardSigmoid (`max(0, min(1, a x + b))`, the gate of MobileNetV3's squeeze-excite blocks: PP-OCR's
classifier, detector and recogniser have 9, 10 and 2) to TFLite's RELU_0_TO_1, which neither the Hexagon
delegate runs nor TFLite's quantizer quantizes: every such gate kept a PP-OCR partition off the DSP, and left a
float op inside int8 partitions. Scaled by 6, the same function is a RELU6 (after a multiply-add that the
converter folds into the convolution before it, where there is one) and a multiply by 1/6, all of which the
DSP runs and the quantizer quantizes. In float it differs from HardSigmoid by rounding only. The last node
keeps the HardSigmoid's name and output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext, is_default, replace_nodes, tensor_types
from stretchc.frontend.validate import default_opset

_FLOATS = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)


@dataclass(frozen=True)
class HardSigmoidToRelu6(Rewrite):
    """Spells HardSigmoid with Mul, Add, Clip(0, 6) and Mul."""

    name = "hard-sigmoid-to-relu6"
    summary = "HardSigmoid(x) -> Clip(x * 6 alpha + 6 beta, 0, 6) * (1/6), which lowers to RELU6 instead of RELU_0_TO_1"

    def run(self, model: onnx.ModelProto, ctx: RewriteContext) -> bool:
        if not any(is_default(n, "HardSigmoid") for n in model.graph.node):
            return False
        types = tensor_types(model)
        opset = default_opset(model) or 1
        g = model.graph

        def spelled(node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
            x = types.get(node.input[0]) if is_default(node, "HardSigmoid") else None
            if x is None or x.elem_type not in _FLOATS:
                return None
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
            dtype = helper.tensor_dtype_to_np_dtype(x.elem_type)
            base = node.name or node.output[0]

            def const(suffix: str, value: float) -> str:
                g.initializer.append(numpy_helper.from_array(np.array(value, dtype), f"{base}.{suffix}"))
                return f"{base}.{suffix}"

            scaled, shifted, clipped = f"{base}.scaled", f"{base}.shifted", f"{base}.clipped"
            if opset >= 11:  # Clip takes its bounds as inputs from opset 11 on, as attributes before
                clip = helper.make_node("Clip", [shifted, const("zero", 0.0), const("six", 6.0)], [clipped], name=f"{base}/clip")
            else:
                clip = helper.make_node("Clip", [shifted], [clipped], name=f"{base}/clip", min=0.0, max=6.0)
            return [
                helper.make_node("Mul", [node.input[0], const("scale", 6.0 * alpha)], [scaled], name=f"{base}/scale"),
                helper.make_node("Add", [scaled, const("shift", 6.0 * beta)], [shifted], name=f"{base}/shift"),
                clip,
                helper.make_node("Mul", [clipped, const("sixth", 1.0 / 6.0)], list(node.output), name=node.name),
            ]

        return replace_nodes(model, spelled)
