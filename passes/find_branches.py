"""find-branches: find the model's parallel stages from graph structure alone and tag every node's region.

A *stage* is a set of *branches* that end in one *join* (a CONCATENATION, or a tree of ADDs as in
ADD(ADD(a, b), c)). No path leads from one branch of a stage to another, so they can run at the same time.
Stages are of two kinds.

Single-entry (fork-join) stages. A *fork* is a value with two or more consumer nodes. Its join is the
nearest node that post-dominates all of those consumers. The nodes strictly between are grouped into
branches: two consumers belong to the same branch when their descendants meet before the join (so a branch
may fork and rejoin inside itself). The fork/join is a stage when:
- the join is a CONCATENATION or a tree of ADDs;
- there are at least two branches and none of them is empty;
- the region has a single entry: nothing inside consumes a non-constant value from outside except the fork;
- for an ADD join of two branches, neither branch is a *shortcut* (a single 1x1 CONV_2D): that is a
  residual block's projection, not a stage. (So a residual add inside a branch, or a whole residual
  block in the trunk, is never a stage; a MUL join, as in squeeze-excite, never is either.)
They are searched along the trunk (forks in execution order, outermost first); forks inside a branch stay
inside it.

Multi-entry stages: parallel paths that start at different tensors (a feature pyramid's lateral paths from
the backbone scales c2..c5, a detector's per-scale heads). For a join that no stage took, every input of
the join (every leaf of its ADD tree) gets as its branch the nodes that feed only that input: walking back
from the input's producer, a node joins the branch when every consumer of its outputs is in the branch (the
input post-dominates it) and no stage took it. The walk stops at values that other paths read too: the
branch's *entries*, trunk values that may differ from branch to branch and be computed at different times
(c2 before c5). The join is a stage when:
- every input of an ADD join tree has a non-empty branch that only the tree reads. A CONCATENATION may also
  read trunk values as they are (*pass-through* inputs, which stay in the trunk before the stage): an identity
  input, as a NASNet normal cell's concat takes its previous cell's output beside its five combinations, or an
  input a later node reads too, as a reduction cell's combination that another combination adds;
- it has at least `MIN_MULTI_ENTRY_BRANCHES` (3) branches, pass-through inputs not counted. A two-input join of
  paths from different tensors is the merge idiom of residual and NAS networks (projection shortcuts, a
  pyramid's top-down ADDs, every pairwise combination in a NASNet cell): mostly a short path beside a long one,
  and so common that making each a stage would cut the trunk into many two-branch stages (Xception and ResNet
  stay one region); a U-Net skip or a DenseNet concat (one path beside the identity) is no stage either. A
  NASNet cell, whose concat gathers five (normal) or three (reduction) combinations that run side by side, is.
A fork-join stage gives way to the multi-entry stage at its join when one of its branches carries the trunk
on and feeds the join from two or more different tensors: a pyramid's c2 forks into the c2 lateral and the
backbone, which feeds the concat from c3, c4 and c5; the lateral paths, not "the c2 lateral beside all the
rest", are what can run at the same time. A fork nested inside a branch (Inception's 1x3 and 3x1 pair, both
read from one tensor) does not carry the trunk on, and keeps its fork-join stage. The other multi-entry
stages are found after the single-entry ones, among the nodes those left, latest join first: a join inside
another stage's branch stays inside it; a stage in another's trunk (a join its branches do not contain) is a
stage too. The nodes that feed two or more branches (the backbone between the entries) stay in the trunk
region before the stage. Why joins and not a series-parallel decomposition: that nests a pyramid two paths
at a time (the c2 lateral beside the rest, recursively) and does not exist for a neck with top-down adds
(PP-OCR's, not series-parallel); one flat stage per join is the shape the regions (stages of sibling
branches) and the placement search take.

Why every region is convex and the region graph a DAG: a branch's nodes are read only by the branch and by
its join, so no path leaves a branch and comes back, and nothing but its join is reached from a branch.
Trunk regions are intervals of the execution order cut at each stage's *event* (a single-entry stage's
fork; a multi-entry stage's join, which all its branch nodes and entries precede), and a value only flows
forward in that order; so listing the regions by event, each stage's branches just before its join region,
is a topological order. The price of the trunk interval: a branch whose entry is early (the c2 lateral)
waits for the trunk region that computes the later entries too; cutting the trunk at every entry would let
it overlap the backbone, at the cost of more regions and a grouping that splits a stage's branches.

Regions: `stem` (the trunk before the first stage's event: for a multi-entry stage, up to its join, with the
backbone its branches start from), `s<k>.b<j>` (stage k from 1 in the order of the events, branch j from 0
in the order of the join's inputs), `s<k>.join` (the join and the trunk after it up to the next stage's
event), `head` (after the last join); a model without stages is the single region `main`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from stretchc.ir import Module, Node, Region, Value
from stretchc.passmanager import Pass, PassContext, register_pass

JOIN_KINDS = ("CONCATENATION", "ADD")
MIN_MULTI_ENTRY_BRANCHES = 3  # see the module docstring: two-input multi-entry joins stay in the trunk


class _Topology:
    """Reachability and post-dominators over a graph's nodes (bitsets keyed by execution index)."""

    def __init__(self, nodes: list[Node], outputs: list[Value]) -> None:
        self.nodes = nodes
        self.index = {id(n): i for i, n in enumerate(nodes)}
        n = len(nodes)
        self.exit = n  # virtual exit node
        self.succ: list[list[int]] = []
        for node in nodes:
            succ = sorted({self.index[id(u)] for v in node.outputs for u, _ in v.uses})
            if any(v in outputs for v in node.outputs) or not succ:
                succ.append(self.exit)
            self.succ.append(succ)
        self.desc = [0] * (n + 1)
        self.desc[self.exit] = 1 << self.exit
        self.ipdom = [self.exit] * (n + 1)
        for i in range(n - 1, -1, -1):
            mask = 1 << i
            for s in self.succ[i]:
                mask |= self.desc[s]
            self.desc[i] = mask
            common = self.succ[i][0]
            for s in self.succ[i][1:]:
                common = self.common_pdom(common, s)
            self.ipdom[i] = common

    def common_pdom(self, a: int, b: int) -> int:
        while a != b:
            if a < b:
                a = self.ipdom[a]
            else:
                b = self.ipdom[b]
        return a

    def reaches(self, a: int, b: int) -> bool:
        return bool(self.desc[a] >> b & 1)


