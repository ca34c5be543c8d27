"""Partition formation: which regions of a placement share one partition (one invoke on one processor).

A grouping is a tuple of partitions, each a tuple of region names (in the region graph's order), the partitions
in a topological order of the graph they form. Every partition is convex (no path leaves it and comes back) and
all its regions have one `Choice` (processor and precision); convex partitions whose quotient graph is acyclic
are exactly the groupings a runtime can execute partition by partition.

- `group(rg, placement)`: the canonical grouping of a placement, which the placement search prices: the branches
  of a stage that share a choice are one partition (they serialize on their processor anyway), then every
  partition whose only consumer partition reads from it alone fuses with that consumer when they share a choice
  (a pure chain: the consumer would start when the producer ends anyway, so fusing only saves an invoke and a
  sync). A placement with one choice everywhere is therefore one partition: the whole model.
- `per_region(rg, placement)`: each region its own partition: how the NN-Stretch prototype's runtime cut its
  models (a delegate partition never crosses a fork or a join), and so how its measured configurations are
  priced for the cost model's calibration.
- `regions(rg, placement)`: `per_region`, but the last join and the head share a partition when they share a
  choice: what `assign-delegates{grouping=regions}` asks for (every branch its own partition, whatever it costs).
- `refine(...)`: merge moves on a grouping, each the one that lowers the predicted latency most (convex unions
  of partitions with one choice), until none does.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

Grouping = tuple[tuple[str, ...], ...]

NAME_REGIONS = 4  # a partition of at most this many regions is named by all of them, a larger one by its ends


def partition_name(regions: Sequence[str]) -> str:
    """The partition's name: its regions joined by `+` (at most `NAME_REGIONS`), else `first-last` (unique, since
    partitions are disjoint; bundle names stay short)."""
    return "+".join(regions) if len(regions) <= NAME_REGIONS else f"{regions[0]}-{regions[-1]}"


class Dag:
    """The region graph's structure: index of every region, the region pairs a value crosses between, and the
    descendants and ancestors of every region as bit sets (for convexity)."""

    def __init__(self, names: Sequence[str], pairs: Iterable[tuple[str, str]]) -> None:
        self.names = list(names)
        self.index = {r: i for i, r in enumerate(self.names)}
        self.pairs = sorted(set(pairs), key=lambda p: (self.index[p[0]], self.index[p[1]]))
        succ: dict[str, list[str]] = {r: [] for r in self.names}
        pred: dict[str, list[str]] = {r: [] for r in self.names}
        for s, d in self.pairs:
            succ[s].append(d)
            pred[d].append(s)
        self.desc = {r: 0 for r in self.names}
        for r in reversed(self.names):  # regions are in topological order
            for d in succ[r]:
                self.desc[r] |= self.desc[d] | (1 << self.index[d])
        self.anc = {r: 0 for r in self.names}
        for r in self.names:
            for s in pred[r]:
                self.anc[r] |= self.anc[s] | (1 << self.index[s])

    def bits(self, regions: Iterable[str]) -> int:
        out = 0
        for r in regions:
            out |= 1 << self.index[r]
        return out

    def convex(self, regions: Iterable[str]) -> bool:
        """No path leaves `regions` and comes back into them."""
        regs = list(regions)
        inside = self.bits(regs)
        down = up = 0
        for r in regs:
            down |= self.desc[r]
            up |= self.anc[r]
        return (down & up & ~inside) == 0

    def ordered(self, parts: Iterable[Iterable[str]]) -> Grouping:
        """`parts` as a grouping: regions in graph order, partitions topologically sorted (ties: the earliest first
        region first). Raises ValueError when the partitions form a cycle."""
        groups = [tuple(sorted(p, key=self.index.__getitem__)) for p in parts]
        of = {r: i for i, g in enumerate(groups) for r in g}
        succ: list[set[int]] = [set() for _ in groups]
        indeg = [0] * len(groups)
        for s, d in self.pairs:
            a, b = of[s], of[d]
            if a != b and b not in succ[a]:
                succ[a].add(b)
                indeg[b] += 1
        ready = sorted((self.index[g[0]], i) for i, g in enumerate(groups) if indeg[i] == 0)
        out: list[tuple[str, ...]] = []
        while ready:
            _, i = ready.pop(0)
            out.append(groups[i])
            for j in succ[i]:
                indeg[j] -= 1
                if indeg[j] == 0:
                    ready.append((self.index[groups[j][0]], j))
            ready.sort()
        if len(out) != len(groups):
            raise ValueError("the partitions form a cycle")
        return tuple(out)


def dag_of(rg: Any) -> Dag:
    """The (cached) `Dag` of a region graph (`stretchc.costmodel.placement.RegionGraph`)."""
    dag = getattr(rg, "dag", None)
    if dag is None:
        dag = Dag(rg.names, [(s, d) for d in rg.names for s, _, _ in rg.preds[d]])
        rg.dag = dag
    return dag


def group(rg: Any, placement: Mapping[str, Any]) -> Grouping:
    """The canonical grouping of `placement` (region -> choice; see the module docstring). The branches of a
    fork-join stage are independent (no path between them, by find-branches' construction), so any of them form
    a convex set; a pure chain fusion keeps every partition convex. Linear in the regions and edges: the search
    calls it for every placement it prices."""
    dag = dag_of(rg)
    names = rg.names
    owner = list(range(len(names)))  # region index -> its partition's id (the id of its first region)
    first: dict[tuple[Any, Any], int] = {}
    for i, r in enumerate(names):
        if rg.kinds[r] == "branch":
            owner[i] = first.setdefault((rg.stage[r], placement[r]), i)
    cons: dict[int, set[int]] = {}
    prods: dict[int, set[int]] = {}
    for s, d in dag.pairs:
        a, b = owner[dag.index[s]], owner[dag.index[d]]
        if a != b:
            cons.setdefault(a, set()).add(b)
            prods.setdefault(b, set()).add(a)
    into = {i: i for i in set(owner)}  # partition id -> the id it fused into
    for a in sorted(into):
        if into[a] != a:
            continue
        while len(cons.get(a, ())) == 1:
            (b,) = cons[a]
            if prods.get(b) != {a} or placement[names[a]] != placement[names[b]]:
                break
            into[b] = a
            cons[a] = cons.pop(b, set())
            for c in cons[a]:
                prods[c].discard(b)
                prods[c].add(a)
    parts: dict[int, list[str]] = {}
    for i, r in enumerate(names):
        k = owner[i]
        while into[k] != k:
            k = into[k]
        parts.setdefault(k, []).append(r)
    return dag.ordered(parts.values())


def per_region(rg: Any, placement: Mapping[str, Any]) -> Grouping:
    """Each region its own partition (see the module docstring)."""
    return tuple((r,) for r in rg.names)


def regions(rg: Any, placement: Mapping[str, Any]) -> Grouping:
    """Each region its own partition, except that the last join and the head share one when they share a choice
    (`assign-delegates{grouping=regions}`: every branch its own partition, as the prototype's runtime ran them)."""
    last_join = next((r for r in reversed(rg.names) if rg.kinds[r] == "join"), None)
    parts: list[list[str]] = []
    for r in rg.names:
        if rg.kinds[r] == "head" and last_join is not None and placement[last_join] == placement[r]:
            next(p for p in parts if last_join in p).append(r)
        else:
            parts.append([r])
    return dag_of(rg).ordered(parts)


GROUPINGS: dict[str, Callable[[Any, Mapping[str, Any]], Grouping]] = {"cost": group, "regions": regions}


def cut(rg: Any, placement: Mapping[str, Any]) -> Grouping:
    """The grouping the region graph's search prices a placement with: `rg.cut` (default: `group`)."""
    return (getattr(rg, "cut", None) or group)(rg, placement)


def merges(rg: Any, placement: Mapping[str, Any], groups: Grouping) -> list[Grouping]:
    """Every grouping one merge away from `groups`: two partitions with one choice whose union is convex."""
    dag = dag_of(rg)
    out = []
    for i, a in enumerate(groups):
        for j in range(i + 1, len(groups)):
            b = groups[j]
            if placement[a[0]] != placement[b[0]] or not dag.convex(a + b):
                continue
            out.append(dag.ordered([g for k, g in enumerate(groups) if k not in (i, j)] + [a + b]))
    return out


def refine(
    rg: Any,
    placement: Mapping[str, Any],
    groups: Grouping,
    score: Callable[[Grouping], float],
    ok: Callable[[Grouping], bool] | None = None,
) -> Grouping:
    """Greedy merges (`merges`) on `groups`, each the one `score` (predicted latency) lowers most among those
    `ok` accepts, until none lowers it: never predicted slower than `groups`."""
    best, best_t = groups, score(groups)
    while True:
        found: tuple[float, Grouping] | None = None
        for trial in merges(rg, placement, best):
            if ok is not None and not ok(trial):
                continue
            t = score(trial)
            if t < best_t - 1e-9 and (found is None or t < found[0] - 1e-12):
                found = (t, trial)
        if found is None:
            return best
        best_t, best = found
