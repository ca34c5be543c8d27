"""Critical-path placement and precision: predict a placement's latency with the cost model, and search for the best.

A placement gives every region a `Choice`: a processor and a precision (`stretchc.precision`; the precisions a
region may take come from the `--precision` policy and what its processor runs). A region at a precision is
priced from its workload (`stretchc.costmodel.workload`) by `CostModel.region_ms`, under the target's
measurement protocol (the kernel family that runs it: the DSP int8; the GPU in the protocol's fp16 or fp32,
an int8 model through the delegate's int8 path; the CPU int8 or float under builtin or XNNPACK kernels) — the
function and the graph the cost model's calibration fit prices its points with, too.

Model of execution (what the runtime does with the schedule): regions run in topological order; a region
starts when every region it reads from has finished *and* its value has crossed the boundary (sync cost,
plus a copy when the processors differ, of the tensor in the consumer's dtype) *and* its processor is free —
so concurrent branches cost their maximum, and branches sharing a processor serialize. Where producer and
consumer differ in dtype, one conversion per boundary tensor is priced where the compiler plans it
(`stretchc.precision.converts_in_producer`, `CostModel.conversion_ms`); model inputs and outputs are converted
by the region that reads or writes them. `simulate` returns the makespan and the timeline.

Search (`optimise`): exhaustive over every eligible assignment when the space has at most `EXHAUSTIVE_LIMIT`
placements; otherwise block coordinate descent: start from the best of a few seeds (every processor at each of
its precisions, round-robin, the caller's seeds), then repeatedly re-optimise one block exhaustively with the
rest fixed — a block is one stage (its branches and its join) or one trunk region — until no block improves.
Each step never increases the predicted latency, so the result is never slower than any seed. Finally the
found processors are tried with one precision everywhere (e.g. all float32, all int8), so the result is never
predicted slower than those for the same placement. Fixed (overridden) regions keep their processor.

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
from typing import Any, Callable, NamedTuple

from stretchc.backends import backend, fallback, processors
from stretchc.costmodel import CostModel
from stretchc.costmodel.limits import feasible, repair, target_limits, violations
from stretchc.costmodel.profile import OpProfile
from stretchc.costmodel.workload import Workload, workload_of
from stretchc.eligibility import describe
from stretchc.ir import DTYPE_SIZES, Module, Node
from stretchc.precision import HOST, PRECISIONS, choices, converts_in_producer, form

EXHAUSTIVE_LIMIT = 4096


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


def whole(rg: RegionGraph) -> RegionGraph:
    """`rg` as one partition: every op in one region, reading the model inputs and writing the model outputs."""
    ops = tuple(o for r in rg.names for o in rg.ops[r])
    outs = [(elems, [], True) for r in rg.names for elems, _, to_host in rg.outs[r] if to_host]
    nodes = [n for r in rg.names for n in rg.nodes[r]]
    return RegionGraph(["main"], {"main": "main"}, {"main": None}, {"main": nodes}, {"main": ops}, {"main": []}, {"main": outs}, {"main": sum(rg.host_in.values())}, rg.io_form)


def price(rg: RegionGraph, cm: CostModel, options: dict[str, list[Choice]]) -> None:
    """Fill `rg.cost` for every region and every choice it may take."""
    for r in rg.names:
        rg.cost[r] = {c: cm.region_ms(rg.ops[r], c.processor, c.precision) for c in options[r]}


def simulate(rg: RegionGraph, cm: CostModel, placement: dict[str, Choice]) -> tuple[float, list[dict[str, Any]]]:
    finish: dict[str, float] = {}
    converted: dict[str, dict[str, float]] = {}  # region -> dtype -> when its producer-side conversions to it end
    free: dict[str, float] = {}
    timeline = []
    for r in rg.names:
        c = placement[r]
        f = form(c.precision)
        ready = 0.0
        for s, elems, other in rg.preds[r]:
            cs = placement[s]
            fs = form(cs.precision)
            t = converted[s].get(f, finish[s])
            t += cm.transfer_ms(elems * DTYPE_SIZES[f] + other, cs.processor, c.processor)
            if fs != f and f not in converted[s]:  # the consumer converts
                t += cm.conversion_ms(elems, c.processor, fs, f)
            ready = max(ready, t)
        start = max(ready, free.get(c.processor, 0.0))
        work = rg.cost[r][c]
        if rg.host_in[r] and f != rg.io_form:
            work += cm.conversion_ms(rg.host_in[r], c.processor, rg.io_form, f)
        end = start + work
        extra = 0.0
        done: dict[str, float] = {}
        for elems, readers, to_host in rg.outs[r]:
            wanted: dict[str, list[str]] = {}
            for d in readers:
                wanted.setdefault(form(placement[d].precision), []).append(placement[d].processor)
            if to_host:
                wanted.setdefault(rg.io_form, []).append(HOST)
            for g, procs in sorted(wanted.items()):
                if g != f and converts_in_producer(c.processor, procs, f, g):
                    extra += cm.conversion_ms(elems, c.processor, f, g)
                    done[g] = end + extra
        finish[r] = end
        converted[r] = done
        free[c.processor] = end + extra
        timeline.append({"region": r, "processor": c.processor, "precision": c.precision, "start_ms": start, "end_ms": end + extra})
    return (max([t["end_ms"] for t in timeline], default=0.0)), timeline


def _blocks(rg: RegionGraph) -> list[list[str]]:
    blocks: list[list[str]] = []
    by_stage: dict[int, list[str]] = {}
    for r in rg.names:
        st = rg.stage[r]
        if st is not None:
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
    feasible: Callable[[dict[str, Choice]], bool] | None = None,
) -> tuple[dict[str, Choice], float, str]:
    """The placement with the least predicted latency among those `feasible` accepts (all by default), its
    latency, and the method used. When no placement tried is feasible, the best one regardless (the caller
    repairs it, see `stretchc.costmodel.limits`)."""
    if feasible is not None:
        pl, t, method = _search(rg, candidates, list(seeds), _Feasible(rg, cm, feasible))
        if t < float("inf"):
            return pl, t, method
    return _search(rg, candidates, list(seeds), lambda pl: simulate(rg, cm, pl)[0])


@dataclass
class _Feasible:
    """A placement's latency, or infinity when it breaks a limit."""

    rg: RegionGraph
    cm: CostModel
    ok: Callable[[dict[str, Choice]], bool]

    def __call__(self, pl: dict[str, Choice]) -> float:
        return simulate(self.rg, self.cm, pl)[0] if self.ok(pl) else float("inf")


