"""Critical-path placement and precision: predict a placement's latency with the cost model, and search for the best.

A placement gives every region a `Choice`: a processor and a precision (`stretchc.precision`; the precisions a
region may take come from the `--precision` policy and what its processor runs). A region at a precision is
priced from its workload (`stretchc.costmodel.workload`) by `CostModel.region_ms`, under the target's
measurement protocol (the kernel family that runs it: the DSP int8; the GPU in the protocol's fp16 or fp32,
an int8 model through the delegate's int8 path; the CPU int8 or float under builtin or XNNPACK kernels) — the
function and the graph the cost model's calibration fit prices its points with, too.

Model of execution (what the runtime does with the schedule): a placement is cut into partitions (a grouping,
`stretchc.costmodel.grouping`: convex sets of regions with one choice); partitions run in topological order; a
partition costs its regions' op times plus one dispatch of its processor, and starts when every value it reads
from another partition has crossed the boundary (sync cost, plus a copy when the processors differ, of the
tensor in the consumer's dtype) *and* its processor is free; its outputs are ready when it ends. So concurrent
partitions cost their maximum, partitions sharing a processor serialize, and values inside a partition cost
nothing. Where producer and consumer differ in dtype, one conversion per boundary tensor is priced where the
compiler plans it (`stretchc.precision.converts_in_producer`, `CostModel.conversion_ms`); model inputs and
outputs are converted by the partition that reads or writes them. `simulate` returns the makespan and the
timeline (one entry per partition).

Search (`optimise`): placements are priced with their canonical grouping. Exhaustive over every eligible
assignment when the space has at most `EXHAUSTIVE_LIMIT` placements; otherwise block coordinate descent from the
best one-choice placement (the whole model as one partition), from the branches spread over the processors and
from the caller's seeds: repeatedly re-optimise one block (a stage's branches, or any other region)
exhaustively, then move single regions to any choice, until nothing improves; first with each region's fastest
choice per processor (where the regions run), then with its fastest 8-bit and fastest float choice on the
processor it runs on (at what precision); a block of more than `BLOCK_LIMIT` placements (a NAS cell's five
branches over three processors: 243) is re-optimised two of its regions at a time, every pair exhaustively (a
move that only pays when two branches change processor together is still found; five branches cost 90
placements, not 243, and such cells come sixteen to a network). Each placement is priced once, each step never increases the predicted latency. The found processors are tried with one precision everywhere. Then (`plan`) the grouping of the result
is refined by merges the cost model prices, and the whole model as one partition on every processor at every
precision every region may take is compared: the plan is never predicted slower than the best single processor.
The accuracy guard's rejections have two scopes: a choice rejected for a region (measured in a partition of a
split plan, where sync points are checked too) keeps that region from it in split plans only; the whole model as
one partition at that choice is a different partition, and only its own measurement (`whole_rejected`) rules it
out.
Fixed (overridden) regions keep their processor.

Limits (`stretchc.costmodel.limits`): when the best placement breaks a limit of the target (Hexagon
partition count or size, GPU delegate partitions), the search runs again over the placements that keep to
every limit, and anything still breaking one (a policy's placement) is repaired; the report's `limits` says
which limit bound, which regions it moved and what it cost.

Eligibility (`eligibility`): a region may go to a processor when the target has it, when the region can take
one of its precisions (a processor that runs int8 only needs calibration data and a quantizing pipeline), and
when every op keeps the processor's op rules (`Backend.op_violation`, the rule named in the reason).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NamedTuple

from stretchc.backends import backend, fallback, processors
from stretchc.costmodel import CostModel
from stretchc.costmodel.grouping import GROUPINGS, Grouping, cut, dag_of, partition_name, refine
from stretchc.costmodel.limits import feasible, repair, target_limits, violations
from stretchc.costmodel.profile import OpProfile
from stretchc.costmodel.workload import Workload, workload_of
from stretchc.eligibility import describe
from stretchc.errors import StretchError
from stretchc.ir import DTYPE_SIZES, Module, Node
from stretchc.precision import HOST, PRECISIONS, QUANTIZED, choices, converts_in_producer, form

EXHAUSTIVE_LIMIT = 4096
MAX_ROUNDS = 6  # of a block coordinate descent (each round never increases the predicted latency)
BLOCK_LIMIT = 81  # placements of a block searched exhaustively (four branches over three processors)


@dataclass
class EligibilityContext:
    region: str
    nodes: list[Node]
    target: Any
    calibrated: bool  # the pipeline quantizes (quantize-partitions) and calibration data was given


def eligibility(ec: EligibilityContext, proc: str) -> str | None:
    """None when region `ec.region` may run on `proc`, else why not (see the module docstring)."""
    b = backend(proc)
    if ec.target is not None:
        why = ec.target.unavailable(proc)
        if why is not None:
            return why
    if not ec.calibrated and b.quantized_only(ec.target):
        return (
            f"{b.label} partitions must be {'/'.join(b.precisions(ec.target))}: automatic placement there needs --calib data "
            "(and quantize-partitions in the pipeline)"
        )
    for n in ec.nodes:
        v = b.op_violation(n)
        if v is not None:
            return describe(n, ec.region, b, v)
    return None


class Choice(NamedTuple):
    """Where a region runs and at which precision."""

    processor: str
    precision: str


@dataclass
class RegionGraph:
    names: list[str]
    kinds: dict[str, str]
    stage: dict[str, int | None]
    nodes: dict[str, list[Node]]  # empty lists for a stored workload
    ops: dict[str, tuple[OpProfile, ...]]
    preds: dict[str, list[tuple[str, int, int]]]  # region -> [(pred region, activation elements, other bytes)]
    outs: dict[str, list[tuple[int, list[str], bool]]]  # region -> [(elements, consumer regions, model output?)]
    host_in: dict[str, int]  # region -> elements of model inputs it reads
    io_form: str = "float32"  # dtype of the model's inputs and outputs in the bundle (--io-dtype)
    cost: dict[str, dict[Choice, float]] = field(default_factory=dict)  # region -> choice -> ms (ops + dispatch)
    dag: Any = None  # its structure, built on first use (stretchc.costmodel.grouping.dag_of)
    cut: Any = None  # the grouping function placements are priced with (None: grouping.group, the canonical one)
    flows: dict[Any, Any] = field(default_factory=dict)  # grouping -> what crosses between its partitions (`_flows`)


def workload_graph(work: Workload, io_form: str = "float32", nodes: dict[str, list[Node]] | None = None) -> RegionGraph:
    """The region graph of a workload (no costs yet; see `price`)."""
    names = [r.name for r in work.regions]
    preds: dict[str, list[tuple[str, int, int]]] = {n: [] for n in names}
    for s, d, elems, other in work.edges():
        preds[d].append((s, elems, other))
    outs: dict[str, list[tuple[int, list[str], bool]]] = {n: [] for n in names}
    for v in work.values:
        outs[v.producer].append((v.elements, list(v.consumers), v.output))
    return RegionGraph(
        names, {r.name: r.kind for r in work.regions}, {r.name: r.stage for r in work.regions}, nodes or {n: [] for n in names},
        {r.name: r.ops for r in work.regions}, preds, outs, {r.name: r.inputs for r in work.regions}, io_form,
    )


def region_graph(module: Module, io_form: str = "float32") -> RegionGraph:
    """The regions of `module`, what crosses between them, and what each reads from and writes to the host."""
    nodes: dict[str, list[Node]] = {r.name: [] for r in module.regions}
    for node in module.graph.nodes:
        if node.region in nodes:
            nodes[node.region].append(node)
    return workload_graph(workload_of(module), io_form, nodes)


def price(rg: RegionGraph, cm: CostModel, options: dict[str, list[Choice]]) -> None:
    """Fill `rg.cost` for every region and every choice it may take (choices priced before are kept)."""
    for r in rg.names:
        known = rg.cost.setdefault(r, {})
        for c in options[r]:
            if c not in known:
                known[c] = cm.region_ms(rg.ops[r], c.processor, c.precision)


def makespan(rg: RegionGraph, cm: CostModel, placement: dict[str, Choice], groups: Grouping | None = None) -> float:
    """`simulate`'s makespan alone (what the search compares: no timeline is built)."""
    return simulate(rg, cm, placement, groups, timeline=False)[0]


