"""Partition formation: which regions of a placement share one partition (one invoke on one processor).

A grouping is a tuple of partitions, each a tuple of region names (in the region graph's order), the partitions
in a topological order of the graph they form. Every partition is convex (no path leaves it and comes back) and
all its regions have one `Choice` (processor and precision); convex partitions whose quotient graph is acyclic
are exactly the groupings a runtime can execute partition by partition.

- `group(rg, placement)`: the canonical grouping of a placement, which the placement search prices: the branches
  of a stage that share a choice are one partition (they serialize on their processor anyway), then every
  partition whose only consumer partition reads from it alone fuses with that consumer when they share a choice
  (a pure chain: the consumer would start when the producer ends anyway, so fusing only saves an invoke and a
  sync). A placement with one choice everywhere is therefore one partition: the whole model. `Canonical` derives
  it move by move (the placement search's moves change one stage or region at a time).
- `per_region(rg, placement)`: each region its own partition: how the NN-Stretch prototype's runtime cut its
  models (a delegate partition never crosses a fork or a join), and so how its measured configurations are
  priced for the cost model's calibration.
- `regions(rg, placement)`: `per_region`, but the last join and the head share a partition when they share a
  choice: what `assign-delegates{grouping=regions}` asks for (every branch its own partition, whatever it costs).
- `refine(...)`: merge moves on a grouping, each the one that lowers the predicted latency most (convex unions
  of partitions with one choice that keep the partitions acyclic), until none does.
"""

from __future__ import annotations

import bisect
import math
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
        # by index: the regions each one hands values to and reads values from, as bit sets
        self.succ_bits = [self.bits(succ[r]) for r in self.names]
        self.pred_bits = [self.bits(pred[r]) for r in self.names]

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
        groups = sorted((tuple(sorted(p, key=self.index.__getitem__)) for p in parts), key=lambda g: self.index[g[0]])
        done = 0  # the order of first regions is the answer whenever it is topological
        for g in groups:
            mine = reads = 0
            for r in g:
                mine |= 1 << self.index[r]
                reads |= self.pred_bits[self.index[r]]
            if reads & ~mine & ~done:
                break
            done |= mine
        else:
            return tuple(groups)
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