@dataclass
class _Stage:
    """A stage: its join tree (the root `join` and the ADDs under it), its branches in join order, and its
    event: the node after which the trunk continues in its join region (the fork's producer, -1 for a model
    input, for a single-entry stage; the join for a multi-entry one)."""

    join: int
    join_tree: set[int]
    branches: list[set[int]]
    event: int = -1
    multi_entry: bool = False

    def nodes(self) -> set[int]:
        return set(self.join_tree).union(*self.branches)


def _is_shortcut(nodes: list[Node], group: set[int]) -> bool:
    if len(group) != 1:
        return False
    node = nodes[next(iter(group))]
    weights = node.inputs[1] if len(node.inputs) > 1 else None
    return node.kind == "CONV_2D" and weights is not None and tuple(weights.shape[1:3]) == (1, 1)


def _find_stage(topo: _Topology, fork: Value) -> _Stage | None:
    nodes = topo.nodes
    consumers = sorted({topo.index[id(u)] for u, _ in fork.uses})
    if len(consumers) < 2:
        return None
    join = consumers[0]
    for c in consumers[1:]:
        join = topo.common_pdom(join, c)
    if join == topo.exit:
        return None
    kind = nodes[join].kind
    if kind not in JOIN_KINDS:
        return None
    reach = 0
    for c in consumers:
        reach |= topo.desc[c]
    inner = {i for i in range(len(nodes)) if reach >> i & 1 and i != join and topo.reaches(i, join)}
    # Single entry: every non-constant input inside comes from the fork or from inside.
    inside_values = {id(fork)} | {id(v) for i in inner for v in nodes[i].outputs}
    for i in [*inner, join]:
        for v in nodes[i].inputs:
            if v is not None and not v.is_const and id(v) not in inside_values:
                return None
    join_tree = {join}
    if kind == "ADD":
        grew = True
        while grew:
            grew = False
            for i in sorted(inner - join_tree):
                if nodes[i].kind == "ADD" and all(topo.index[id(u)] in join_tree for v in nodes[i].outputs for u, _ in v.uses):
                    join_tree.add(i)
                    grew = True
    while True:
        body = inner - join_tree
        groups = _group(topo, consumers, body, join_tree)
        if groups is None:
            return None
        internal = [i for i in join_tree - {join} if _inputs_from_one_group(nodes[i], groups, topo)]
        if not internal:
            break
        join_tree -= set(internal)
    if len(groups) < 2 or any(not g for g in groups):
        return None
    if kind == "ADD" and len(groups) == 2 and any(_is_shortcut(nodes, g) for g in groups):
        return None
    ordered = _order_by_join(nodes, topo, join, join_tree, groups)
    return _Stage(join=join, join_tree=join_tree, branches=ordered)


