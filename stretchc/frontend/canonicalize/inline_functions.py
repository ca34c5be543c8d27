"""inline-functions: replace calls of model-local functions by their bodies.

Exporters (PyTorch's dynamo exporter, onnxscript) write modules as model-local functions; onnx2tf converts
only plain graphs. onnx's own inliner does the work: the caller's tensor names stay as they are, the body's
intermediate tensors get names prefixed by the call site.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
import onnx.inliner

from stretchc.frontend.canonicalize.rewrite import Rewrite, RewriteContext


@dataclass(frozen=True)
class InlineFunctions(Rewrite):
    """Inlines every call of a model-local function."""

    name = "inline-functions"
    summary = "replace calls of model-local functions by their bodies (onnx.inliner)"

    def run(self, model: onnx.ModelProto, ctx: RewriteContext) -> bool:
        if not model.functions:
            return False
        inlined = onnx.inliner.inline_local_functions(model, convert_version=False)
        del inlined.functions[:]  # the inliner keeps definitions no call uses any more
        used = {n.domain for n in inlined.graph.node} | {"", "ai.onnx"}
        kept = [o for o in inlined.opset_import if o.domain in used]
        del inlined.opset_import[:]
        inlined.opset_import.extend(kept)
        model.CopyFrom(inlined)
        return True