def simulate(
    rg: RegionGraph, cm: CostModel, placement: dict[str, Choice], groups: Grouping | None = None, *, timeline: bool = True
) -> tuple[float, list[dict[str, Any]]]:
    """The predicted makespan of `placement` cut into `groups` (default: its canonical grouping,
    `stretchc.costmodel.grouping.group`) and the timeline, one entry per partition (see the module docstring).

    A partition costs its regions' op times plus one dispatch; it starts when every value it reads from another
    partition has crossed (one sync, and a copy between processors, per producer partition) and its processor is
    free; its outputs are ready when it ends."""
    if groups is None:
        groups = cut(rg, placement)
    inflow, outv = _flows(rg, groups)
    finish: list[float] = [0.0] * len(groups)
    converted: list[dict[str, float]] = [{} for _ in groups]  # partition -> dtype -> when its producer-side conversions to it end
    free: dict[str, float] = {}
    entries = []
    last = 0.0
    for i, g in enumerate(groups):
        c = placement[g[0]]
        f = form(c.precision)
        ready = 0.0
        for j, (elems, other) in inflow[i].items():  # the latest arrival: order does not matter
            cs = placement[groups[j][0]]
            fs = form(cs.precision)
            t = converted[j].get(f, finish[j])
            t += cm.transfer_ms(elems * DTYPE_SIZES[f] + other, cs.processor, c.processor)
            if fs != f and f not in converted[j]:  # the consumer converts
                t += cm.conversion_ms(elems, c.processor, fs, f)
            ready = max(ready, t)
        start = max(ready, free.get(c.processor, 0.0))
        work = sum(rg.cost[r][c] for r in g) - (len(g) - 1) * cm.dispatch_ms[c.processor]  # one dispatch per partition
        host_in = sum(rg.host_in[r] for r in g)
        if host_in and f != rg.io_form:
            work += cm.conversion_ms(host_in, c.processor, rg.io_form, f)
        end = start + work
        extra = 0.0
        done: dict[str, float] = {}
        for elems, readers, to_host in outv[i]:
            wanted: dict[str, list[str]] = {}
            for j in readers:
                d = placement[groups[j][0]]
                wanted.setdefault(form(d.precision), []).append(d.processor)
            if to_host:
                wanted.setdefault(rg.io_form, []).append(HOST)
            for q, procs in sorted(wanted.items()):
                if q != f and converts_in_producer(c.processor, procs, f, q):
                    extra += cm.conversion_ms(elems, c.processor, f, q)
                    done[q] = end + extra
        finish[i] = end
        converted[i] = done
        free[c.processor] = end + extra
        last = max(last, end + extra)
        if timeline:
            entries.append({
                "partition": partition_name(g), "regions": list(g), "processor": c.processor, "precision": c.precision,
                "start_ms": start, "end_ms": end + extra,
            })
    return last, entries


