"""find-branches: find the model's fork/join stages from graph structure alone and tag every node's region.

A *fork* is a value with two or more consumer nodes. Its *join* is the nearest node that post-dominates
all of those consumers. The nodes strictly between are grouped into *branches*: two consumers belong to
the same branch when their descendants meet before the join (so a branch may fork and rejoin inside
itself). The fork/join is a *stage* when:
- the join is a CONCATENATION, or a tree of ADDs (3 branches joined by ADD(ADD(a, b), c));
- there are at least two branches and none of them is empty;
- the region has a single entry: nothing inside consumes a non-constant value from outside except the fork;
- for an ADD join of two branches, neither branch is a *shortcut* (a single 1x1 CONV_2D): that is a
  residual block's projection, not a stage. (So a residual add inside a branch, or a whole residual
  block in the trunk, is never a stage; a MUL join, as in squeeze-excite, never is either.)

Stages are searched along the trunk only (outermost first); forks inside a branch stay inside it.
Regions: `stem` (before the first stage's branches), `s<k>.b<j>` (stage k from 1, branch j from 0 in the
order of the join's inputs), `s<k>.join` (the join and the trunk up to the next stage), `head` (after the
last join); a model without stages is the single region `main`.
"""

from __future__ import annotations

from dataclasses import dataclass

from stretchc.ir import Module, Node, Region, Value
from stretchc.passmanager import Pass, PassContext, register_pass


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
    join: int
    join_tree: set[int]
    branches: list[set[int]]


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
    if kind not in ("CONCATENATION", "ADD"):
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


@register_pass
@dataclass(frozen=True)
class FindBranches(Pass):
    """Tags every node with its region (stem, s<k>.b<j>, s<k>.join, head, or main) from graph structure."""

    name = "find-branches"
    summary = "find fork/join stages and branches from graph structure; tag each node's region"

    def run(self, module: Module, ctx: PassContext) -> bool:
        g = module.graph
        topo = _Topology(g.nodes, g.outputs)
        region_of: dict[int, str] = {}
        regions: list[Region] = [Region("stem", "stem")]
        current = "stem"
        stage_no = 0
        last_join_tree: set[int] = set()

        def try_fork(value: Value) -> None:
            nonlocal current, stage_no, last_join_tree
            stage = _find_stage(topo, value)
            if stage is None or any(i in region_of for b in stage.branches for i in b):
                return
            stage_no += 1
            for j, branch in enumerate(stage.branches):
                name = f"s{stage_no}.b{j}"
                regions.append(Region(name, "branch", stage=stage_no, branch=j))
                for i in branch:
                    region_of[i] = name
            current = f"s{stage_no}.join"
            regions.append(Region(current, "join", stage=stage_no))
            for i in stage.join_tree:
                region_of[i] = current
            last_join_tree = stage.join_tree

        for v in g.inputs:
            try_fork(v)
        for i, node in enumerate(g.nodes):
            if i not in region_of:
                region_of[i] = current
            for v in node.outputs:
                try_fork(v)
        if stage_no == 0:
            regions = [Region("main", "main")]
            region_of = {i: "main" for i in range(len(g.nodes))}
        else:
            last = f"s{stage_no}.join"
            tail = [i for i, r in region_of.items() if r == last and i not in last_join_tree]
            if tail:
                regions.append(Region("head", "head"))
                for i in tail:
                    region_of[i] = "head"
        changed = False
        for i, node in enumerate(g.nodes):
            changed |= node.region != region_of[i]
            node.region = region_of[i]
        used = {n.region for n in g.nodes}
        module.regions = [r for r in regions if r.name in used]
        return changed
