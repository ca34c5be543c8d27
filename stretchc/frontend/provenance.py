"""ONNX tensor names through the lowering: which ONNX tensor each lowered TFLite tensor holds.

onnx2tf builds a Keras model whose layers are named after the TensorFlow function they call
(`tf.nn.relu_3`): the ONNX node names it passes to those functions are dropped by Keras. The TFLite
converter then names every tensor after the name scopes of the TF ops fused into it
(`model/tf.nn.relu_1/Relu;model/tf.math.add_1/Add;model/tf.nn.convolution_1/convolution;...`). So the
lowering carries the ONNX names itself:

1. `name_tensors(model, simplified)`: after onnxsim, every node output is renamed to the token
   `stretchc.v<k>` of the original tensor it holds (k: its position among the node outputs of the model
   as given, `onnx_names`), or to a token that names nothing. onnxsim keeps names but not always meanings
   (`holdings` works out which survive); onnx2tf's own renaming (`:` -> `__`, ...) cannot touch a token.
2. `capture_layers()` / `name_layers(...)`: while onnx2tf converts, the dict it fills (ONNX tensor name ->
   Keras tensor) is captured; the Keras layer that produces each tokened tensor is then renamed to its
   token, so the TF ops it makes, and every TFLite tensor fused from them, carry the token.
3. `holder_tokens(names)`: reading back. A TFLite tensor whose name carries several tokens (a conv fused
   with its bias add and relu) holds the one latest in node order; of several TFLite tensors claiming the
   same token (ops inside one layer), the last one in execution order holds it, the others are steps
   towards it and hold no ONNX tensor. `onnx_names(model)[k]` turns a token back into the ONNX name.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator

import onnx

SCHEME = "layer-tokens-1"  # part of the lowering cache key: entries named another way are not reused
TOKEN_PREFIX = "stretchc.v"
UNNAMED_PREFIX = "stretchc.x"
# A name scope component that is a token (TF appends `_<n>` when a scope name is used twice).
_TOKEN_RE = re.compile(r"^stretchc\.v(\d+)(?:_\d+)?$")


def onnx_names(model: onnx.ModelProto) -> list[str]:
    """The ONNX name of every token index: node outputs in node order (empty optional outputs skipped)."""
    return [o for node in model.graph.node for o in node.output if o]


def _attrs(node: onnx.NodeProto) -> list[bytes]:
    return sorted(a.SerializeToString(deterministic=True) for a in node.attribute)


def holdings(original: onnx.ModelProto, simplified: onnx.ModelProto) -> dict[str, str]:
    """For node outputs of `simplified` (onnxsim's rewrite of `original`), the original tensor each holds.

    onnxsim keeps names but not always meanings: folding a BatchNormalization into the conv before it
    leaves the conv's output name on what is now the normalized value. A tensor holds its own original
    tensor when its producer is unchanged: same op, same attributes, and inputs that hold what the original
    node read (initializers: same name and bytes; onnxsim's folded constants: same name). It holds the
    original tensor Y when an unchanged-op consumer now reads it where it used to read Y (onnxsim
    redirected Y's uses to it, and only does so for an equal value); consumers that disagree leave it
    unknown. Tensors with no such evidence are left out.
    """
    producer = {o: n for n in original.graph.node for o in n.output if o}
    inits = {t.name: t for t in original.graph.initializer}
    sim_inits = {t.name: t for t in simplified.graph.initializer}
    sim_outputs = {o for n in simplified.graph.node for o in n.output if o}

    def same_op(node: onnx.NodeProto) -> onnx.NodeProto | None:
        before = producer.get(node.output[0]) if node.output and node.output[0] else None
        if before is None or before.op_type != node.op_type or before.domain != node.domain or len(before.input) != len(node.input):
            return None
        return before if _attrs(before) == _attrs(node) else None

    redirected: dict[str, set[str]] = {}
    for node in simplified.graph.node:
        before = same_op(node)
        if before is None:
            continue
        for now, then in zip(node.input, before.input):
            if now and now in sim_outputs:
                redirected.setdefault(now, set()).add(then)
    held: dict[str, str] = {}
    for node in simplified.graph.node:  # topological order: a node's inputs are settled before it
        before = same_op(node)
        faithful = before is not None and all(
            _holds_same(now, then, held, sim_outputs, sim_inits, inits) for now, then in zip(node.input, before.input)
        )
        for k, out in enumerate(node.output):
            if not out:
                continue
            if faithful and before is not None and k < len(before.output) and before.output[k] == out:
                held[out] = out
            elif len(redirected.get(out, ())) == 1:
                (then,) = redirected[out]
                if then in producer:
                    held[out] = then
    return held


def _holds_same(
    now: str, then: str, held: dict[str, str], sim_outputs: set[str], sim_inits: dict[str, onnx.TensorProto], inits: dict[str, onnx.TensorProto]
) -> bool:
    """Input `now` of a simplified node carries what input `then` of the original node carried."""
    if now in sim_outputs:
        return held.get(now) == then
    if now != then:
        return False
    if now in sim_inits and then in inits:  # the same constant: same bytes (onnxsim may rewrite it in place)
        return sim_inits[now].SerializeToString(deterministic=True) == inits[then].SerializeToString(deterministic=True)
    return True  # a graph input, an omitted optional input (""), or onnxsim's folding of that very tensor


def name_tensors(original: onnx.ModelProto, simplified: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `simplified` whose node outputs are named by token (see `holdings`).

    A node output that holds original tensor k is renamed `stretchc.v<k>`; one that holds no known
    original tensor (or a tensor another output already claimed) `stretchc.x<j>`, which names nothing.
    Graph inputs and initializers keep their names. A model with control-flow subgraphs (which may read
    outer names) is returned as it is: the importer refuses control flow anyway.
    """
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in simplified.graph.node for a in n.attribute):
        return simplified
    index = {name: k for k, name in enumerate(onnx_names(original))}
    held = holdings(original, simplified)
    rename: dict[str, str] = {}
    claimed: set[int] = set()
    for node in simplified.graph.node:
        for out in node.output:
            if not out:
                continue
            k = index.get(held.get(out, ""))
            if k is not None and k not in claimed:
                claimed.add(k)
                rename[out] = f"{TOKEN_PREFIX}{k}"
            else:
                rename[out] = f"{UNNAMED_PREFIX}{len(rename)}"
    named = onnx.ModelProto()
    named.CopyFrom(simplified)
    g = named.graph
    for node in g.node:
        node.input[:] = [rename.get(i, i) for i in node.input]
        node.output[:] = [rename.get(o, o) for o in node.output]
    for vi in [*g.output, *g.value_info]:
        vi.name = rename.get(vi.name, vi.name)
    return named


@contextlib.contextmanager
def capture_layers() -> Iterator[dict[str, Any]]:
    """While the block runs onnx2tf.convert, capture onnx2tf's ONNX tensor name -> Keras tensor dict.

    onnx2tf creates that dict inside `convert` and hands it to every op converter, the graph inputs'
    first, so wrapping the input converter is enough to hold on to it.
    """
    import onnx2tf.ops.Input as input_op  # lazy: onnx2tf imports TensorFlow (seconds); only a lowering needs it

    captured: dict[str, Any] = {}
    original = input_op.make_node

    def make_node(**kwargs: Any) -> Any:
        captured.setdefault("layers", kwargs["tf_layers_dict"])
        return original(**kwargs)

    input_op.make_node = make_node
    try:
        yield captured
    finally:
        input_op.make_node = original


def name_layers(captured: dict[str, Any]) -> None:
    """Rename the Keras layer producing each tokened ONNX tensor to its token.

    A layer that produces several ONNX tensors (an identity passes its input's tensor on) keeps the first
    token in node order: they hold the same data. Input layers keep their names (the signature uses them).
    """
    layers: dict[str, Any] = captured.get("layers", {})
    named: dict[int, int] = {}
    owners: dict[int, Any] = {}
    for name, entry in layers.items():
        m = _TOKEN_RE.match(name)
        node = entry.get("tf_node") if isinstance(entry, dict) else None
        history = getattr(node, "_keras_history", None)
        if m is None or history is None:
            continue
        layer = history[0]
        if type(layer).__name__ == "InputLayer" or history[2] != 0:
            continue
        k = int(m.group(1))
        if id(layer) not in named or k < named[id(layer)]:
            named[id(layer)] = k
            owners[id(layer)] = layer
    for key, k in named.items():
        owners[key]._name = f"{TOKEN_PREFIX}{k}"


def tokens_in(tensor_name: str) -> list[int]:
    """The token indices in a TFLite tensor name (name scope components `stretchc.v<k>`)."""
    found = []
    for part in tensor_name.split(";"):
        for component in part.split("/"):
            m = _TOKEN_RE.match(component)
            if m is not None:
                found.append(int(m.group(1)))
    return found


def holder_tokens(tensor_names: list[str | None]) -> list[int | None]:
    """For tensors in execution order, the token of the ONNX tensor each holds, or None (module docstring)."""
    latest = [max(tokens_in(n), default=None) if n else None for n in tensor_names]
    last: dict[int, int] = {}
    for i, k in enumerate(latest):
        if k is not None:
            last[k] = i
    return [k if k is not None and last[k] == i else None for i, k in enumerate(latest)]
