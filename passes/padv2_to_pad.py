"""padv2-to-pad: zero-pad the lowest-value padding of a max-pool whose input is never negative.

ONNX MaxPool pads with -inf; onnx2tf lowers a padded max-pool to PADV2 (constant = lowest float) followed by
MAX_POOL_2D(VALID). The Hexagon delegate has no PADV2, so a ResNet stem (conv+relu, 3x3/s2 max-pool with
padding 1) could not run on the DSP. When the padded tensor is produced by a RELU/RELU6 (an op with that fused
activation, or the activation op itself) it is >= 0 everywhere; if moreover the PADV2's constant is <= 0, the
PADV2 feeds only VALID MAX_POOL_2D ops, and every pooling window holds at least one real element (the padding
is smaller than the filter on every side), then padding with 0 gives exactly the same result: the rewrite to
PAD (zero padding, no constant operand) is exact, so it applies whatever processor runs the ops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stretchc.ir import Module, Node, Value
from stretchc.passmanager import Pass, PassContext, register_pass

NON_NEGATIVE_ACTIVATIONS = ("RELU", "RELU6")


def non_negative(v: Value) -> bool:
    """Whether `v` is >= 0 by construction (produced by RELU/RELU6 or an op with that fused activation)."""
    p = v.producer
    if p is None or len(p.outputs) != 1:
        return False
    return p.kind in NON_NEGATIVE_ACTIVATIONS or str(p.attrs.get("fusedActivationFunction", "NONE")) in NON_NEGATIVE_ACTIVATIONS


def _pool_sees_real_element(pool: Node, pads: np.ndarray) -> bool:
    a = pool.attrs
    if pool.kind != "MAX_POOL_2D" or a.get("padding") != "VALID" or pool.inputs[0] is None:
        return False
    fh, fw = int(a.get("filterHeight", 1)), int(a.get("filterWidth", 1))  # type: ignore[arg-type]
    return bool(np.all(pads[1] < fh) and np.all(pads[2] < fw))


def rewritable(node: Node, graph_outputs: list[Value]) -> bool:
    if node.kind != "PADV2" or len(node.inputs) != 3 or len(node.outputs) != 1:
        return False
    x, pads, const = node.inputs
    out = node.outputs[0]
    if x is None or pads is None or const is None or not pads.is_const or not const.is_const:
        return False
    if x.dtype != "float32" or len(x.shape) != 4 or any(v is out for v in graph_outputs):
        return False
    p = np.asarray(pads.data).reshape(-1, 2)
    if p.shape != (4, 2) or np.any(p < 0) or np.any(p[0] != 0) or np.any(p[3] != 0):
        return False  # only spatial padding of an NHWC tensor
    if np.asarray(const.data).size != 1 or not float(np.asarray(const.data).reshape(-1)[0]) <= 0.0:
        return False
    if not out.users or any(not _pool_sees_real_element(u, p) for u in out.users):
        return False
    return non_negative(x)


@register_pass
@dataclass(frozen=True)
class Padv2ToPad(Pass):
    """Rewrites PADV2 (lowest-value padding) in front of max-pools of non-negative tensors into zero PAD."""

    name = "padv2-to-pad"
    summary = "zero-pad max-pools of RELU outputs (exact; the Hexagon delegate has no PADV2)"

    def run(self, module: Module, ctx: PassContext) -> bool:
        g = module.graph
        changed = False
        for node in list(g.nodes):
            if not rewritable(node, g.outputs):
                continue
            x, pads, _ = node.inputs
            out = node.outputs[0]
            attrs: dict[str, object] = {"version": 1}
            if "options" in node.attrs:
                attrs["options"] = "PadOptions"
            index = g.nodes.index(node)
            g.remove(node)  # frees `out` for the PAD
            new = Node("tfl.PAD", [x, pads], [out], attrs, loc=node.loc)
            new.region, new.processor, new.partition = node.region, node.processor, node.partition
            g.nodes.insert(index, new)
            changed = True
        return changed