class Canonical:
    """`group`'s grouping of one placement, with the pre-partitions and chains it came from, so that the grouping
    of a placement differing in a few regions is derived from it (`moved`): only the stages and trunk regions
    whose choices changed are grouped again, only the links of their pre-partitions and of those feeding them
    are decided again, only the chains through them are followed again. `Canonical.of(rg, placement)` is the
    same derivation from a state with no pre-partitions, every region changed (see `group`)."""

    def __init__(self, rg: Any) -> None:
        """The state before any region has a choice."""
        self.rg = rg
        self.dag = dag_of(rg)
        stages: dict[Any, list[int]] = {}
        self.stage: list[Any] = []  # region index -> its stage when it is a branch, else None
        for i, r in enumerate(rg.names):
            st = rg.stage[r] if rg.kinds[r] == "branch" else None
            self.stage.append(st)
            if st is not None:
                stages.setdefault(st, []).append(i)
        self.stages = {st: tuple(idx) for st, idx in stages.items()}
        self.choice: list[Any] = [None] * len(rg.names)
        self.owner = list(range(len(rg.names)))  # region index -> its pre-partition's id (the index of its first region)
        self.pre: dict[int, tuple[tuple[str, ...], int, int, int]] = {}  # pre-partition -> (regions, their bits, bits they read, bits reading them)
        self.link: dict[int, int] = {}  # pre-partition -> the one it fuses with
        self.chain: dict[int, int] = {}  # pre-partition -> the head of its chain (the partition's id)
        self.members: dict[int, tuple[int, ...]] = {}  # head -> the pre-partitions of its chain
        self.parts: dict[int, tuple[tuple[str, ...], int, int, int]] = {}  # head -> (regions, their bits, bits they read, bits reading them)
        self.leads: list[tuple[int, int]] = []  # (bit of its first region, head) of every partition, sorted
        self.order: list[tuple[str, ...]] = []  # the partitions in that order
        self.topological = True  # whether that order is topological (every partition reads only from earlier ones)
        self.made: list[tuple[str, ...]] = []  # the partitions the last move made (the others are the state's it moved from)
        self.groups: Grouping = ()

    @classmethod
    def of(cls, rg: Any, placement: Mapping[str, Any]) -> "Canonical":
        """The state of `placement` (from the region graph's state before any choice, built on first use)."""
        if getattr(rg, "canonical", None) is None:
            rg.canonical = cls(rg)
        return rg.canonical.moved(placement, rg.names)  # type: ignore[no-any-return]

    def moved(self, placement: Mapping[str, Any], changed: Iterable[str]) -> "Canonical":
        """The state of `placement`, which differs from this state's placement in the `changed` regions only."""
        new = object.__new__(Canonical)
        new.__dict__.update(self.__dict__)
        new.choice, new.owner, new.leads, new.order = list(self.choice), list(self.owner), list(self.leads), list(self.order)
        new.pre, new.link, new.chain, new.members, new.parts = dict(self.pre), dict(self.link), dict(self.chain), dict(self.members), dict(self.parts)
        index = self.dag.index
        stages: set[Any] = set()
        trunk: list[int] = []
        for r in changed:
            i = index[r]
            new.choice[i] = placement[r]
            if self.stage[i] is None:
                trunk.append(i)
            else:
                stages.add(self.stage[i])
        gone: set[int] = set()  # the pre-partitions of the changed stages and trunk regions, as they were
        made: dict[int, list[int]] = {}  # ... as they are now
        for idx in (*(self.stages[st] for st in stages), *((i,) for i in trunk)):
            first: dict[Any, int] = {}
            for i in idx:
                gone.add(self.owner[i])
                new.owner[i] = first.setdefault(new.choice[i], i)
                made.setdefault(new.owner[i], []).append(i)
        for o in gone & self.pre.keys():
            del new.pre[o], new.chain[o]
            new.link.pop(o, None)
        reading = 0
        for o, idx in made.items():
            bits = reads = feeds = 0
            for i in idx:
                bits |= 1 << i
                reads |= self.dag.pred_bits[i]
                feeds |= self.dag.succ_bits[i]
            new.pre[o] = (tuple(self.rg.names[i] for i in idx), bits, reads, feeds)
            reading |= reads
        # The links that may change: those of the pre-partitions made, and of those feeding them.
        decide = set(made)
        while reading:
            low = reading & -reading
            decide.add(new.owner[low.bit_length() - 1])
            reading ^= low
        before = {self.link[o] for o in decide if o in self.link}
        for o in decide:
            _, mine, _, feeds = new.pre[o]
            out = feeds & ~mine
            b = new.owner[(out & -out).bit_length() - 1] if out else None
            if b is not None and not out & ~new.pre[b][1] and not new.pre[b][2] & ~new.pre[b][1] & ~mine and new.choice[o] == new.choice[b]:
                new.link[o] = b
            else:
                new.link.pop(o, None)
        # The chains through them: their pre-partitions are followed again (no link enters or leaves that set).
        heads = {self.chain[o] for o in (*decide, *gone, *before, *(new.link[o] for o in decide if o in new.link)) if o in self.chain}
        again = set(made)
        for h in heads:
            again.update(o for o in self.members[h] if o in new.pre)
        chains = []
        for head in sorted(again - {new.link[o] for o in again if o in new.link}):
            chain, o = [], head
            while o is not None:
                chain.append(o)
                o = new.link.get(o)
            chains.append((head, tuple(chain)))
        kept = {head for head, chain in chains if self.members.get(head) == chain and made.keys().isdisjoint(chain)}  # as they were
        for h in heads - kept:
            del new.members[h], new.parts[h]
            k = bisect.bisect_left(new.leads, (self.parts[h][1] & -self.parts[h][1], h))
            del new.leads[k], new.order[k]
        made_parts = []
        new.made = []
        for head, chain in chains:
            if head in kept:
                continue
            bits = reads = feeds = 0
            for o in chain:
                new.chain[o] = head
                _, mine, their, on = new.pre[o]
                bits, reads, feeds = bits | mine, reads | their, feeds | on
            names = new.pre[head][0] if len(chain) == 1 else tuple(sorted((r for o in chain for r in new.pre[o][0]), key=index.__getitem__))
            new.members[head] = chain
            new.parts[head] = (names, bits, reads & ~bits, feeds & ~bits)
            k = bisect.bisect_left(new.leads, (bits & -bits, head))
            new.leads.insert(k, (bits & -bits, head))
            new.order.insert(k, names)
            made_parts.append(head)
            new.made.append(names)
        # Partitions in the order of their first regions are `Dag.ordered`'s order whenever that order is
        # topological, which only the partitions made can break when it was before (checked alone when few).
        few = self.topological and 2 * len(made_parts) <= len(new.leads)
        new.topological = all(new._in_order(h) for h in made_parts) if few else new._all_in_order()
        new.groups = tuple(new.order) if new.topological else self.dag.ordered(new.order)
        return new

    def _in_order(self, head: int) -> bool:
        """Whether the partitions partition `head` reads from come before it, and those reading from it after it.
        (A region before its first region is in a partition that starts before it.)"""
        _, bits, reads, feeds = self.parts[head]
        lead = bits & -bits
        before = lead - 1  # the regions before its first region
        if feeds & before:
            return False
        for many, earlier in ((reads & ~before, True), (feeds, False)):
            while many:
                low = many & -many
                other = self.parts[self.chain[self.owner[low.bit_length() - 1]]][1]
                if ((other & -other) < lead) != earlier:
                    return False
                many &= ~other
        return True

    def _all_in_order(self) -> bool:
        done = 0
        for _, h in self.leads:
            _, bits, reads, _ = self.parts[h]
            if reads & ~done:
                return False
            done |= bits
        return True


