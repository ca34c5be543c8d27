"""constants-to-initializers: `Constant` nodes of the main graph become initializers of the same name.

Function bodies (Elu, HardSigmoid, LeakyRelu, Selu, ... as exporters and onnx.inliner write them) make their
scalars with `Constant(value_float=...)`, which onnx2tf cannot convert; an initializer holds the same
tensor under the same name, whatever attribute (value, value_float(s), value_int(s)) spelled it. Sparse and
string constants are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext, is_default

_NUMERIC = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64, "value_ints": np.int64}


def _tensor(node: onnx.NodeProto) -> onnx.TensorProto | None:
    """The tensor a Constant node makes, named after its output; None for sparse and string constants."""
    if len(node.attribute) != 1:
        return None
    attr = node.attribute[0]
    value = helper.get_attribute_value(attr)
    if attr.name in _NUMERIC:
        return numpy_helper.from_array(np.array(value, dtype=_NUMERIC[attr.name]), node.output[0])
    if attr.name != "value" or value.data_type == onnx.TensorProto.STRING:
        return None
    tensor = onnx.TensorProto()
    tensor.CopyFrom(value)
    tensor.name = node.output[0]
    return tensor


@dataclass(frozen=True)
class ConstantsToInitializers(Rewrite):
    """Turns dense Constant nodes into initializers."""

    name = "constants-to-initializers"
    summary = "Constant nodes become initializers of the same name (value, value_float(s), value_int(s))"

    def run(self, model: onnx.ModelProto, ctx: RewriteContext) -> bool:
        g = model.graph
        kept, made = [], []
        for node in g.node:
            tensor = _tensor(node) if is_default(node, "Constant") else None
            if tensor is None:
                kept.append(node)
            else:
                made.append(tensor)
        if not made:
            return False
        del g.node[:]
        g.node.extend(kept)
        g.initializer.extend(made)
        return True