FLOWS_KEPT = 1 << 14  # groupings whose flows a region graph keeps (the search prices many placements per grouping)


def _flows(rg: RegionGraph, groups: Grouping) -> tuple[list[dict[int, list[int]]], list[list[tuple[int, list[int], bool]]]]:
    """What crosses between the partitions of `groups`, which depends on the grouping alone (kept on `rg`): per
    partition, its producer partitions with the activation elements and other bytes it reads from each; and per
    partition, each value it hands on (elements, consumer partitions, whether it is a model output)."""
    found = rg.flows.get(groups)
    if found is not None:
        return found  # type: ignore[no-any-return]
    part = {r: i for i, g in enumerate(groups) for r in g}
    inflow: list[dict[int, list[int]]] = [{} for _ in groups]
    outv: list[list[tuple[int, list[int], bool]]] = [[] for _ in groups]
    for s in rg.names:
        i = part[s]
        for elems, readers, to_host in rg.outs[s]:
            js = sorted({part[d] for d in readers} - {i})
            for j in js:
                inflow[j].setdefault(i, [0, 0])[0] += elems
            if js or to_host:
                outv[i].append((elems, js, to_host))
    for d in rg.names:
        for s, _, other in rg.preds[d]:
            if other and part[s] != part[d]:
                inflow[part[d]].setdefault(part[s], [0, 0])[1] += other
    if len(rg.flows) >= FLOWS_KEPT:
        rg.flows.clear()
    rg.flows[groups] = (inflow, outv)
    return inflow, outv


def _blocks(rg: RegionGraph) -> list[list[str]]:
    blocks: list[list[str]] = []
    by_stage: dict[int, list[str]] = {}
    for r in rg.names:
        st = rg.stage[r]
        if st is not None and rg.kinds[r] == "branch":
            by_stage.setdefault(st, []).append(r)
        else:
            blocks.append([r])
    return blocks + [by_stage[k] for k in sorted(by_stage)]


def _uniform(candidates: dict[str, list[Choice]], base: dict[str, Choice]) -> list[dict[str, Choice]]:
    """`base`'s processors with one precision everywhere it is a candidate (one placement per precision)."""
    out = []
    for q in PRECISIONS:
        pl = {r: (Choice(c.processor, q) if Choice(c.processor, q) in candidates[r] else c) for r, c in base.items()}
        if pl != base and pl not in out:
            out.append(pl)
    return out


def optimise(
    rg: RegionGraph,
    cm: CostModel,
    candidates: dict[str, list[Choice]],
    seeds: list[dict[str, Choice]] = (),  # type: ignore[assignment]
    feasible: Callable[[dict[str, Choice], Grouping], bool] | None = None,
) -> tuple[dict[str, Choice], float, str]:
    """The placement with the least predicted latency among those `feasible` accepts with their canonical grouping
    (all by default), its latency, and the method used. When no placement tried is feasible, the best one regardless (the caller
    repairs it, see `stretchc.costmodel.limits`)."""
    if feasible is not None:
        pl, t, method = _search(rg, candidates, list(seeds), _Feasible(rg, cm, feasible))
        if t < float("inf"):
            return pl, t, method
    return _search(rg, candidates, list(seeds), lambda pl: makespan(rg, cm, pl))


