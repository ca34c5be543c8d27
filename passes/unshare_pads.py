"""unshare-pads: give every consumer of a shared PAD its own copy.

In ONNX each strided convolution pads its own input. onnx2tf lowers that padding to an explicit PAD (or
PADV2) op, and TensorFlow's converter then merges identical PADs of the same tensor. When two branches of a
stage start with the same strided convolution, they end up reading one PAD, which ties the branches
together: find-branches would see one branch where the model has two. Copying the PAD per consumer
restores the model's own structure (a PAD is a cheap copy, and each branch then owns its padding).
"""

from __future__ import annotations

from dataclasses import dataclass

from stretchc.ir import Module, Node, Value
from stretchc.passmanager import Pass, PassContext, register_pass

PAD_KINDS = ("PAD", "PADV2", "MIRROR_PAD")


@register_pass
@dataclass(frozen=True)
class UnsharePads(Pass):
    """Copies each PAD whose result has several consumer nodes, one copy per extra consumer."""

    name = "unshare-pads"
    summary = "copy shared PAD ops per consumer (the converter merges the paddings of parallel branches)"

    def run(self, module: Module, ctx: PassContext) -> bool:
        g = module.graph
        changed = False
        for node in list(g.nodes):
            if node.kind not in PAD_KINDS or len(node.outputs) != 1:
                continue
            out = node.outputs[0]
            consumers = out.users
            if len(consumers) < 2 or any(v is out for v in g.outputs):
                continue
            anchor = node
            for k, consumer in enumerate(consumers[1:], start=1):
                copy_out = Value(f"{out.name}.{k}", out.shape, out.dtype, quant=out.quant)
                copy = Node(node.op, node.inputs, [copy_out], dict(node.attrs), loc=node.loc)
                for user, idx in list(out.uses):
                    if user is consumer:
                        user.set_input(idx, copy_out)
                g.insert_after(anchor, copy)
                anchor = copy
            changed = True
        return changed
