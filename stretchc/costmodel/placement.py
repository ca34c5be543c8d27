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
tensor in the consumer's dtype) *and* its lane is free; its outputs are ready when it ends. A processor has one
lane unless its backend gives it more (`Backend.lanes`: the host CPU, one per core), and a choice names the lane
too; a lane runs its partitions one after another. So concurrent partitions cost their maximum, partitions
sharing a lane serialize, and values inside a partition cost nothing. Where producer and consumer differ in
dtype, one conversion per boundary tensor is priced where the compiler plans it
(`stretchc.precision.converts_in_producer`, `CostModel.conversion_ms`); model inputs and outputs are converted by
the partition that reads or writes them. `simulate` returns the makespan and the
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
placements, not 243, and such cells come sixteen to a network). Each placement is priced once, each step never
increases the predicted latency. The found processors are tried with one precision everywhere. Then (`plan`) the
grouping of the result is refined by merges the cost model prices, and the whole model as one partition on every
processor at every precision every region may take is compared: the plan is never predicted slower than the best
single processor.
The accuracy guard's rejections have two scopes: a choice rejected for a region (measured in a partition of a
split plan, where sync points are checked too) keeps that region from it in split plans only; the whole model as
one partition at that choice is a different partition, and only its own measurement (`whole_rejected`) rules it
out.
Fixed (overridden) regions keep their processor.

Pricing (`Pricer`): a descent prices thousands of placements, each one block away from the best so far; each is
priced against that one (its base). Its canonical grouping is derived from the base's (`grouping.Canonical`); the
partitions before the first one the move reaches are the base's; where the run meets the base's partitions
again, the base's longest paths from there to the end bound the makespan, which shows most moves to be no better
than the base without pricing them to the end. A price below the bound asked is `simulate`'s to the last bit, so
the search takes the steps it would take pricing every placement with `simulate`, and plans do not change.

