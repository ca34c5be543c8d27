"""cast-like-to-cast: `CastLike(x, like)` becomes `Cast(x, to=<element type of like>)`.

Function bodies (Elu, LeakyRelu, PRelu, Relu, ... as exporters and onnx.inliner write them) cast their
constants with CastLike, which onnx2tf cannot convert; once the type of `like` is known it is a plain Cast.
The node keeps its name and its output; `saturate` carries over (Cast has it from opset 19 on, as CastLike).
A CastLike whose `like` type cannot be inferred is left alone (and refused later, naming it).
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import helper

from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext, is_default, tensor_types


@dataclass(frozen=True)
class CastLikeToCast(Rewrite):
    """Turns CastLike into Cast where the target type is known."""

    name = "cast-like-to-cast"
    summary = "CastLike(x, like) -> Cast(x, to=type of like)"

    def run(self, model: onnx.ModelProto, ctx: RewriteContext) -> bool:
        nodes = model.graph.node
        if not any(is_default(n, "CastLike") for n in nodes):
            return False
        types = tensor_types(model)
        changed = False
        for i, node in enumerate(nodes):
            if not is_default(node, "CastLike") or node.input[1] not in types:
                continue
            attrs = [a for a in node.attribute if a.name == "saturate"]
            cast = helper.make_node("Cast", [node.input[0]], list(node.output), name=node.name, to=types[node.input[1]].elem_type)
            cast.attribute.extend(attrs)
            nodes[i].CopyFrom(cast)
            changed = True
        return changed
