"""`--emit nnstretch-tflite`: one .tflite for the NN-Stretch prototype runtime, placement carried by tensor names.

The prototype (../shared/facts/nnstretch.md §3-4, §9) reads a node's processor from the name of its first output
tensor (first `;`-component): it contains exactly one of its processor tags (each backend's `nnstretch_tag`: the CPU,
the GPU and the Hexagon DSP; a processor the prototype does not know cannot be written, StretchError
"no-such-processor"); the fork (the op whose output the
branches read) contains `mp_start`; each join concat contains `mp_end`. This writer takes the compiled
module, drops the `stretch.sync` nodes (their consumers read the sync's input again) and writes every other
node with its first output renamed:

    stem    st_<proc>_<i>_<op>             branch  s<stage>_<proc>_b<branch>_<i>_<op>
    join    s<stage>_<proc>_mp_end_concat  (the join concat; `_mp_start` added when it is also a fork)
            s<stage>_<proc>_t<i>_<op>      (trunk ops after the join)
    head    head_<proc>_<i>_<op>           main    main_<proc>_<i>_<op>

and `mp_start` inserted after the processor tag of every fork op. Op names are lower-cased TFLite op kinds
(no processor substrings). The module is not changed: the writer works on copies of the values.
"""

from __future__ import annotations

from stretchc.backends import backend, backends, fallback
from stretchc.errors import StretchError
from stretchc.ir import Module, Node, Value
from stretchc.tflite_io import emit_model


def _tag(node: Node) -> str:
    """The prototype's tag of the processor that runs `node` (the fallback's when it has none yet)."""
    b = backend(node.processor) if node.processor is not None else fallback()
    if b.nnstretch_tag is None:
        known = ", ".join(t.name for t in backends() if t.nnstretch_tag is not None)
        raise StretchError(
            "no-such-processor",
            f"--emit nnstretch-tflite: {node.op} {node.name} runs on the {b.name}, which the NN-Stretch prototype runtime does not know (it runs {known})",
            branch=node.region, node=node.name,
        )
    return b.nnstretch_tag


def _tag_names(module: Module, nodes: list[Node], fork_values: set[str], join_syncs: set[str], sync_source: dict[str, str]) -> dict[int, str]:
    regions = {r.name: r for r in module.regions}
    counters: dict[str, int] = {}
    names: dict[int, str] = {}
    for n in nodes:
        if not n.outputs:
            continue
        proc = _tag(n)
        region = regions.get(n.region or "")
        kind = region.kind if region else "main"
        op = n.kind.lower()
        fork = n.outputs[0].name in fork_values
        start = "_mp_start" if fork else ""
        key = n.region or "main"
        i = counters.get(key, 0)
        counters[key] = i + 1
        if kind == "stem":
            name = f"st_{proc}{start}_{i}_{op}"
        elif kind == "branch":
            name = f"s{region.stage}_{proc}{start}_b{region.branch}_{i}_{op}"
        elif kind == "join":
            is_join_concat = n.kind == "CONCATENATION" and any(
                v is not None and v.name in join_syncs for v in n.inputs
            )
            if is_join_concat:
                name = f"s{region.stage}_{proc}{start}_mp_end_concat"
            else:
                name = f"s{region.stage}_{proc}{start}_t{i}_{op}"
        elif kind == "head":
            name = f"head_{proc}{start}_{i}_{op}"
        else:
            name = f"main_{proc}{start}_{i}_{op}"
        names[id(n)] = name
    return names


def nnstretch_tflite(module: Module) -> bytes:
    """The tagged single-file model (see the module docstring)."""
    sync_points = {s.name: s for s in module.sync_points}
    # A sync node's output stands for its input: map synced value name -> source value.
    sync_in: dict[int, Value] = {}
    fork_values: set[str] = set()
    join_sources: set[str] = set()
    for n in module.graph.nodes:
        if n.op == "stretch.sync":
            src = n.inputs[0]
            assert src is not None
            sync_in[id(n.outputs[0])] = src
            sp = sync_points.get(str(n.attrs.get("sync")))
            if sp is not None and sp.kind == "fork":
                fork_values.add(src.name)
            if sp is not None and sp.kind == "join":
                join_sources.update((src.name, n.outputs[0].name))
    for sp in module.sync_points:  # fork values without an explicit sync node
        if sp.kind == "fork":
            fork_values.add(sp.value)
        if sp.kind == "join":
            join_sources.add(sp.value)

    def resolve(v: Value | None) -> Value | None:
        while v is not None and id(v) in sync_in:
            v = sync_in[id(v)]
        return v

    real_nodes = [n for n in module.graph.nodes if n.op != "stretch.sync"]
    # join concats read join sources (after resolving syncs)
    names = _tag_names(module, real_nodes, fork_values, join_sources, {})
    copies: dict[int, Value] = {}

    def copy(v: Value) -> Value:
        if id(v) not in copies:
            c = Value(v.name, v.shape, v.dtype, quant=v.quant, data=v.data)
            copies[id(v)] = c
        return copies[id(v)]

    new_nodes: list[Node] = []
    for n in real_nodes:
        ins = [copy(resolve(v)) if v is not None else None for v in n.inputs]  # type: ignore[arg-type]
        outs = [copy(v) for v in n.outputs]
        if id(n) in names:
            outs[0].name = names[id(n)]
        nn = Node(n.op, ins, outs, dict(n.attrs), loc=n.loc)
        nn.region, nn.processor, nn.partition = n.region, n.processor, n.partition
        new_nodes.append(nn)
    values = module.graph.value_map()
    g_inputs = [copy(resolve(values[t.value])) for t in module.inputs]  # type: ignore[arg-type]
    g_outputs = [copy(resolve(values[t.value])) for t in module.outputs]  # type: ignore[arg-type]
    return emit_model(new_nodes, g_inputs, g_outputs, description=f"stretchc nnstretch-tflite {module.name}")