def _group(topo: _Topology, consumers: list[int], body: set[int], join_tree: set[int]) -> list[set[int]] | None:
    """Union consumers whose descendants meet inside `body`; each group's node set (empty for an identity path)."""
    reach = {c: {i for i in body if topo.reaches(c, i)} for c in consumers}
    parent = {c: c for c in consumers}

    def find(c: int) -> int:
        while parent[c] != c:
            c = parent[c]
        return c

    for a in consumers:
        for b in consumers:
            if a < b and reach[a] & reach[b]:
                parent[find(b)] = find(a)
    groups: dict[int, set[int]] = {}
    for c in consumers:
        groups.setdefault(find(c), set()).update(reach[c])
    return list(groups.values())


def _inputs_from_one_group(node: Node, groups: list[set[int]], topo: _Topology) -> bool:
    owners = set()
    for v in node.inputs:
        if v is None or v.producer is None or v.is_const:
            continue
        p = topo.index[id(v.producer)]
        owners.add(next((k for k, g in enumerate(groups) if p in g), -1))
    return len(owners) == 1 and -1 not in owners


def _order_by_join(nodes: list[Node], topo: _Topology, join: int, join_tree: set[int], groups: list[set[int]]) -> list[set[int]]:
    """Branches in the order their outputs enter the join (depth-first over an ADD tree)."""
    order: list[int] = []

    def visit(i: int) -> None:
        for v in nodes[i].inputs:
            if v is None or v.producer is None:
                continue
            p = topo.index[id(v.producer)]
            if p in join_tree:
                visit(p)
                continue
            for k, g in enumerate(groups):
                if p in g and k not in order:
                    order.append(k)

    visit(join)
    order += [k for k in range(len(groups)) if k not in order]
    return [groups[k] for k in order]


def _single_entry_stages(topo: _Topology, inputs: list[Value]) -> list[_Stage]:
    """The single-entry stages, forks tried in execution order (model inputs first); a stage whose branches
    hold a node an earlier stage took is dropped (a fork inside a branch stays inside it), and one with a branch
    that continues the trunk gives way to the multi-entry stage at its join (`_continues_trunk`)."""
    stages: list[_Stage] = []
    taken: set[int] = set()

    def try_fork(value: Value, event: int) -> None:
        stage = _find_stage(topo, value)
        if stage is None or any(i in taken for b in stage.branches for i in b):
            return
        stage.event = event
        wider = _multi_entry_stage(topo, stage.join, taken)
        if wider is not None and _continues_trunk(topo, stage, wider):
            stage = wider
        stages.append(stage)
        taken.update(stage.nodes())

    for v in inputs:
        try_fork(v, -1)
    for i, node in enumerate(topo.nodes):
        for v in node.outputs:
            try_fork(v, i)
    return stages


