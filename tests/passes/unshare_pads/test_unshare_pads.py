"""unshare-pads copies a PAD shared by several consumers, so parallel branches keep their own padding."""

from __future__ import annotations

import numpy as np

from stretchc.ir import Graph, Module, Node, Value
from stretchc.irtext import print_module
from stretchc.passes.unshare_pads import UnsharePads
from stretchc.passmanager import PassContext


def _shared_pad_module() -> Module:
    g = Graph()
    x = Value("x", (1, 8, 8, 4), "float32")
    pads = Value("pads", (4, 2), "int32", data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]], dtype=np.int32))
    padded = Value("padded", (1, 10, 10, 4), "float32")
    g.inputs = [x]
    g.nodes.append(Node("tfl.PAD", [x, pads], [padded], {"version": 1}))
    outs = []
    for k in range(3):
        w = Value(f"w{k}", (4, 3, 3, 4), "float32", data=np.zeros((4, 3, 3, 4), np.float32))
        y = Value(f"y{k}", (1, 4, 4, 4), "float32")
        g.nodes.append(Node("tfl.CONV_2D", [padded, w, None], [y], {"version": 1}))
        outs.append(y)
    g.outputs = outs
    return Module(graph=g)


def test_each_consumer_gets_its_own_pad() -> None:
    module = _shared_pad_module()
    assert UnsharePads().run(module, PassContext()) is True
    module.verify()
    pads = [n for n in module.graph.nodes if n.kind == "PAD"]
    assert len(pads) == 3
    assert all(len(p.outputs[0].users) == 1 for p in pads)
    convs = [n for n in module.graph.nodes if n.kind == "CONV_2D"]
    assert {c.inputs[0].name for c in convs} == {"padded", "padded.1", "padded.2"}  # type: ignore[union-attr]


def test_unshared_pads_are_left_alone() -> None:
    module = _shared_pad_module()
    UnsharePads().run(module, PassContext())
    before = print_module(module)
    assert UnsharePads().run(module, PassContext()) is False
    assert print_module(module) == before