@dataclass
class _Feasible:
    """A placement's latency, or infinity when it breaks a limit."""

    rg: RegionGraph
    cm: CostModel
    ok: Callable[[dict[str, Choice], Grouping], bool]

    def __call__(self, pl: dict[str, Choice]) -> float:
        groups = cut(self.rg, pl)
        return makespan(self.rg, self.cm, pl, groups) if self.ok(pl, groups) else float("inf")


def _search(
    rg: RegionGraph, candidates: dict[str, list[Choice]], seeds: list[dict[str, Choice]], score: Callable[[dict[str, Choice]], float]
) -> tuple[dict[str, Choice], float, str]:
    names = rg.names
    space = 1
    for r in names:
        space *= len(candidates[r])
    seen: dict[tuple[Choice, ...], float] = {}

    def priced(pl: dict[str, Choice]) -> float:
        """`score`, each placement priced once."""
        key = tuple(pl[r] for r in names)
        if key not in seen:
            seen[key] = score(pl)
        return seen[key]

    if space <= EXHAUSTIVE_LIMIT:
        best, best_t = None, float("inf")
        for combo in itertools.product(*(candidates[r] for r in names)):
            pl = dict(zip(names, combo))
            t = priced(pl)
            if best is None or t < best_t - 1e-12:
                best, best_t = pl, t
        return best, best_t, f"exhaustive over {space} placements"  # type: ignore[return-value]
    uniform = [{r: (choice if choice in candidates[r] else candidates[r][0]) for r in names} for choice in sorted({c for cs in candidates.values() for c in cs})]
    narrow = {r: _fastest_per_processor(rg, r, candidates[r], by_form=False) for r in names}
    wide = {r: _fastest_per_processor(rg, r, candidates[r], by_form=True) for r in names}
    rr = {}  # the branches of each stage spread over the processors and their forms, the trunk on the first
    for r in names:
        c = wide[r]
        rr[r] = c[0] if rg.kinds[r] != "branch" else c[(int(r.rsplit(".b", 1)[1]) if ".b" in r else 0) % len(c)]
    # Descend from the best one-choice start, from the spread one and from the seeds: a descent from a
    # single-partition start rarely leaves it (splitting one region off pays an invoke and a sync first).
    starts = [min(uniform, key=priced), rr, *(dict(s) for s in seeds if all(s.get(r) in candidates[r] for r in names))]
    best, best_t, rounds = None, float("inf"), 0
    unique: list[dict[str, Choice]] = []
    for st in starts:
        if st not in unique:
            unique.append(st)
    for st in unique:
        pl, t, n = _descend(rg, candidates, (wide, narrow), st, priced)
        rounds = max(rounds, n)
        if best is None or t < best_t - 1e-12:
            best, best_t = pl, t
    assert best is not None
    for pl in _uniform(candidates, best):
        t = priced(pl)
        if t < best_t - 1e-9:
            best, best_t = pl, t
    return best, best_t, f"block coordinate descent from {len(unique)} starts ({space} placements is above the exhaustive limit {EXHAUSTIVE_LIMIT}; at most {rounds} rounds)"


def _descend(
    rg: RegionGraph, candidates: dict[str, list[Choice]], narrowed: tuple[dict[str, list[Choice]], dict[str, list[Choice]]],
    start: dict[str, Choice], score: Callable[[dict[str, Choice]], float],
) -> tuple[dict[str, Choice], float, int]:
    """Block coordinate descent from `start` in two phases: first each block (a stage, or a trunk region)
    exhaustively over its regions' fastest choice per processor (`narrow`: where the regions run), then over
    their fastest 8-bit and float choice on the processor each runs on (`wide` kept to that processor: at what
    precision); each round ends with single-region moves over every choice, and a phase ends when a round
    improves nothing. Never worse than `start`; returns the placement, its latency and the rounds run."""
    wide, narrow = narrowed
    best, best_t = start, score(start)
    rounds = 0
    for phase in ("where", "precision"):
        improved, phase_rounds = True, 0
        while improved and phase_rounds < MAX_ROUNDS:
            improved, phase_rounds = False, phase_rounds + 1
            for block in _blocks(rg):
                options = narrow if phase == "where" else {r: [c for c in wide[r] if c.processor == best[r].processor] or [best[r]] for r in block}
                for move in _block_moves(options, block):
                    pl = {**best, **move}
                    t = score(pl)
                    if t < best_t - 1e-9:
                        best, best_t, improved = pl, t, True
            for r in rg.names:
                for c in candidates[r]:
                    if c != best[r]:
                        pl = {**best, r: c}
                        t = score(pl)
                        if t < best_t - 1e-9:
                            best, best_t, improved = pl, t, True
        rounds += phase_rounds
    return best, best_t, rounds