def _continues_trunk(topo: _Topology, fork_join: _Stage, multi: _Stage) -> bool:
    """Whether a branch of `fork_join` holds branches of `multi` (the multi-entry stage at the same join) that
    start at two or more different tensors: it carries the trunk on and feeds the join from several depths, as
    a pyramid's backbone does beside its finest lateral (c2 forks into the c2 lateral and the backbone, which
    feeds the join from c3, c4 and c5). A fork nested inside a branch (Inception's 1x3 and 3x1 pair) starts
    its paths at one tensor and stays inside its branch."""
    for branch in fork_join.branches:
        inner = [b for b in multi.branches if b <= branch]
        if len(set().union(*(_entries(topo, b) for b in inner))) >= 2:
            return True
    return False


def _entries(topo: _Topology, branch: set[int]) -> set[int]:
    """The ids of the non-constant values the nodes of `branch` read from outside it (model inputs included)."""
    return {id(v) for i in branch for v in topo.nodes[i].inputs if v is not None and not v.is_const and _producer(topo, v) not in branch}


def _multi_entry_stages(topo: _Topology, taken: set[int]) -> list[_Stage]:
    """The multi-entry stages among the nodes no stage has `taken`, latest join first (so a join inside a
    branch of a later one stays inside it); `taken` grows by every stage found."""
    stages: list[_Stage] = []
    for i in range(len(topo.nodes) - 1, -1, -1):
        if i in taken or topo.nodes[i].kind not in JOIN_KINDS:
            continue
        stage = _multi_entry_stage(topo, i, taken)
        if stage is not None:
            stages.append(stage)
            taken.update(stage.nodes())
    return stages


def _multi_entry_stage(topo: _Topology, join: int, taken: set[int]) -> _Stage | None:
    """The multi-entry stage joined at node `join`, or None (see the module docstring). An ADD of the join
    tree one of whose inputs has no branch of its own (a residual add under the join) becomes part of the
    branch that feeds it."""
    if join in taken:
        return None
    tree = _add_tree(topo, join, taken)
    concat = topo.nodes[join].kind == "CONCATENATION"
    while True:
        leaves = _leaves(topo, join, tree)
        branches = [_exclusive_branch(topo, v, tree, taken) for v, _ in leaves]
        # A concat may read trunk values as they are (a pass-through input); an ADD tree may not (see above).
        failed = next((t for (_, t), b in zip(leaves, branches) if b is None and not (concat and t == join)), None)
        if failed is None:
            break
        if failed == join:
            return None
        tree -= _subtree(topo, failed, tree)
    found = [b for b in branches if b is not None]
    if len(found) < MIN_MULTI_ENTRY_BRANCHES or len(set().union(*found)) != sum(map(len, found)):
        return None  # too few branches, or two inputs of the join read one producer
    return _Stage(join=join, join_tree=tree, branches=found, event=join, multi_entry=True)


def _add_tree(topo: _Topology, join: int, taken: set[int]) -> set[int]:
    """`join` and, for an ADD, the ADDs no stage took whose outputs only the tree reads (ADD(ADD(a, b), c))."""
    tree = {join}
    if topo.nodes[join].kind != "ADD":
        return tree
    grew = True
    while grew:
        grew = False
        producers = {p for t in tree for v in topo.nodes[t].inputs if (p := _producer(topo, v)) is not None}
        for i in sorted(producers - tree - taken):
            if topo.nodes[i].kind == "ADD" and all(s in tree for s in topo.succ[i]):
                tree.add(i)
                grew = True
    return tree


def _producer(topo: _Topology, v: Value | None) -> int | None:
    """The index of the node producing the non-constant value `v`; None for a model input, a constant or no value."""
    if v is None or v.is_const or v.producer is None:
        return None
    return topo.index[id(v.producer)]


def _leaves(topo: _Topology, join: int, tree: set[int]) -> list[tuple[Value, int]]:
    """The non-constant inputs of the join tree that no tree node produces, each with the tree node reading it,
    in the order they enter the join (depth first)."""
    out: list[tuple[Value, int]] = []
    for v in topo.nodes[join].inputs:
        if v is None or v.is_const:
            continue
        p = _producer(topo, v)
        if p is not None and p in tree:
            out += _leaves(topo, p, tree)
        else:
            out.append((v, join))
    return out