Limits (`stretchc.costmodel.limits`): when the best placement breaks a limit of the target (Hexagon
partition count or size, GPU delegate partitions), the search runs again over the placements that keep to
every limit (with the first search's prices: what it priced is not priced again, and a placement's limits are
checked only when it could be taken), and anything still breaking one (a policy's placement) is repaired; the
report's `limits` says which limit bound, which regions it moved and what it cost.

Eligibility (`eligibility`): a region may go to a processor when the target has it, when the region can take
one of its precisions (a processor that runs int8 only needs calibration data and a quantizing pipeline), and
when every op keeps the processor's op rules (`Backend.op_violation`, the rule named in the reason).
"""

from __future__ import annotations

import itertools
import math
import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NamedTuple, Protocol

from stretchc.backends import backend, fallback, processors
from stretchc.costmodel import CostModel
from stretchc.costmodel.grouping import GROUPINGS, Canonical, Grouping, cut, dag_of, group, merged, partition_name, refine
from stretchc.costmodel.limits import feasible, repair, target_limits, violations
from stretchc.costmodel.profile import OpProfile
from stretchc.costmodel.workload import Workload, workload_of
from stretchc.eligibility import describe
from stretchc.errors import StretchError
from stretchc.ir import DTYPE_SIZES, HOST, PRECISIONS, Module, Node, lane_name
from stretchc.precision import QUANTIZED, choices, converts_in_producer, form

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
    """Where a region runs and at which precision: a processor, and which of its lanes (`Backend.lanes`)."""

    processor: str
    precision: str
    lane: int = 0


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
    wiring: Any = None  # what every region reads, built on first use (`_wiring`)
    flows: dict[Any, Any] = field(default_factory=dict)  # grouping -> what crosses into and out of its partitions (`_flows`)
    canonical: Any = None  # the canonical grouping's state before any choice, built on first use (grouping.Canonical.of)


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


def simulate(
    rg: RegionGraph, cm: CostModel, placement: dict[str, Choice], groups: Grouping | None = None, *, timeline: bool = True
) -> tuple[float, list[dict[str, Any]]]:
    """The predicted makespan of `placement` cut into `groups` (default: its canonical grouping,
    `stretchc.costmodel.grouping.group`) and the timeline, one entry per partition (see the module docstring).

    A partition costs its regions' op times plus one dispatch; it starts when every value it reads from another
    partition has crossed (one sync, and a copy between processors, per producer partition) and its processor is
    free; its outputs are ready when it ends."""
    run = _priced(rg, cm, placement, cut(rg, placement) if groups is None else groups)
    entries = [
        {
            "partition": partition_name(g), "regions": list(g), "processor": placement[g[0]].processor, "precision": placement[g[0]].precision,
            "lane": placement[g[0]].lane, "start_ms": start, "end_ms": end,
        }
        for g, start, end in zip(run.groups, run.start, run.end)
    ] if timeline else []
    return run.total(), entries


class _Wiring(NamedTuple):
    """What every region reads, seen from the reader (`_wiring`)."""

    values: dict[str, list[tuple[int, str, int]]]  # region -> every value it reads: (value id, producer region, elements)
    other: dict[str, list[tuple[str, int]]]  # region -> (producer region, bytes) of what else it reads (weights, indices)
    producers: dict[str, tuple[str, ...]]  # region -> the regions it reads from
    bit: dict[str, int]  # region -> its bit in bit sets of regions (its index)
    readers: dict[str, int]  # region -> bit set of the regions reading its values
    outs: dict[str, list[tuple[int, int, list[str], bool]]]  # region -> `RegionGraph.outs`, each with its readers' bit set


def _wiring(rg: RegionGraph) -> _Wiring:
    """The (cached) `_Wiring` of a region graph."""
    if rg.wiring is None:
        values: dict[str, list[tuple[int, str, int]]] = {r: [] for r in rg.names}
        vid = 0
        for s in rg.names:
            for elems, reading, _ in rg.outs[s]:
                for d in dict.fromkeys(reading):
                    values[d].append((vid, s, elems))
                vid += 1
        other = {d: [(s, b) for s, _, b in rg.preds[d] if b] for d in rg.names}
        producers = {d: tuple(dict.fromkeys([*(s for _, s, _ in values[d]), *(s for s, _ in other[d])])) for d in rg.names}
        bit = {r: 1 << i for i, r in enumerate(rg.names)}
        outs = {s: [(elems, sum(bit[d] for d in set(reading)), reading, out) for elems, reading, out in rg.outs[s]] for s in rg.names}
        readers = {s: sum(bit[d] for d in {d for _, _, reading, _ in outs[s] for d in reading}) for s in rg.names}
        rg.wiring = _Wiring(values, other, producers, bit, readers, outs)
    return rg.wiring  # type: ignore[no-any-return]


@dataclass
class _Run:
    """`simulate`'s run of a placement cut into a grouping, partition by partition: what each partition's step
    reads of the ones before it (`_step` appends one partition's entries to every list)."""

    placement: dict[str, Choice]
    key: tuple[Choice, ...]  # the placement's choices in the region graph's order
    groups: Grouping
    part: dict[str, int]  # region -> index of its partition
    forms: dict[str, int]  # dtype -> bit set of the regions whose outputs are in it
    finish: list[float] = field(default_factory=list)  # per partition: when its ops end (its outputs are ready)
    converted: list[dict[str, float]] = field(default_factory=list)  # ... dtype -> when its conversion of its outputs to it ends
    free: list[dict[str, float]] = field(default_factory=list)  # ... lane (`lane_name`) -> when it is free, before the partition
    start: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)  # ... when it ends, its conversions of its outputs included
    # ... what it waits for: (producer partition, the dtype of the producer's conversion it reads or None for the
    # producer's own outputs, the time from there to its arrival: sync, copy and conversion)
    arrivals: list[list[tuple[int, str | None, float]]] = field(default_factory=list)

    @classmethod
    def empty(cls, rg: RegionGraph, placement: dict[str, Choice], groups: Grouping) -> "_Run":
        forms: dict[str, int] = {}
        for r, b in _wiring(rg).bit.items():
            f = form(placement[r].precision)
            forms[f] = forms.get(f, 0) | b
        return cls(placement, _key(rg, placement), groups, {r: i for i, g in enumerate(groups) for r in g}, forms)

    def total(self) -> float:
        """The makespan (once every partition is priced)."""
        return max(self.end, default=0.0)

    def take(self, other: "_Run", lo: int, hi: int) -> None:
        """Append `other`'s partitions `lo` to `hi` (their entries, unchanged) to this run's."""
        for mine, theirs in (
            (self.finish, other.finish), (self.converted, other.converted), (self.free, other.free), (self.start, other.start),
            (self.end, other.end), (self.arrivals, other.arrivals),
        ):
            mine += theirs[lo:hi]  # type: ignore[operator]


def _key(rg: RegionGraph, placement: dict[str, Choice]) -> tuple[Choice, ...]:
    """`placement`'s choices in the region graph's order."""
    return tuple(map(placement.__getitem__, rg.names))


def _priced(rg: RegionGraph, cm: CostModel, placement: dict[str, Choice], groups: Grouping) -> _Run:
    """The whole run of `placement` cut into `groups`."""
    run, free = _Run.empty(rg, placement, groups), {}
    for flows in _flows(rg, groups):
        _step(rg, cm, run, free, flows)
    return run


class _Flows(NamedTuple):
    """What crosses into and out of one partition of a grouping (`_flows_of`)."""

    inflow: list[tuple[int, int, int]]  # (producer partition, activation elements, other bytes) of each it reads from
    outs: list[tuple[int, int, list[str], bool]]  # each value it hands on: (elements, its readers' bit set, its readers, model output?)


def _flows_of(rg: RegionGraph, groups: Grouping, part: dict[str, int], i: int) -> _Flows:
    """The flows of partition `i` of `groups` (`part`: region -> its partition)."""
    wiring = _wiring(rg)
    inflow: dict[int, list[int]] = {}
    seen: set[int] = set()
    for d in groups[i]:
        for vid, s, elems in wiring.values[d]:
            j = part[s]
            if j != i and vid not in seen:  # a value crosses once into a partition, however many of its regions read it
                seen.add(vid)
                inflow.setdefault(j, [0, 0])[0] += elems
        for s, nbytes in wiring.other[d]:
            j = part[s]
            if j != i:
                inflow.setdefault(j, [0, 0])[1] += nbytes
    return _Flows([(j, elems, other) for j, (elems, other) in inflow.items()], [v for s in groups[i] for v in wiring.outs[s]])


FLOWS_KEPT = 1 << 12  # groupings whose flows a region graph keeps (a cost-model fit prices many placements per grouping)


def _flows(rg: RegionGraph, groups: Grouping) -> list[_Flows]:
    """The flows of every partition of `groups`, which depend on the grouping alone (kept on `rg`)."""
    found = rg.flows.get(groups)
    if found is None:
        part = {r: i for i, g in enumerate(groups) for r in g}
        found = [_flows_of(rg, groups, part, i) for i in range(len(groups))]
        if len(rg.flows) >= FLOWS_KEPT:
            rg.flows.clear()
        rg.flows[groups] = found
    return found


def _step(rg: RegionGraph, cm: CostModel, run: _Run, free: dict[str, float], flows: _Flows) -> None:
    """Price the next partition of `run` (see `simulate`), whose flows are `flows`; `free` (lane -> when it is
    free) is updated."""
    i = len(run.finish)
    placement, groups = run.placement, run.groups
    g = groups[i]
    c = placement[g[0]]
    f = form(c.precision)
    ready = 0.0
    arrivals = []
    for j, elems, other in flows.inflow:  # the latest arrival: order does not matter
        cs = placement[groups[j][0]]
        fs = form(cs.precision)
        mine = f in run.converted[j]  # the producer converted it
        t = run.converted[j][f] if mine else run.finish[j]
        wait = cm.transfer_ms(elems * DTYPE_SIZES[f] + other, cs.processor, c.processor)
        t += wait
        if fs != f and not mine:  # the consumer converts
            conversion = cm.conversion_ms(elems, c.processor, fs, f)
            t += conversion
            wait += conversion
        arrivals.append((j, f if mine else None, wait))
        ready = max(ready, t)
    run.free.append(dict(free))
    lane = lane_name(c.processor, c.lane)
    start = max(ready, free.get(lane, 0.0))
    work = sum(rg.cost[r][c] for r in g) - (len(g) - 1) * cm.dispatch_ms[c.processor]  # one dispatch per partition
    host_in = sum(rg.host_in[r] for r in g)
    if host_in and f != rg.io_form:
        work += cm.conversion_ms(host_in, c.processor, rg.io_form, f)
    end = start + work
    extra = 0.0
    done: dict[str, float] = {}
    alike = run.forms.get(f, 0)  # the regions in its dtype
    for elems, bits, readers, to_host in flows.outs:
        if not bits & ~alike and (f == rg.io_form or not to_host):
            continue  # read in its own dtype only: nothing to convert
        wanted: dict[str, list[str]] = {}  # dtype -> the processor of every partition reading it in that dtype
        for j in {run.part[d] for d in readers} - {i}:
            dc = placement[groups[j][0]]
            wanted.setdefault(form(dc.precision), []).append(dc.processor)
        if to_host:
            wanted.setdefault(rg.io_form, []).append(HOST)
        for q, procs in sorted(wanted.items()):
            if q != f and converts_in_producer(c.processor, procs, f, q):
                extra += cm.conversion_ms(elems, c.processor, f, q)
                done[q] = end + extra
    run.finish.append(end)
    run.converted.append(done)
    run.start.append(start)
    run.end.append(end + extra)
    run.arrivals.append(arrivals)
    free[lane] = end + extra


ROUNDING = 1e-9  # relative: at least what summing a run's times in another order can change in a makespan


class Pricer:
    """`simulate`'s makespan of many placements of one region graph on one cost model, each priced against a base
    (a run priced before, `rebase`):

    - the partitions before the first one a change reaches are the base's: not priced again (a change reaches a
      partition whose regions or choice differ from the base's, or one whose outputs a region reads that is
      or was in another dtype and changes choice or partition: where its outputs are converted may change);
    - once every partition left is one of the base's last ones (same regions and choice, read from partitions
      with the same regions and choice), the rest of the run is the base's from the state it starts from (when
      each lane is free, when the partitions it reads from end): the same state, the same rest; another
      state, a rest whose every time is a maximum over sums of that state's times and constants (a max-plus
      system), so the makespan is the longest of the base's paths from that state to the end. The paths are
      summed in another order than a run sums them, so that makespan is only used, less `ROUNDING`, as a lower
      bound: a placement it shows to be no better than the bound asked is not priced further.

    Exact makespans are `simulate`'s to the last bit. `score` is the search's price of a placement (its canonical
    grouping, each placement priced once)."""

    def __init__(self, rg: RegionGraph, cm: CostModel) -> None:
        self.rg, self.cm = rg, cm
        self.wiring = _wiring(rg)
        self.base: _Run | None = None
        # per base partition k:
        self.form: list[str] = []  # the dtype of its outputs
        self.live: list[tuple[int, ...]] = []  # the partitions before k read from k on
        self.rest: list[float] = []  # the latest end from k on
        self.tail: list[float] = []  # the longest path from its start to the end
        self.first_on: list[dict[str, float]] = []  # lane -> the tail of the first partition from k on that runs on it
        self.from_zero: list[float] = []  # the longest tail from k on (a partition starts at 0 at the earliest)
        self.readers: list[list[tuple[int, str | None, float]]] = []  # (reader partition, as in `_Run.arrivals`, time to its arrival)
        self.canonical = getattr(rg, "cut", None) in (None, group)  # placements are priced with the canonical grouping
        self.canon: Canonical | None = None  # the base's canonical grouping, when it is the base's grouping
        self.latest: tuple[Grouping, _Run, Canonical | None] | None = None  # the last run priced to its end
        self.scores: dict[tuple[Choice, ...], tuple[float, bool]] = {}  # placement -> (makespan or lower bound, exact?)

    def key(self, placement: dict[str, Choice]) -> tuple[Choice, ...]:
        return _key(self.rg, placement)

    def score(self, placement: dict[str, Choice], bound: float = math.inf) -> float:
        """`makespan` of `placement` with its canonical grouping, remembered: the exact makespan when it is below
        `bound`, else a number at least `bound` and at most the makespan."""
        key = self.key(placement)
        known = self.scores.get(key)
        if known is not None and (known[1] or known[0] >= bound):
            return known[0]
        t = self._makespan(placement, key, None, bound)
        self.scores[key] = (t, t < bound)
        return t

    def grouping(self, placement: dict[str, Choice]) -> Grouping:
        """The canonical grouping of `placement` (the last run's when it priced `placement`)."""
        if self.latest is not None and self.latest[2] is not None and self.latest[1].key == self.key(placement):
            return self.latest[0]
        return cut(self.rg, placement)

    def rounded(self, placement: dict[str, Choice], digits: int) -> float:
        """`score(placement)` rounded to `digits` decimals (what a report shows): the base's longest path from where
        the run meets the base's partitions (at most `ROUNDING` off) when every number that close rounds alike,
        else the exact makespan's."""
        key = self.key(placement)
        known = self.scores.get(key)
        if known is None or not known[1]:
            t = self._makespan(placement, key, None, math.inf, estimate=True)
            near = ROUNDING * (1.0 + t)
            if round(t - near, digits) == round(t + near, digits):
                return round(t, digits)
        return round(self.score(placement), digits)

    def rebase(self, placement: dict[str, Choice], groups: Grouping | None = None) -> None:
        """Price from now on against `placement` cut into `groups` (default: its canonical grouping)."""
        key, latest = self.key(placement), self.latest
        if latest is not None and latest[1].key == key and (latest[2] is not None if groups is None else latest[0] == groups):
            groups, run, canon = latest
        else:
            canon = None
            if groups is None:
                groups, canon = self._grouping(placement, None if self.base is None else self._changes(key, self.base))
            run = self._whole(placement, groups, canon)
        n = len(groups)
        self.base, self.canon = run, canon
        self.form = [form(run.placement[g[0]].precision) for g in groups]
        self.live, self.rest = [()] * n, [0.0] * n
        self.tail, self.first_on, self.from_zero = [0.0] * n, [{}] * n, [0.0] * n
        self.readers = [[] for _ in range(n)]
        for k in range(n):
            for j, src, wait in run.arrivals[k]:
                self.readers[j].append((k, src, wait))
        live: set[int] = set()
        last = from_zero = 0.0
        next_on: dict[str, float] = {}  # lane -> the tail of the next partition on it
        for k in reversed(range(n)):
            live.update(j for j, _, _ in run.arrivals[k])
            live.discard(k)
            self.live[k] = tuple(sorted(live))
            last = self.rest[k] = max(last, run.end[k])
            c = run.placement[groups[k][0]]
            p = lane_name(c.processor, c.lane)
            after = run.end[k] - run.finish[k] + next_on.get(p, 0.0)  # its conversions, then the next on its lane (or the end)
            for reader, src, wait in self.readers[k]:
                ready = run.finish[k] if src is None else run.converted[k][src]
                after = max(after, ready - run.finish[k] + wait + self.tail[reader])
            self.tail[k] = next_on[p] = run.finish[k] - run.start[k] + after
            self.first_on[k] = dict(next_on)
            from_zero = self.from_zero[k] = max(from_zero, self.tail[k])

    def makespan(self, placement: dict[str, Choice], groups: Grouping | None = None, bound: float = math.inf) -> float:
        """`simulate`'s makespan of `placement` cut into `groups` (default: its canonical grouping) when it is below
        `bound`; otherwise possibly a lower bound of it, at least `bound`."""
        return self._makespan(placement, self.key(placement), groups, bound)

    def _makespan(
        self, placement: dict[str, Choice], key: tuple[Choice, ...], groups: Grouping | None, bound: float, *, estimate: bool = False,
    ) -> float:
        """`makespan`; with `estimate`, the base's longest path (see the class docstring) as soon as there is one."""
        base = self.base
        if base is None:
            canon = None
            if groups is None:
                groups, canon = self._grouping(placement, None)
            return self._whole(placement, groups, canon).total()
        moved = self._changes(key, base)
        canon = None
        if groups is None:
            groups, canon = self._grouping(placement, moved)
        hard: set[int] = set()  # the base's partitions whose regions or choice change
        soft: set[int] = set()  # ... whose outputs a changed region reads, in another dtype before or after
        for r in moved:
            self._reach(r, (form(placement[r].precision), form(base.placement[r].precision)), hard, soft)
        bg = base.groups
        if groups != bg:
            for g in groups if canon is None else canon.made:  # (the others are the base's)
                if bg[base.part[g[0]]] != g:
                    for r in g:
                        self._reach(r, (form(placement[r].precision),), hard, soft)
        n, m = len(bg), len(groups)
        stop = min(hard, default=min(n, m))  # the partitions before it are the base's, unless in another order
        if groups[:stop] != bg[:stop]:
            stop = next(k for k in range(stop) if groups[k] != bg[k])
        if stop == n == m:
            return base.total()
        same = min(n - 1 - max(hard | soft), min(n, m) - stop)  # the last partitions that are the base's (ditto)
        if groups[m - same:] != bg[n - same:]:
            same = next(s for s in range(same) if groups[m - 1 - s] != bg[n - 1 - s])
        part = dict(base.part)
        for k in range(stop, m if m != n else m - same):
            for r in groups[k]:
                part[r] = k
        forms = dict(base.forms)
        for r in moved:
            b = self.wiring.bit[r]
            was, now = form(base.placement[r].precision), form(placement[r].precision)
            forms[was] &= ~b
            forms[now] = forms.get(now, 0) | b
        run = _Run(placement, key, groups, part, forms)
        # Before `stop`, only the partitions in `soft` are priced again: while each ends as the base's did, the
        # ones between them are the base's.
        i = stop
        for k in sorted(x for x in soft if x < stop):
            run.take(base, len(run.finish), k)
            free = dict(base.free[k])
            _step(self.rg, self.cm, run, free, _flows_of(self.rg, groups, run.part, len(run.finish)))
            if (run.start[k], run.finish[k], run.end[k], run.converted[k]) != (base.start[k], base.finish[k], base.end[k], base.converted[k]):
                i = k + 1
                break
        else:
            run.take(base, len(run.finish), stop)
            free = dict(base.free[stop])
        last = max(run.end, default=0.0)
        for k in range(i, m):
            if last >= bound:
                return last
            if k >= m - same:
                kb = k + n - m
                state = self._against(run, free, kb, last)
                if state is not None:
                    equal, longest = state
                    if equal:
                        run.take(base, kb, n)
                        run.arrivals[k:] = [[(run.part[bg[j][0]], src, wait) for j, src, wait in a] for a in base.arrivals[kb:]]  # its numbering
                        self.latest = (groups, run, canon)
                        return max(last, self.rest[kb])
                    if estimate:
                        return longest
                    low = longest - ROUNDING * (1.0 + longest)
                    if low >= bound:
                        return low
            _step(self.rg, self.cm, run, free, _flows_of(self.rg, groups, run.part, len(run.finish)))
            last = max(last, run.end[-1])
            if k < m - same:  # a partition of the rest that reads from it starts after it ends, then takes its tail
                tails = [self.tail[j + n - m] for j in self._readers(run, k) if j >= m - same]
                if tails:
                    low = run.finish[k] + max(tails)
                    low -= ROUNDING * (1.0 + low)
                    if low >= bound:
                        return low
        self.latest = (groups, run, canon)
        return last

    def _readers(self, run: _Run, k: int) -> set[int]:
        """The partitions of `run` reading from its partition `k`."""
        bits = 0
        for r in run.groups[k]:
            bits |= self.wiring.readers[r]
        out = set()
        while bits:
            low = bits & -bits
            out.add(run.part[self.rg.names[low.bit_length() - 1]])
            bits ^= low
        return out

    def _changes(self, key: tuple[Choice, ...], base: _Run) -> list[str]:
        """The regions whose choice (in `key`, a placement's `key`) differs from the base's."""
        return list(itertools.compress(self.rg.names, map(operator.ne, key, base.key)))

    def _grouping(self, placement: dict[str, Choice], moved: list[str] | None) -> tuple[Grouping, Canonical | None]:
        """The canonical grouping of `placement` (from the base's when `moved` says where they differ), and its state."""
        if not self.canonical:
            return cut(self.rg, placement), None
        canon = Canonical.of(self.rg, placement) if moved is None or self.canon is None else self.canon.moved(placement, moved)
        return canon.groups, canon

    def _reach(self, region: str, forms: tuple[str, ...], hard: set[int], soft: set[int]) -> None:
        """Add the base's partition of `region` (changed; in `forms` before and after the change) to `hard`, and
        the partitions it reads from in another dtype to `soft` (where their outputs are converted may change)."""
        base = self.base
        assert base is not None
        hard.add(base.part[region])
        for s in self.wiring.producers[region]:
            k = base.part[s]
            if any(q != self.form[k] for q in forms):
                soft.add(k)

    def _whole(self, placement: dict[str, Choice], groups: Grouping, canon: Canonical | None) -> _Run:
        run = _priced(self.rg, self.cm, placement, groups)
        self.latest = (groups, run, canon)
        return run

    def _against(self, run: _Run, free: dict[str, float], kb: int, latest: float) -> tuple[bool, float] | None:
        """The rest of `run` is the base's partitions from `kb` on: whether the state it starts from is the base's
        there, and the makespan the base's paths give from it (see the class docstring); None when a partition
        the rest reads from is not the base's."""
        base = self.base
        assert base is not None
        mine = []  # (the run's partition, the base's) of every partition the rest reads from
        for j in self.live[kb]:
            g = base.groups[j]
            k = run.part[g[0]]
            if run.groups[k] != g or run.placement[g[0]] != base.placement[g[0]] or run.converted[k].keys() != base.converted[j].keys():
                return None
            mine.append((k, j))
        theirs = base.free[kb]
        equal = free == theirs
        longest = max(latest, self.from_zero[kb], *(free.get(p, 0.0) + t for p, t in self.first_on[kb].items()))
        for k, j in mine:
            equal = equal and run.finish[k] == base.finish[j] and run.converted[k] == base.converted[j]
            for reader, src, wait in self.readers[j]:
                if reader >= kb:
                    longest = max(longest, (run.finish[k] if src is None else run.converted[k][src]) + wait + self.tail[reader])
        return equal, longest


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
        pl = {r: (Choice(c.processor, q, c.lane) if Choice(c.processor, q, c.lane) in candidates[r] else c) for r, c in base.items()}
        if pl != base and pl not in out:
            out.append(pl)
    return out


def optimise(
    rg: RegionGraph,
    cm: CostModel,
    candidates: dict[str, list[Choice]],
    seeds: list[dict[str, Choice]] = (),  # type: ignore[assignment]
    feasible: Callable[[dict[str, Choice], Grouping], bool] | None = None,
    pricer: Pricer | None = None,
) -> tuple[dict[str, Choice], float, str]:
    """The placement with the least predicted latency among those `feasible` accepts with their canonical grouping
    (all by default), its latency, and the method used. When no placement tried is feasible, the best one regardless (the caller
    repairs it, see `stretchc.costmodel.limits`). `pricer`: the `Pricer` to price with (searches sharing one price
    every placement once)."""
    pricer = pricer or Pricer(rg, cm)
    if feasible is not None:
        pl, t, method = _search(rg, candidates, list(seeds), _Feasible(pricer, feasible))
        if t < math.inf:
            return pl, t, method
    return _search(rg, candidates, list(seeds), pricer)


class _Score(Protocol):
    """What a search prices placements with: a placement's latency (exact below `bound`, else a number at least
    `bound` and at most the latency), and the placement the next ones are most like (`Pricer.rebase`)."""

    def score(self, placement: dict[str, Choice], bound: float = math.inf) -> float: ...

    def rebase(self, placement: dict[str, Choice], groups: Grouping | None = None) -> None: ...


@dataclass
class _Feasible:
    """A placement's latency, or infinity when it breaks a limit. The limits of a placement are checked once, and
    only when its latency is below the bound asked (one at least the bound makes no difference to the search)."""

    pricer: Pricer
    ok: Callable[[dict[str, Choice], Grouping], bool]
    checked: dict[tuple[Choice, ...], bool] = field(default_factory=dict)

    def score(self, placement: dict[str, Choice], bound: float = math.inf) -> float:
        t = self.pricer.score(placement, bound)
        if t >= bound:
            return t
        key = self.pricer.key(placement)
        if key not in self.checked:
            self.checked[key] = self.ok(placement, self.pricer.grouping(placement))
        return t if self.checked[key] else math.inf

    def rebase(self, placement: dict[str, Choice], groups: Grouping | None = None) -> None:
        self.pricer.rebase(placement, groups)


def _search(rg: RegionGraph, candidates: dict[str, list[Choice]], seeds: list[dict[str, Choice]], score: _Score) -> tuple[dict[str, Choice], float, str]:
    names = rg.names
    space = 1
    for r in names:
        space *= len(candidates[r])
    if space <= EXHAUSTIVE_LIMIT:
        best, best_t = None, math.inf
        for combo in itertools.product(*(candidates[r] for r in names)):
            pl = dict(zip(names, combo))
            t = score.score(pl, best_t - 1e-12)
            if best is None or t < best_t - 1e-12:
                best, best_t = pl, t
                score.rebase(best)
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
    starts = [min(uniform, key=score.score), rr, *(dict(s) for s in seeds if all(s.get(r) in candidates[r] for r in names))]
    best, best_t, rounds = None, math.inf, 0
    unique: list[dict[str, Choice]] = []
    for st in starts:
        if st not in unique:
            unique.append(st)
    for st in unique:
        pl, t, n = _descend(rg, candidates, (wide, narrow), st, score)
        rounds = max(rounds, n)
        if best is None or t < best_t - 1e-12:
            best, best_t = pl, t
    assert best is not None
    score.rebase(best)
    for pl in _uniform(candidates, best):
        t = score.score(pl, best_t - 1e-9)
        if t < best_t - 1e-9:
            best, best_t = pl, t
    return best, best_t, f"block coordinate descent from {len(unique)} starts ({space} placements is above the exhaustive limit {EXHAUSTIVE_LIMIT}; at most {rounds} rounds)"


def _descend(
    rg: RegionGraph, candidates: dict[str, list[Choice]], narrowed: tuple[dict[str, list[Choice]], dict[str, list[Choice]]],
    start: dict[str, Choice], score: _Score,
) -> tuple[dict[str, Choice], float, int]:
    """Block coordinate descent from `start` in two phases: first each block (a stage, or a trunk region)
    exhaustively over its regions' fastest choice per processor (`narrow`: where the regions run), then over
    their fastest 8-bit and float choice on the processor each runs on (`wide` kept to that processor: at what
    precision); each round ends with single-region moves over every choice, and a phase ends when a round
    improves nothing. Never worse than `start`; returns the placement, its latency and the rounds run. Moves are
    priced against the best placement so far, and only to tell whether they beat it."""
    wide, narrow = narrowed
    best, best_t = start, score.score(start)
    score.rebase(best)
    rounds = 0

    def better(pl: dict[str, Choice]) -> bool:
        nonlocal best, best_t
        t = score.score(pl, best_t - 1e-9)
        if t < best_t - 1e-9:
            best, best_t = pl, t
            score.rebase(best)
            return True
        return False

    for phase in ("where", "precision"):
        improved, phase_rounds = True, 0
        while improved and phase_rounds < MAX_ROUNDS:
            improved, phase_rounds = False, phase_rounds + 1
            for block in _blocks(rg):
                options = narrow if phase == "where" else {r: [c for c in wide[r] if c.processor == best[r].processor] or [best[r]] for r in block}
                for move in _block_moves(options, block):
                    improved |= better({**best, **move})
            for r in rg.names:
                for c in candidates[r]:
                    if c != best[r]:
                        improved |= better({**best, r: c})
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
    """Of region `r`'s `options`, per processor lane the one with the least region time (the first when unpriced);
    `by_form`: one among its 8-bit precisions and one among its float ones (whether a region is 8-bit decides the
    conversions at its boundaries; which precision within a form rarely matters to its neighbours)."""
    cost = rg.cost.get(r, {})
    best: dict[tuple[str, int, bool], Choice] = {}
    for c in options:
        key = (c.processor, c.lane, by_form and c.precision in QUANTIZED)
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
    lanes = {p: backend(p).lanes(target) for p in processors()}
    cm.stream_weights(sum(o.weights for ops in rg.ops.values() for o in ops))  # every run reads them all
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
        no = rejected.get(r, {}) if refused is None else refused  # a rejection is of a processor and precision, every lane
        out = [Choice(p, q, k) for p in on for q in choices(policy, p, calibrated=calibrated, target=target) for k in range(lanes[p])]
        return [c for c in out if Choice(c.processor, c.precision) not in no]

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
    pricer = Pricer(rg, cm)  # one for every search and price below: each placement is priced once
    wanted, _, method = optimise(rg, cm, candidates, seeded, pricer=pricer)
    placement = wanted
    if violations(rg, wanted, limits):
        placement, _, method = optimise(rg, cm, candidates, seeded, feasible(rg, limits), pricer)
        method += ", under the target's limits"
    if not optimise_free:
        method = "policy placement" + ("" if all(len(c) == 1 for c in candidates.values()) else f"; precisions by {method}")
    if violations(rg, placement, limits):
        pricer.rebase(placement)  # the repair's trials move one region of it
        placement = repair(rg, placement, movable, limits, pricer.score)
    if groups is None and grouping != "cost":
        groups = cut(rg, placement)
    elif groups is None:
        groups, method = _form_partitions(rg, cm, placement, limits, method)
        if optimise_free:
            placement, groups, method = _no_slower_than_one(rg, cm, one, limits, placement, groups, method)
    total, timeline = simulate(rg, cm, placement, groups)
    bound = binding_limits(rg, cm, wanted, placement, limits)
    changed_by = {r: b for b in bound for r in b["regions"]}
    pricer.rebase(placement)  # the alternatives: one region moved, each placement with its canonical grouping
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
            lane = chosen.lane if p == chosen.processor else 0  # the alternatives on its own processor: in its lane
            for q in (*qs, chosen.precision) if p == chosen.processor and chosen.precision not in qs else qs:
                alt = Choice(p, q, lane)
                t_alt = round(total, 4) if alt == chosen else pricer.rounded({**placement, r: alt}, 4)
                per[q] = {"region_ms": round(rg.cost[r][alt], 4), "total_ms": t_alt}
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
        "lanes": {r: c.lane for r, c in placement.items()},
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
        if c.processor not in on or c.lane:  # one partition runs in one lane: the first
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
    pricer = Pricer(rg, cm)
    groups = refine(rg, placement, start, lambda g, bound: pricer.makespan(placement, g, bound), ok, lambda g: pricer.rebase(placement, g))
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
    pricer = Pricer(rg, cm)
    pricer.rebase(placement, groups)
    out = []
    for i, g in enumerate(groups):
        c = placement[g[0]]
        ms = sum(rg.cost[r][c] for r in g) - (len(g) - 1) * cm.dispatch_ms[c.processor]
        if len(g) > 1:
            split = dag.ordered([x for k, x in enumerate(groups) if k != i] + [(r,) for r in g])
            delta = pricer.makespan(placement, split) - total
            why = (
                f"{len(g)} regions on the {c.processor} at {c.precision} share one partition (one invoke): splitting it into "
                f"{len(g)} partitions is predicted {delta:+.3f} ms ({total:.3f} -> {total + delta:.3f} ms)"
            )
        else:
            trials = [(merged(dag, groups, i, j), h) for j, h in enumerate(groups) if j != i and placement[h[0]] == c and dag.convex(g + h)]
            costs = [(pricer.makespan(placement, trial) - total, partition_name(h)) for trial, h in trials if trial is not None]
            if costs:
                delta, other = min(costs)
                why = f"its own partition: the cheapest merge (with {other}) is predicted {delta:+.3f} ms"
            else:
                why = f"its own partition: no other partition on the {c.processor} at {c.precision} can join it (convexity)"
        out.append({
            "name": partition_name(g), "regions": list(g), "processor": c.processor, "precision": c.precision, "lane": c.lane,
            "predicted_ms": round(ms, 4), "why": why,
        })
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