def _block_moves(options: dict[str, list[Choice]], block: list[str]) -> Iterator[dict[str, Choice]]:
    """The choices for `block`'s regions a descent round tries: every combination `options` allow when there are at
    most `BLOCK_LIMIT`, else every combination for each pair of its regions (see the module docstring)."""
    size = 1
    for r in block:
        size *= len(options[r])
    groups = [block] if size <= BLOCK_LIMIT else [list(pair) for pair in itertools.combinations(block, 2)]
    for regions in groups:
        for combo in itertools.product(*(options[r] for r in regions)):
            yield dict(zip(regions, combo))


def _fastest_per_processor(rg: RegionGraph, r: str, options: list[Choice], *, by_form: bool) -> list[Choice]:
    """Of region `r`'s `options`, per processor the one with the least region time (the first when unpriced);
    `by_form`: one among its 8-bit precisions and one among its float ones (whether a region is 8-bit decides the
    conversions at its boundaries; which precision within a form rarely matters to its neighbours)."""
    cost = rg.cost.get(r, {})
    best: dict[tuple[str, bool], Choice] = {}
    for c in options:
        key = (c.processor, by_form and c.precision in QUANTIZED)
        if key not in best or cost.get(c, float("inf")) < cost.get(best[key], float("inf")):
            best[key] = c
    return list(best.values())


def binding_limits(
    rg: RegionGraph, cm: CostModel, wanted: dict[str, Choice], placement: dict[str, Choice], limits: dict[str, int]
) -> list[dict[str, Any]]:
    """For every limit the wanted placement (the unconstrained optimum, or the policy's) breaks: which limit,
    why, the regions the limits moved off its processor, and what keeping to the limits cost (ms)."""
    if wanted == placement:
        return []
    wanted_ms = simulate(rg, cm, wanted)[0]
    cost = simulate(rg, cm, placement)[0] - wanted_ms
    out = []
    for v in violations(rg, wanted, limits):
        moved = [r for r in rg.names if wanted[r].processor == v.processor and placement[r].processor != v.processor and r in v.regions]
        if moved:
            out.append({
                "limit": v.limit, "processor": v.processor, "message": v.message, "regions": moved,
                "cost_ms": round(cost, 4), "wanted_ms": round(wanted_ms, 4),
            })
    return out


def _precision_why(policy: str, calibrated: bool, chosen: Choice, totals: dict[str, float], target: Any) -> str:
    """Why a region runs at its precision, in one sentence."""
    runs = backend(chosen.processor).precisions(target)
    if len(runs) == 1:
        return f"{chosen.precision}: the {chosen.processor} runs {chosen.precision} only"
    if policy != "auto":
        return f"--precision {policy}: {chosen.precision}"
    alts = [f"{q} {t:.3f} ms" for q, t in totals.items() if q != chosen.precision]
    if alts:
        text = f"auto: {chosen.precision} gives the least predicted latency on {chosen.processor} (model {totals[chosen.precision]:.3f} ms; {', '.join(alts)})"
    else:
        text = f"auto: {chosen.precision}, the only precision it may take on {chosen.processor}"
    if not calibrated and "int8" in runs:
        text += "; int8 needs calibration data (--calib)"
    return text


