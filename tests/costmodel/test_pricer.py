"""The search's pricing: the canonical grouping derived move by move, merges, and the `Pricer` that prices a
placement against a base, checked against `simulate` and against the grouping rule stated from scratch, on
NAS-cell-like region graphs (stages of two to five branches over cpu, gpu and dsp at every precision)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from stretchc.backends import backend
from stretchc.costmodel import CostModel
from stretchc.costmodel.grouping import Canonical, Dag, Grouping, dag_of, group, merges
from stretchc.costmodel.placement import Choice, Pricer, RegionGraph, plan, price, simulate, workload_graph
from stretchc.costmodel.profile import OpProfile
from stretchc.costmodel.workload import Crossing, RegionWork, Workload
from stretchc.precision import choices
from stretchc.targets import load_target

from tests.conftest import example_with_regions


def cell_graph(stages: int, seed: int) -> RegionGraph:
    """Stem, `stages` cells of 2-5 branches each reading one of the two latest joins (NASNet's wiring), a join
    reading its branches and the latest join, and a head writing the model output."""
    rnd = random.Random(seed)

    def ops(scale: float) -> tuple[OpProfile, ...]:
        return (OpProfile("conv", 4e6 * scale, 2e5 * scale), OpProfile("dwconv", 5e5 * scale, 1e5 * scale), OpProfile("mem", 0.0, 1e5))

    regions = [RegionWork("stem", "stem", None, ops(2.0), 150528)]
    values: list[Crossing] = []
    other: list[tuple[str, str, int]] = []
    latest = ["stem", "stem"]
    for st in range(1, stages + 1):
        branches = [f"s{st}.b{b}" for b in range(rnd.randint(2, 5))]
        join = f"s{st}.join"
        regions += [RegionWork(b, "branch", st, ops(rnd.uniform(0.2, 3.0))) for b in branches]
        regions.append(RegionWork(join, "join", st, ops(0.1)))
        reads = {b: rnd.choice(latest) for b in branches}
        for src in dict.fromkeys(latest):
            readers = sorted(b for b in branches if reads[b] == src) + ([join] if src == latest[-1] else [])
            if readers:
                values.append(Crossing(src, rnd.choice([4096, 16384, 65536]), tuple(readers), False))
        values += [Crossing(b, rnd.choice([4096, 16384]), (join,), False) for b in branches]
        if rnd.random() < 0.3:
            other.append((latest[-1], branches[0], 64))
        latest = [latest[-1], join]
    regions.append(RegionWork("head", "head", None, ops(0.5)))
    values.append(Crossing(latest[-1], 8192, ("head",), False))
    values.append(Crossing("head", 1000, (), True))
    return workload_graph(Workload(tuple(regions), tuple(values), tuple(sorted(other))))


def options(target: Any) -> list[Choice]:
    return [
        Choice(p, q, k) for p in target.processors for q in choices("auto", p, calibrated=True, target=target) for k in range(backend(p).lanes(target))
    ]


def random_placement(rg: RegionGraph, opts: list[Choice], rnd: random.Random) -> dict[str, Choice]:
    some = rnd.sample(opts, rnd.randint(1, min(3, len(opts))))
    return {r: rnd.choice(some) for r in rg.names}


def random_move(rg: RegionGraph, pl: dict[str, Choice], opts: list[Choice], rnd: random.Random) -> dict[str, Choice]:
    """One region, or two to all branches of one stage, moved (what a descent tries)."""
    stage = rnd.choice([s for s in rg.stage.values() if s is not None])
    block = [r for r in rg.names if rg.stage[r] == stage and rg.kinds[r] == "branch"]
    moved = rnd.sample(block, rnd.randint(1, len(block))) if rnd.random() < 0.6 else [rnd.choice(rg.names)]
    return {**pl, **{r: rnd.choice(opts) for r in moved}}


def reference_grouping(rg: RegionGraph, pl: dict[str, Choice]) -> tuple[tuple[str, ...], ...]:
    """The canonical grouping's rule from scratch: a stage's branches sharing a choice are one pre-partition, every
    other region its own; a pre-partition fuses with its only consumer when it is that one's only producer and they
    share a choice; partitions in `Dag.ordered`'s order."""
    dag = dag_of(rg)
    pre: dict[Any, list[str]] = {}
    for r in rg.names:
        pre.setdefault(("branches", rg.stage[r], pl[r]) if rg.kinds[r] == "branch" else ("region", r), []).append(r)
    parts = list(pre.values())
    of = {r: i for i, p in enumerate(parts) for r in p}
    cons: list[set[int]] = [set() for _ in parts]
    prods: list[set[int]] = [set() for _ in parts]
    for s, d in dag.pairs:
        if of[s] != of[d]:
            cons[of[s]].add(of[d])
            prods[of[d]].add(of[s])
    root = list(range(len(parts)))

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    for a in range(len(parts)):
        if len(cons[a]) == 1:
            (b,) = cons[a]
            if prods[b] == {a} and pl[parts[a][0]] == pl[parts[b][0]]:
                root[find(b)] = find(a)
    fused: dict[int, list[str]] = {}
    for i, p in enumerate(parts):
        fused.setdefault(find(i), []).extend(p)
    return dag.ordered(fused.values())


@pytest.fixture(scope="module", params=[1, 2], ids=["one-cpu-lane", "two-cpu-lanes"])
def target(request):  # type: ignore[no-untyped-def]
    """mi9 (cpu, gpu and a dsp: float32, float16 and int8 partitions meet), its CPU with one lane or two (two
    partitions of one processor at the same time, as the host target's CPU runs them)."""
    t = load_target("mi9")
    t.raw["cpu"]["lanes"] = request.param
    return t


@pytest.mark.parametrize("seed", range(4))
def test_canonical_grouping_move_by_move_is_the_rule(target, seed: int) -> None:  # type: ignore[no-untyped-def]
    rg, rnd = cell_graph(8, seed), random.Random(seed)
    opts = options(target)
    for _ in range(20):
        pl = random_placement(rg, opts, rnd)
        state = Canonical.of(rg, pl)
        assert state.groups == group(rg, pl) == reference_grouping(rg, pl)
        for _ in range(15):
            new = random_move(rg, pl, opts, rnd)
            moved = state.moved(new, [r for r in rg.names if new[r] != pl[r]])
            assert moved.groups == reference_grouping(rg, new)
            if rnd.random() < 0.5:  # the next moves from this one (a descent's accepted move)
                pl, state = new, moved


def test_partitions_out_of_first_region_order_are_sorted_topologically() -> None:
    # Branch b1 of stage 1 reads trunk region t, which comes between the branches: with b0 and b1 together, the
    # partition of the earlier first region reads from a later one, so the order is not the first regions'.
    ops = (OpProfile("mem", 0.0, 1e4),)
    work = Workload(
        (RegionWork("stem", "stem", None, ops), RegionWork("s1.b0", "branch", 1, ops), RegionWork("t", "main", None, ops),
         RegionWork("s1.b1", "branch", 1, ops), RegionWork("head", "head", None, ops)),
        (Crossing("stem", 10, ("s1.b0", "t"), False), Crossing("t", 10, ("s1.b1",), False), Crossing("s1.b0", 10, ("head",), False),
         Crossing("s1.b1", 10, ("head",), False), Crossing("head", 10, (), True)),
    )
    rg = workload_graph(work)
    cpu, gpu = Choice("cpu", "float32"), Choice("gpu", "float32")
    pl = {"stem": cpu, "s1.b0": gpu, "t": cpu, "s1.b1": gpu, "head": cpu}
    assert group(rg, pl) == reference_grouping(rg, pl) == (("stem",), ("t",), ("s1.b0", "s1.b1"), ("head",))
    moved = Canonical.of(rg, {**pl, "s1.b1": cpu}).moved(pl, ["s1.b1"])
    assert moved.groups == group(rg, pl)


@pytest.mark.parametrize("seed", range(3))
def test_merges_are_the_acyclic_unions_dag_ordered_sorts(target, seed: int) -> None:  # type: ignore[no-untyped-def]
    rg, rnd = cell_graph(6, seed), random.Random(seed)
    dag: Dag = dag_of(rg)
    opts = options(target)[:3]  # few choices: many partitions share one

    def merged(groups: Grouping, i: int, j: int) -> Grouping | None:
        try:
            return dag.ordered([g for k, g in enumerate(groups) if k not in (i, j)] + [groups[i] + groups[j]])
        except ValueError:  # a partition (merged before) reads from the union and feeds it
            return None

    cycles = 0
    for _ in range(10):
        pl = random_placement(rg, opts, rnd)
        groups = group(rg, pl)
        for _ in range(4):
            unions = [
                merged(groups, i, j) for i, a in enumerate(groups) for j, b in enumerate(groups)
                if i < j and pl[a[0]] == pl[b[0]] and dag.convex(a + b)
            ]
            cycles += unions.count(None)
            found = merges(rg, pl, groups)
            assert found == [u for u in unions if u is not None]
            if not found:
                break
            groups = rnd.choice(found)
    assert seed != 1 or cycles  # (this graph has such merges)


@pytest.mark.parametrize("seed", range(4))
def test_pricer_is_simulate_to_the_last_bit(target, seed: int) -> None:  # type: ignore[no-untyped-def]
    rg, rnd = cell_graph(8, seed), random.Random(seed)
    cm = CostModel(target)
    opts = options(target)
    price(rg, cm, {r: opts for r in rg.names})
    pricer = Pricer(rg, cm)
    for _ in range(12):
        best = random_placement(rg, opts, rnd)
        pricer.rebase(best)
        best_t = simulate(rg, cm, best)[0]
        for _ in range(25):
            pl = random_move(rg, best, opts, rnd)
            exact = simulate(rg, cm, pl)[0]
            bound = rnd.choice([best_t - 1e-9, best_t * rnd.uniform(0.9, 1.1), float("inf")])
            t = pricer.makespan(pl, bound=bound)
            if t < bound:
                assert t == exact
            else:
                assert exact >= bound and t <= exact
            assert pricer.rounded(pl, 4) == round(exact, 4)
            if t < best_t - 1e-9:  # accepted: the next moves are priced against it
                best, best_t = pl, t
                pricer.rebase(best)
        # Groupings of one placement (the merges `refine` prices)
        groups = group(rg, best)
        pricer.rebase(best, groups)
        for trial in merges(rg, best, groups)[:10]:
            exact = simulate(rg, cm, best, trial)[0]
            assert pricer.makespan(best, trial) == exact
            t = pricer.makespan(best, trial, exact - 1e-9)
            assert exact - 1e-9 <= t <= exact


def test_a_plan_is_the_same_when_made_again() -> None:
    # The pricer remembers runs and scores across the searches of one plan: nothing of that may leak into another.
    module = example_with_regions()
    target = load_target("pixel4")
    first = plan(module, target, policy="auto", calibrated=True)
    assert plan(module, target, policy="auto", calibrated=True) == first