def _search(
    rg: RegionGraph, candidates: dict[str, list[Choice]], seeds: list[dict[str, Choice]], score: Callable[[dict[str, Choice]], float]
) -> tuple[dict[str, Choice], float, str]:
    names = rg.names
    space = 1
    for r in names:
        space *= len(candidates[r])
    if space <= EXHAUSTIVE_LIMIT:
        best, best_t = None, float("inf")
        for combo in itertools.product(*(candidates[r] for r in names)):
            pl = dict(zip(names, combo))
            t = score(pl)
            if best is None or t < best_t - 1e-12:
                best, best_t = pl, t
        return best, best_t, f"exhaustive over {space} placements"  # type: ignore[return-value]
    starts = []
    for choice in sorted({c for cs in candidates.values() for c in cs}):
        starts.append({r: (choice if choice in candidates[r] else candidates[r][0]) for r in names})
    rr = {}
    for r in names:
        c = candidates[r]
        rr[r] = c[0] if rg.kinds[r] != "branch" else c[(int(r.rsplit(".b", 1)[1]) if ".b" in r else 0) % len(c)]
    starts.append(rr)
    for s in seeds:
        if all(s.get(r) in candidates[r] for r in names):
            starts.append(dict(s))
    best, best_t = None, float("inf")
    for s in starts:
        t = score(s)
        if best is None or t < best_t - 1e-12:
            best, best_t = s, t
    assert best is not None
    rounds = 0
    improved = True
    while improved and rounds < 10:
        improved, rounds = False, rounds + 1
        for block in _blocks(rg):
            for combo in itertools.product(*(candidates[r] for r in block)):
                pl = {**best, **dict(zip(block, combo))}
                t = score(pl)
                if t < best_t - 1e-9:
                    best, best_t, improved = pl, t, True
    for pl in _uniform(candidates, best):
        t = score(pl)
        if t < best_t - 1e-9:
            best, best_t = pl, t
    return best, best_t, f"block coordinate descent ({space} placements is above the exhaustive limit {EXHAUSTIVE_LIMIT}; {rounds} rounds)"


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
) -> dict[str, Any]:
    """Placement, precision and their explanation (the placement report dict).

    `fixed` regions keep their processor (overrides). With `optimise_free` the other regions' processors are
    chosen by the search, else they take `given` (a policy's choice; a `Choice` in `given` also pins the
    precision). Precisions come from `policy` (`stretchc.precision.choices`); `calibrated` says whether int8 is
    available (calibration data and a quantizing pipeline). `io_dtype`: the bundle's model input/output dtype.
    Every placement keeps to the target's limits where it can (see the module docstring).
    """
    cm = CostModel(target)
    fixed = dict(fixed or {})
    given = dict(given or {})
    procs = tuple(p for p in processors() if p in target.processors or p in fixed.values())
    rg = region_graph(module, io_dtype)
    elig: dict[str, dict[str, str | None]] = {}
    candidates: dict[str, list[Choice]] = {}  # what the search may choose
    movable: dict[str, list[Choice]] = {}  # what a repair may move a region to
    options: dict[str, list[Choice]] = {}  # what is priced (the report's alternatives)

    def at(on: list[str]) -> list[Choice]:
        return [Choice(p, q) for p in on for q in choices(policy, p, calibrated=calibrated, target=target)]

    for r in rg.names:
        ec = EligibilityContext(r, rg.nodes[r], target, calibrated)
        elig[r] = {p: eligibility(ec, p) for p in processors()}
        eligible = [p for p in procs if elig[r][p] is None] or [fallback().name]
        pin = given.get(r)
        if isinstance(pin, Choice):
            candidates[r] = movable[r] = [pin]
        elif r in fixed:
            candidates[r] = movable[r] = at([fixed[r]])
        else:
            candidates[r] = at(eligible if optimise_free or pin is None else [pin])
            movable[r] = at(eligible)
        options[r] = sorted(set(movable[r]) | set(at(list(procs))))
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
        placement = repair(rg, placement, movable, limits, lambda pl: simulate(rg, cm, pl)[0])
    total, timeline = simulate(rg, cm, placement)
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
            qs = choices(policy, p, calibrated=calibrated, target=target)
            for q in (*qs, chosen.precision) if p == chosen.processor and chosen.precision not in qs else qs:
                t_alt, _ = simulate(rg, cm, {**placement, r: Choice(p, q)})
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
            "why": why, "precision_why": _precision_why(policy, calibrated, chosen, totals, target),
            "predicted_ms": round(rg.cost[r][chosen], 4), "alternatives": alts, "ops": len(rg.nodes[r]),
            "limit": changed_by[r]["limit"] if r in changed_by else None,
        })
    singles = single_processor_ms(rg, cm, [p for p in procs if all(elig[r][p] is None for r in rg.names)], policy, calibrated, target)
    best_single = min(singles.items(), key=lambda kv: kv[1]) if singles else None
    edges = [
        {"from": s, "to": d, "elements": elems, "bytes": elems * DTYPE_SIZES[form(placement[d].precision)] + other}
        for d in rg.names for s, elems, other in rg.preds[d]
    ]
    return {
        "target": target.name,
        "predicted_latency_ms": round(total, 4),
        "method": method,
        "placement": {r: c.processor for r, c in placement.items()},
        "precision": {r: c.precision for r, c in placement.items()},
        "precision_policy": policy,
        "calibrated": calibrated,
        "io_dtype": io_dtype,
        "limits": bound,
        "regions": regions,
        "timeline": [{**t, "start_ms": round(t["start_ms"], 4), "end_ms": round(t["end_ms"], 4)} for t in timeline],
        "edges": edges,
        "single_processor_ms": singles,
        "best_single": {"processor": best_single[0], "ms": best_single[1]} if best_single else None,
        "speedup_over_best_single": round(best_single[1] / total, 3) if best_single and total > 0 else None,
    }