def _subtree(topo: _Topology, top: int, tree: set[int]) -> set[int]:
    """`top` and the tree nodes that feed it."""
    out = {top}
    for v in topo.nodes[top].inputs:
        p = _producer(topo, v)
        if p is not None and p in tree:
            out |= _subtree(topo, p, tree)
    return out


def _exclusive_branch(topo: _Topology, value: Value, tree: set[int], taken: set[int]) -> set[int] | None:
    """The nodes that feed only `value` (an input of the join tree `tree`): its producer when only the tree
    reads it, then every producer none of whose outputs is read outside the set, walking back; None when
    `value` is a model input, was taken by a stage, or is read outside the tree (the branch would be empty)."""
    start = _producer(topo, value)
    if start is None or start in taken or not all(s in tree for s in topo.succ[start]):
        return None
    branch: set[int] = set()
    # Latest first (a max-heap of indices): every consumer of a node comes later in execution order, so it is
    # decided before the node itself.
    todo, seen = [-start], {start}
    while todo:
        i = -heapq.heappop(todo)
        if i != start and (i in taken or not all(s in branch for s in topo.succ[i])):
            continue
        branch.add(i)
        for v in topo.nodes[i].inputs:
            p = _producer(topo, v)
            if p is not None and p not in seen:
                seen.add(p)
                heapq.heappush(todo, -p)
    return branch


def _label(count: int, stages: list[_Stage]) -> tuple[dict[int, str], list[Region]]:
    """Node index -> region, and the regions in topological order, for `stages` sorted by event: branch and join
    tree nodes by their stage, every other node by the last event before it (stem before the first)."""
    region_of: dict[int, str] = {}
    regions = [Region("stem", "stem")]
    for k, stage in enumerate(stages, start=1):
        for j, branch in enumerate(stage.branches):
            regions.append(Region(f"s{k}.b{j}", "branch", stage=k, branch=j))
            region_of.update((i, f"s{k}.b{j}") for i in branch)
        regions.append(Region(f"s{k}.join", "join", stage=k))
        region_of.update((i, f"s{k}.join") for i in stage.join_tree)
    current, k = "stem", 0
    for i in range(-1, count):
        if i >= 0:
            region_of.setdefault(i, current)
        while k < len(stages) and stages[k].event == i:
            k += 1
            current = f"s{k}.join"
    if stages:
        last = f"s{len(stages)}.join"
        tail = [i for i, r in region_of.items() if r == last and i not in stages[-1].join_tree]
        if tail:
            regions.append(Region("head", "head"))
            region_of.update((i, "head") for i in tail)
    return region_of, regions


@register_pass
@dataclass(frozen=True)
class FindBranches(Pass):
    """Tags every node with its region (stem, s<k>.b<j>, s<k>.join, head, or main) from graph structure."""

    name = "find-branches"
    summary = "find parallel stages (fork-join and multi-entry) and their branches from graph structure; tag each node's region"

    def run(self, module: Module, ctx: PassContext) -> bool:
        g = module.graph
        topo = _Topology(g.nodes, g.outputs)
        stages = _single_entry_stages(topo, g.inputs)
        stages += _multi_entry_stages(topo, {i for s in stages for i in s.nodes()})
        # By event; at one node a multi-entry stage's join comes before a fork of its output (stable otherwise).
        stages.sort(key=lambda s: (s.event, not s.multi_entry))
        if stages:
            region_of, regions = _label(len(g.nodes), stages)
        else:
            region_of, regions = {i: "main" for i in range(len(g.nodes))}, [Region("main", "main")]
        changed = False
        for i, node in enumerate(g.nodes):
            changed |= node.region != region_of[i]
            node.region = region_of[i]
        used = {n.region for n in g.nodes}
        module.regions = [r for r in regions if r.name in used]
        return changed
