"""Model outputs made of parts: an output an ONNX Concat writes joins tensors that may have nothing in common (a
detector's pixel boxes and its [0, 1] class scores in one [1, 4 + classes, anchors] tensor). One SQNR over such an
output measures its largest part alone; the accuracy guard and `verify` hold every part to the bound by itself
(`stretchc.ir.TensorInfo.parts`)."""

from __future__ import annotations

import onnx

SEE_THROUGH = frozenset({"Identity"})  # ops between the Concat and the output that keep its values where they are


def concat_parts(model: onnx.ModelProto) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Graph output name -> (axis, the sizes of the Concat's inputs along it) for every output a Concat of two or
    more inputs writes (through `SEE_THROUGH` ops), where ONNX shape inference knows every input's size there;
    outputs of no such Concat are left out."""
    producer = {o: n for n in model.graph.node for o in n.output}
    if not any(_concat_of(producer, o.name) is not None for o in model.graph.output):
        return {}  # most models: no shape inference needed
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except (onnx.shape_inference.InferenceError, ValueError):
        return {}
    g = inferred.graph
    producer = {o: n for n in g.node for o in n.output}
    shapes: dict[str, list[int | None]] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    out: dict[str, tuple[int, tuple[int, ...]]] = {}
    for o in g.output:
        node = _concat_of(producer, o.name)
        if node is None:
            continue
        rank = len(shapes.get(node.output[0], []))
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        axis = axis + rank if axis < 0 else axis
        sizes = [shapes.get(i, [])[axis] if axis < len(shapes.get(i, [])) else None for i in node.input]
        if rank and all(s is not None for s in sizes):
            out[o.name] = (axis, tuple(int(s) for s in sizes))  # type: ignore[arg-type]
    return out


def _concat_of(producer: dict[str, onnx.NodeProto], name: str) -> onnx.NodeProto | None:
    """The Concat of two or more inputs that writes tensor `name` (through `SEE_THROUGH` ops), or None."""
    node = producer.get(name)
    while node is not None and node.op_type in SEE_THROUGH:
        node = producer.get(node.input[0])
    return node if node is not None and node.op_type == "Concat" and len(node.input) >= 2 else None