def single_processor_ms(rg: RegionGraph, cm: CostModel, on: list[str], policy: str, calibrated: bool, target: Any = None) -> dict[str, float]:
    """The whole model as one partition on each processor of `on`, at its fastest precision under `policy` (the
    prototype's single-processor baselines C, G and D)."""
    one = whole(rg)
    out = {}
    for p in on:
        opts = [Choice(p, q) for q in choices(policy, p, calibrated=calibrated, target=target)]
        price(one, cm, {"main": opts})
        out[p] = round(min(simulate(one, cm, {"main": c})[0] for c in opts), 4)
    return out


def reprice(module: Module, target: Any, report: dict[str, Any], placement: dict[str, Choice], precision_why: dict[str, str]) -> dict[str, Any]:
    """`report` (made by `plan`) predicted again for `placement` (e.g. after quantize-partitions demoted some
    regions to float): same overrides, placement reasons and binding limits; `precision_why` replaces the
    precision reasons it names."""
    overrides = {r["region"]: r["processor"] for r in report["regions"] if r["override"]}
    new = plan(
        module, target, fixed=overrides, policy=report["precision_policy"], calibrated=report["calibrated"],
        optimise_free=False, given=dict(placement), io_dtype=report["io_dtype"],
    )
    old = {r["region"]: r for r in report["regions"]}
    for r in new["regions"]:
        before = old[r["region"]]
        r["why"] = before["why"] if before["processor"] == r["processor"] else f"{before['why']}; moved to {r['processor']} to run float32"
        r["precision_why"] = precision_why.get(r["region"], before["precision_why"])
        r["limit"] = before["limit"]
    new["method"], new["policy"], new["limits"] = report["method"], report.get("policy"), report["limits"]
    return new