def group(rg: Any, placement: Mapping[str, Any]) -> Grouping:
    """The canonical grouping of `placement` (region -> choice; see the module docstring). The branches of a
    fork-join stage are independent (no path between them, by find-branches' construction), so any of them form
    a convex set; a pure chain fusion keeps every partition convex.

    The chain fusions do not depend on their order: a pre-partition (a trunk region, or a stage's branches that
    share a choice) fuses with its consumer when that is its only consumer, it is that consumer's only producer
    and they share a choice; a fused pair keeps the first's producers and the second's consumers, so the fusions
    are the links of the pre-partitions' own graph, and the partitions are its chains of links (`Canonical`)."""
    return Canonical.of(rg, placement).groups


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
    """Every grouping one merge away from `groups`: two partitions with one choice whose union is convex and
    leaves the partitions acyclic (a partition holding regions on both sides of the union, e.g. after an earlier
    merge, may read from it and feed it).

    When `groups` is in the order of its first regions (`Dag.ordered`'s order when that is topological), so is a
    merge whose partition reads only from partitions before the first of the two: it takes that one's place."""
    dag = dag_of(rg)
    spans = []  # per partition: its regions, and the regions after and before them, as bit sets
    for g in groups:
        mine = down = up = reads = 0
        for r in g:
            mine |= 1 << dag.index[r]
            down |= dag.desc[r]
            up |= dag.anc[r]
            reads |= dag.pred_bits[dag.index[r]]
        spans.append((mine, down, up, reads & ~mine))
    leads = [dag.index[g[0]] for g in groups]
    in_lead_order = all(a < b for a, b in zip(leads, leads[1:]))
    out = []
    done = 0  # the regions of the partitions before the first of the two
    for i, a in enumerate(groups):
        for j in range(i + 1, len(groups)):
            b = groups[j]
            mine = spans[i][0] | spans[j][0]
            if placement[a[0]] != placement[b[0]] or (spans[i][1] | spans[j][1]) & (spans[i][2] | spans[j][2]) & ~mine:
                continue
            if in_lead_order and not (spans[i][3] | spans[j][3]) & ~mine & ~done:
                out.append((*groups[:i], tuple(sorted(a + b, key=dag.index.__getitem__)), *groups[i + 1:j], *groups[j + 1:]))
            else:
                trial = merged(dag, groups, i, j)
                if trial is not None:
                    out.append(trial)
        done |= spans[i][0]
    return out


def merged(dag: Dag, groups: Grouping, i: int, j: int) -> Grouping | None:
    """`groups` with its partitions `i` and `j` as one (`Dag.ordered`), or None when that makes the partitions
    cyclic."""
    try:
        return dag.ordered([g for k, g in enumerate(groups) if k not in (i, j)] + [groups[i] + groups[j]])
    except ValueError:  # the partitions form a cycle
        return None


def refine(
    rg: Any,
    placement: Mapping[str, Any],
    groups: Grouping,
    score: Callable[[Grouping, float], float],
    ok: Callable[[Grouping], bool] | None = None,
    rebase: Callable[[Grouping], None] | None = None,
) -> Grouping:
    """Greedy merges (`merges`) on `groups`, each the one `score` (predicted latency) lowers most among those
    `ok` accepts, until none lowers it: never predicted slower than `groups`. `score(g, bound)` is the latency of
    `g` when it is below `bound`, else any number at least `bound` and at most the latency (a trial that cannot
    be taken needs no exact price); `rebase` is told every grouping taken (the next trials are one merge from it)."""
    best, best_t = groups, score(groups, math.inf)
    while True:
        if rebase is not None:
            rebase(best)
        found: tuple[float, Grouping] | None = None
        for trial in merges(rg, placement, best):
            bound = best_t - 1e-9 if found is None else min(best_t - 1e-9, found[0] - 1e-12)
            t = score(trial, bound)
            if t < bound and (ok is None or ok(trial)):
                found = (t, trial)
        if found is None:
            return best
        best_t, best = found