def plan(
    module: Module,
    target: Any,
    *,
    fixed: dict[str, str] | None = None,
    policy: str = "float",
    calibrated: bool = False,
    optimise_free: bool = True,
    given: dict[str, str | Choice] | None = None,
    seeds: list[dict[str, str]] = (),  # type: ignore[assignment]
    io_dtype: str = "float32",
    rejected: dict[str, dict[Choice, str]] | None = None,
    groups: Grouping | None = None,
    grouping: str = "cost",
    whole_rejected: dict[Choice, str] | None = None,
) -> dict[str, Any]:
    """Placement, precision, grouping into partitions and their explanation (the placement report dict).

    `fixed` regions keep their processor (overrides). With `optimise_free` the other regions' processors are
    chosen by the search, else they take `given` (a policy's choice; a `Choice` in `given` also pins the
    precision). Precisions come from `policy` (`stretchc.precision.choices`); `calibrated` says whether int8 is
    available (calibration data and a quantizing pipeline). `io_dtype`: the bundle's model input/output dtype.
    `rejected`: per region the choices it may not take, each with why (the accuracy guard measured them below
    its bound in a partition of a split plan); a region left with no choice runs float32 on the fallback processor.
    `whole_rejected`: the choices the whole model as one partition may not take (the guard measured that partition
    below its bound); the region rejections do not apply to it (see the module docstring). `groups`: the grouping to
    price (default: chosen with the placement, `stretchc.costmodel.grouping`); `grouping`: "cost" (partitions
    formed by the cost model) or "regions" (each region its own partition, `grouping.regions`: no merges, and no
    one-partition candidate). Every placement keeps to the
    target's limits where it can (see the module docstring). With `optimise_free`, no fixed region and no pinned
    precision, the plan is never predicted slower than the whole model as one partition on any processor at any
    precision every region may take (StretchError "internal" otherwise).
    """
    cm = CostModel(target)
    fixed = dict(fixed or {})
    given = dict(given or {})
    procs = tuple(p for p in processors() if p in target.processors or p in fixed.values())
    rg = region_graph(module, io_dtype)
    rg.cut = GROUPINGS[grouping]
    elig: dict[str, dict[str, str | None]] = {}
    candidates: dict[str, list[Choice]] = {}  # what the search may choose
    movable: dict[str, list[Choice]] = {}  # what a repair may move a region to
    options: dict[str, list[Choice]] = {}  # what is priced (the report's alternatives)
    whole: dict[str, list[Choice]] = {}  # what the whole model as one partition is priced at (the report's singles)
    one: dict[str, list[Choice]] = {}  # ... and what the search may return it at

    rejected = rejected or {}
    base = Choice(fallback().name, "float32")

    whole_rejected = whole_rejected or {}

    def at(on: list[str], r: str, refused: dict[Choice, str] | None = None) -> list[Choice]:
        out = [Choice(p, q) for p in on for q in choices(policy, p, calibrated=calibrated, target=target)]
        return [c for c in out if c not in (rejected.get(r, {}) if refused is None else refused)]

    for r in rg.names:
        ec = EligibilityContext(r, rg.nodes[r], target, calibrated)
        elig[r] = {p: eligibility(ec, p) for p in processors()}
        eligible = [p for p in procs if elig[r][p] is None] or [fallback().name]
        pin = given.get(r)
        if isinstance(pin, Choice):
            candidates[r] = movable[r] = [pin]
        elif r in fixed:  # the guard never rejects a --place'd region's last precision
            candidates[r] = movable[r] = at([fixed[r]], r) or [Choice(fixed[r], q) for q in choices(policy, fixed[r], calibrated=calibrated, target=target)]
        else:
            movable[r] = at(eligible, r) or [base]
            candidates[r] = (at([pin], r) if not optimise_free and pin is not None else []) or movable[r]
        options[r] = sorted(set(movable[r]) | set(at(list(procs), r)) | set(candidates[r]))
        whole[r] = at(list(procs), r, whole_rejected)
        one[r] = [pin] if isinstance(pin, Choice) else at([fixed[r]] if r in fixed else eligible, r, whole_rejected) or candidates[r]
    price(rg, cm, options)
    limits = target_limits(target)
    seeded = [{r: Choice(p, choices(policy, p, calibrated=calibrated, target=target)[0]) for r, p in s.items()} for s in seeds]
    wanted, _, method = optimise(rg, cm, candidates, seeded)
    placement = wanted
    if violations(rg, wanted, limits):
        placement, _, method = optimise(rg, cm, candidates, seeded, feasible(rg, limits))
        method += ", under the target's limits"
    if not optimise_free:
        method = "policy placement" + ("" if all(len(c) == 1 for c in candidates.values()) else f"; precisions by {method}")
    if violations(rg, placement, limits):
        placement = repair(rg, placement, movable, limits, lambda pl: makespan(rg, cm, pl))
    if groups is None and grouping != "cost":
        groups = cut(rg, placement)
    elif groups is None:
        groups, method = _form_partitions(rg, cm, placement, limits, method)
        if optimise_free:
            placement, groups, method = _no_slower_than_one(rg, cm, one, limits, placement, groups, method)
    total, timeline = simulate(rg, cm, placement, groups)
    bound = binding_limits(rg, cm, wanted, placement, limits)
    changed_by = {r: b for b in bound for r in b["regions"]}
    regions = []
    for r in rg.names:
        chosen = placement[r]
        alts: dict[str, Any] = {}
        for p in processors():
            why = elig[r][p]
            if p not in procs:
                alts[p] = {"eligible": False, "reason": why or f"not a processor of {target.name}"}
                continue
            per = {}
            qs = [q for q in choices(policy, p, calibrated=calibrated, target=target) if Choice(p, q) in options[r]]
            if not qs and p != chosen.processor:
                why = "; ".join(rejected[r][Choice(p, q)] for q in choices(policy, p, calibrated=calibrated, target=target) if Choice(p, q) in rejected.get(r, {}))
                alts[p] = {"eligible": False, "reason": why or elig[r][p] or "no precision it may take"}
                continue
            for q in (*qs, chosen.precision) if p == chosen.processor and chosen.precision not in qs else qs:
                t_alt = total if Choice(p, q) == chosen else makespan(rg, cm, {**placement, r: Choice(p, q)})
                per[q] = {"region_ms": round(rg.cost[r][Choice(p, q)], 4), "total_ms": round(t_alt, 4)}
            q_best = chosen.precision if p == chosen.processor else min(per, key=lambda q: (per[q]["total_ms"], q))
            alts[p] = {"eligible": why is None, "reason": why, "precision": q_best, **per[q_best], "precisions": per}
        if r in fixed:
            why = f"override: --place {r}={chosen.processor} (overrides always win)"
        elif r in changed_by:
            b = changed_by[r]
            why = (
                f"target limit {b['limit']}: {b['message']}, so {r} runs on {chosen.processor} instead of {wanted[r].processor}; "
                f"the limits cost {b['cost_ms']:.2f} ms end to end ({b['wanted_ms']:.2f} -> {total:.2f} ms)"
            )
        elif optimise_free:
            others = [f"{p} {a['total_ms']:.2f} ms" for p, a in alts.items() if p != chosen.processor and a.get("eligible")]
            why = f"critical-path: {chosen.processor} gives the least predicted end-to-end latency ({total:.2f} ms)" + (f"; on {', '.join(others)}" if others else "; no other eligible processor")
        else:
            why = f"policy placement on {chosen.processor}"
        totals = {q: a["total_ms"] for q, a in alts[chosen.processor]["precisions"].items()}
        regions.append({
            "region": r, "kind": rg.kinds[r], "processor": chosen.processor, "precision": chosen.precision, "override": r in fixed,
            "why": why, "precision_why": _precision_why(policy, calibrated, chosen, totals, target) + "".join(
                f"; {c.processor} {c.precision} rejected by the accuracy guard ({w})" for c, w in sorted(rejected.get(r, {}).items()) if c != chosen
            ),
            "predicted_ms": round(rg.cost[r][chosen], 4), "alternatives": alts, "ops": len(rg.nodes[r]),
            "limit": changed_by[r]["limit"] if r in changed_by else None,
        })
    singles = {p: round(ms, 4) for p, (ms, _) in single_processor(rg, cm, whole, limits, [p for p in procs if all(elig[r][p] is None for r in rg.names)]).items()}
    best_single = min(singles.items(), key=lambda kv: kv[1]) if singles else None
    free = optimise_free and grouping == "cost" and not fixed and not any(isinstance(v, Choice) for v in given.values())
    if free and best_single and total > best_single[1] + 1e-3:
        raise StretchError(
            "internal",
            f"the plan is predicted slower ({total:.4f} ms) than the whole model as one partition on the {best_single[0]} ({best_single[1]:.4f} ms), "
            "which the search always has as a candidate",
        )
    edges = [
        {"from": s, "to": d, "elements": elems, "bytes": elems * DTYPE_SIZES[form(placement[d].precision)] + other}
        for d in rg.names for s, elems, other in rg.preds[d]
    ]
    return {
        "target": target.name,
        "predicted_latency_ms": round(total, 4),
        "method": method,
        "grouping": grouping,
        "placement": {r: c.processor for r, c in placement.items()},
        "precision": {r: c.precision for r, c in placement.items()},
        "precision_policy": policy,
        "calibrated": calibrated,
        "io_dtype": io_dtype,
        "limits": bound,
        "regions": regions,
        "partitions": partition_report(rg, cm, placement, groups, total),
        "rejected": [{"region": r, "processor": c.processor, "precision": c.precision, "why": why} for r in rg.names for c, why in sorted(rejected.get(r, {}).items())],
        "timeline": [{**t, "start_ms": round(t["start_ms"], 4), "end_ms": round(t["end_ms"], 4)} for t in timeline],
        "edges": edges,
        "single_processor_ms": singles,
        "best_single": {"processor": best_single[0], "ms": best_single[1]} if best_single else None,
        "speedup_over_best_single": round(best_single[1] / total, 3) if best_single and total > 0 else None,
    }


