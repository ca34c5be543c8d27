"""convert-opset: bring the model's default-domain opset into the range the lowering reads.

onnx2tf 1.28.8 converts opsets 9-21 (LOWERING_OPSETS; its README lists 11-20 as tested). Current exporters
write up to the newest opset the pinned onnx package defines; onnx's own version converter rewrites a
model outside the range to its nearest end (newer models down to 21, older ones up to 9). Node and tensor
names are kept by the converter.

The converter lacks adapters for some version bumps that only widened the accepted types (opset 22 added
bfloat16 to GlobalMaxPool and others). When it fails, and every op of the model has the same inputs,
outputs and attributes (names, kinds, defaults) at both opsets, the model is relabelled to the target
opset and must then pass the full ONNX check there. Otherwise, an op that did not exist yet at the target
opset, or that neither way converts, is refused naming the op, its node and both opsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import onnx
import onnx.version_converter

from stretchc.errors import StretchError, first_line
from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext
from stretchc.frontend.validate import default_opset, node_label

LOWERING_OPSETS = (9, 21)


def _signature(op: str, version: int) -> tuple[object, ...]:
    """What a node of `op` may carry at `version`: inputs, outputs, attributes with kinds and defaults."""
    schema = onnx.defs.get_schema(op, version, "")
    attrs = sorted((n, int(a.type), a.required, a.default_value.SerializeToString()) for n, a in schema.attributes.items())
    return tuple((i.name, i.option) for i in schema.inputs), tuple((o.name, o.option) for o in schema.outputs), tuple(attrs)


def _relabelled(model: onnx.ModelProto, opset: int, target: int) -> onnx.ModelProto | None:
    """The model declared at `target` when no op's signature differs between the two opsets and it checks."""
    ops = {n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")}
    try:
        if any(_signature(op, opset) != _signature(op, target) for op in ops):
            return None
    except onnx.defs.SchemaError:  # an op with no schema at one of the two opsets
        return None
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for entry in out.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = target
    try:
        onnx.checker.check_model(out, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError):
        return None
    return out


@dataclass(frozen=True)
class ConvertOpset(Rewrite):
    """Converts the model to the nearest opset the lowering reads, with onnx.version_converter."""

    name = "convert-opset"
    summary = "convert the default-domain opset into the lowering's range (onnx.version_converter)"

    def run(self, model: onnx.ModelProto, ctx: RewriteContext) -> bool:
        opset = default_opset(model)
        low, high = LOWERING_OPSETS
        if opset is None or low <= opset <= high:
            return False
        target = min(max(opset, low), high)
        where = f"the model is opset {opset}; the lowering (onnx2tf) reads opsets {low}-{high}"
        default_nodes = [n for n in model.graph.node if n.domain in ("", "ai.onnx")]
        for node in default_nodes:
            try:
                onnx.defs.get_schema(node.op_type, target, "")
            except onnx.defs.SchemaError:
                raise StretchError(
                    "unsupported-opset",
                    f"op {node.op_type} of node {node_label(node)!r} does not exist at opset {target}: {where}",
                    file=ctx.file,
                    node=node_label(node),
                ) from None
        try:
            converted = onnx.version_converter.convert_version(model, target)
        except Exception as exc:  # the converter reports a missing adapter as RuntimeError/ValueError
            relabelled = _relabelled(model, opset, target)
            if relabelled is not None:
                model.CopyFrom(relabelled)
                return True
            message = re.sub(r"^\S*\.(?:h|cc|cpp):\d+: \w+: ", "", first_line(str(exc)))
            culprit = next((n for n in default_nodes if re.search(rf"\b{re.escape(n.op_type)}\b", message)), None)
            what = f"op {culprit.op_type} of node {node_label(culprit)!r}" if culprit else "the model"
            raise StretchError(
                "unsupported-opset",
                f"onnx cannot convert {what} to opset {target} ({message}): {where}",
                file=ctx.file,
                node=node_label(culprit) if culprit else None,
            ) from None
        model.CopyFrom(converted)
        return True
