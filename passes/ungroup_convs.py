"""ungroup-convs: grouped CONV_2D on a processor that needs it split becomes SPLIT + one CONV_2D per group + CONCATENATION.

TFLite marks a grouped convolution (filter input channels != input channels) as CONV_2D version 6; some
delegates take plain convolutions only (the Hexagon delegate accepts CONV_2D up to version 3: its backend says
`ungroup_convs`). Like the NN-Stretch prototype (which emitted grouped convs this way for the same reason),
every grouped float32 CONV_2D placed on such a processor is rewritten into
SPLIT (axis 3, `groups` parts) -> `groups` plain CONV_2D (the filter [O, kh, kw, I/g] and the bias sliced
along O; each keeps the fused activation, version 1) -> CONCATENATION (axis 3, no activation, version 1).
The new nodes take the original node's region, processor and partition, so it runs after assign-delegates
and before outline-partitions. Grouped convs on other processors (the CPU, the GPU) are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stretchc.backends import backend
from stretchc.ir import Module, Node, Value, groups_of
from stretchc.passmanager import Pass, PassContext, register_pass


def _unique(taken: set[str], name: str) -> str:
    k, candidate = 0, name
    while candidate in taken:
        k += 1
        candidate = f"{name}.{k}"
    taken.add(candidate)
    return candidate


def ungroup(module: Module, node: Node, taken: set[str]) -> list[Node]:
    """Replace the grouped `node` in the graph; returns the new nodes in order."""
    g = module.graph
    groups = groups_of(node)
    x, w = node.inputs[0], node.inputs[1]
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    out = node.outputs[0]
    assert x is not None and w is not None and w.data is not None
    base = out.name
    cin, cout = x.shape[3] // groups, w.shape[0] // groups
    axis = Value(_unique(taken, f"{base}.split_axis"), (), "int32", data=np.array(3, dtype=np.int32))
    parts = [Value(_unique(taken, f"{base}.in{k}"), (*x.shape[:3], cin), x.dtype) for k in range(groups)]
    split = Node("tfl.SPLIT", [axis, x], parts, {"options": "SplitOptions", "numSplits": groups, "version": 1}, loc=node.loc)
    new = [split]
    conv_outs = []
    for k in range(groups):
        wk = Value(_unique(taken, f"{w.name}.g{k}"), (cout, *w.shape[1:]), w.dtype, data=np.ascontiguousarray(w.data[k * cout : (k + 1) * cout]))
        bk = None
        if bias is not None:
            if bias.data is None:
                raise ValueError("non-constant bias")
            bk = Value(_unique(taken, f"{bias.name}.g{k}"), (cout,), bias.dtype, data=np.ascontiguousarray(bias.data[k * cout : (k + 1) * cout]))
        yk = Value(_unique(taken, f"{base}.out{k}"), (*out.shape[:3], cout), out.dtype)
        attrs = dict(node.attrs)
        attrs["version"] = 1
        conv = Node("tfl.CONV_2D", [parts[k], wk, bk, *node.inputs[3:]], [yk], attrs, loc=node.loc)
        new.append(conv)
        conv_outs.append(yk)
    g.remove(node)  # frees `out` for the concatenation
    concat = Node(
        "tfl.CONCATENATION", conv_outs, [out],
        {"options": "ConcatenationOptions", "axis": 3, "fusedActivationFunction": "NONE", "version": 1}, loc=node.loc,
    )
    new.append(concat)
    for n in new:
        n.region, n.processor, n.precision, n.partition = node.region, node.processor, node.precision, node.partition
    return new


@register_pass
@dataclass(frozen=True)
class UngroupConvs(Pass):
    """Splits every grouped float CONV_2D placed on a processor whose backend says `ungroup_convs` into per-group
    CONV_2D ops (SPLIT + convs + CONCATENATION)."""

    name = "ungroup-convs"
    summary = "grouped CONV_2D on a processor that takes plain convolutions only (the DSP) becomes SPLIT + per-group CONV_2D + CONCATENATION"

    def run(self, module: Module, ctx: PassContext) -> bool:
        g = module.graph
        targets = [
            n for n in g.nodes
            if n.processor is not None and backend(n.processor).ungroup_convs and groups_of(n) > 1 and n.inputs[0] is not None and n.inputs[0].dtype == "float32"
            and n.inputs[1] is not None and n.inputs[1].is_const
            and (len(n.inputs) < 3 or n.inputs[2] is None or n.inputs[2].is_const)
        ]
        if not targets:
            return False
        taken = set(g.value_map())
        for node in targets:
            index = g.nodes.index(node)
            new = ungroup(module, node, taken)
            g.nodes[index:index] = new
        return True