def one_partition(rg: RegionGraph) -> Grouping:
    """The whole model as one partition."""
    return dag_of(rg).ordered([rg.names])


def single_processor(
    rg: RegionGraph, cm: CostModel, options: dict[str, list[Choice]], limits: dict[str, int], on: list[str]
) -> dict[str, tuple[float, Choice]]:
    """The whole model as one partition on each processor of `on`, at its fastest precision among those every region
    may take (`options`) and that keeps the target's limits (the prototype's single-processor baselines C, G and D):
    processor -> (ms, choice)."""
    one = one_partition(rg)
    out: dict[str, tuple[float, Choice]] = {}
    common = set(options[rg.names[0]]).intersection(*(options[r] for r in rg.names)) if rg.names else set()
    for c in sorted(common):
        if c.processor not in on:
            continue
        pl = {r: c for r in rg.names}
        price(rg, cm, {r: [c] for r in rg.names})
        if violations(rg, pl, limits, one):
            continue
        t = simulate(rg, cm, pl, one)[0]
        if c.processor not in out or t < out[c.processor][0] - 1e-12:
            out[c.processor] = (t, c)
    return out


def _form_partitions(rg: RegionGraph, cm: CostModel, placement: dict[str, Choice], limits: dict[str, int], method: str) -> tuple[Grouping, str]:
    """The grouping of `placement`: its canonical grouping refined by merges the cost model prices (keeping to the
    target's limits when the canonical grouping does)."""
    start = cut(rg, placement)
    ok = None if violations(rg, placement, limits, start) else (lambda g: not violations(rg, placement, limits, g))
    groups = refine(rg, placement, start, lambda g: makespan(rg, cm, placement, g), ok)
    if groups != start:
        method += f"; {len(start) - len(groups)} partition merge(s) priced by the cost model"
    return groups, method


def _no_slower_than_one(
    rg: RegionGraph, cm: CostModel, candidates: dict[str, list[Choice]], limits: dict[str, int],
    placement: dict[str, Choice], groups: Grouping, method: str,
) -> tuple[dict[str, Choice], Grouping, str]:
    """`placement` cut into `groups`, or the whole model as one partition on one processor at one precision (every
    region may take it) when that is predicted faster: the plan is never predicted slower than the best single
    processor."""
    total = simulate(rg, cm, placement, groups)[0]
    best = single_processor(rg, cm, candidates, limits, sorted({c.processor for cs in candidates.values() for c in cs}))
    if not best:
        return placement, groups, method
    t, c = min(best.values(), key=lambda tc: (tc[0], tc[1]))
    if t < total - 1e-9:
        return {r: c for r in rg.names}, one_partition(rg), f"{method}; the whole model as one {c.processor} partition is faster ({t:.3f} < {total:.3f} ms)"
    return placement, groups, method


def partition_report(rg: RegionGraph, cm: CostModel, placement: dict[str, Choice], groups: Grouping, total: float) -> list[dict[str, Any]]:
    """Per partition: its regions, processor, precision, predicted time, and why its regions share it (what
    splitting it into its regions would cost) or why it stands alone (what the cheapest merge would cost)."""
    dag = dag_of(rg)
    out = []
    for i, g in enumerate(groups):
        c = placement[g[0]]
        ms = sum(rg.cost[r][c] for r in g) - (len(g) - 1) * cm.dispatch_ms[c.processor]
        if len(g) > 1:
            split = dag.ordered([x for k, x in enumerate(groups) if k != i] + [(r,) for r in g])
            delta = simulate(rg, cm, placement, split)[0] - total
            why = (
                f"{len(g)} regions on the {c.processor} at {c.precision} share one partition (one invoke): splitting it into "
                f"{len(g)} partitions is predicted {delta:+.3f} ms ({total:.3f} -> {total + delta:.3f} ms)"
            )
        else:
            merged = [
                (simulate(rg, cm, placement, dag.ordered([x for k, x in enumerate(groups) if k not in (i, j)] + [g + h]))[0] - total, partition_name(h))
                for j, h in enumerate(groups) if j != i and placement[h[0]] == c and dag.convex(g + h)
            ]
            if merged:
                delta, other = min(merged)
                why = f"its own partition: the cheapest merge (with {other}) is predicted {delta:+.3f} ms"
            else:
                why = f"its own partition: no other partition on the {c.processor} at {c.precision} can join it (convexity)"
        out.append({"name": partition_name(g), "regions": list(g), "processor": c.processor, "precision": c.precision, "predicted_ms": round(ms, 4), "why": why})
    return out


def reprice(
    module: Module, target: Any, report: dict[str, Any], placement: dict[str, Choice], precision_why: dict[str, str],
    groups: Grouping | None = None, rejected: dict[str, dict[Choice, str]] | None = None,
    whole_rejected: dict[Choice, str] | None = None,
) -> dict[str, Any]:
    """`report` (made by `plan`) predicted again for `placement` cut into `groups` (e.g. after quantize-partitions
    demoted some regions to float), without the `rejected` and `whole_rejected` choices (see `plan`): same overrides, placement reasons and binding
    limits; `precision_why` replaces the precision reasons it names."""
    overrides = {r["region"]: r["processor"] for r in report["regions"] if r["override"]}
    new = plan(
        module, target, fixed=overrides, policy=report["precision_policy"], calibrated=report["calibrated"],
        optimise_free=False, given=dict(placement), io_dtype=report["io_dtype"], groups=groups, rejected=rejected,
        grouping=report.get("grouping", "cost"), whole_rejected=whole_rejected,
    )
    old = {r["region"]: r for r in report["regions"]}
    for r in new["regions"]:
        before = old[r["region"]]
        r["why"] = before["why"] if before["processor"] == r["processor"] else f"{before['why']}; moved to {r['processor']} to run float32"
        r["precision_why"] = precision_why.get(r["region"], before["precision_why"])
        r["limit"] = before["limit"]
    new["method"], new["policy"], new["limits"] = report["method"], report.get("policy"), report["limits"]
    if "cost_model" in report:
        new["cost_model"] = report["cost_model"]
    return new
