"""Critical-path placement: predict a placement's latency with the cost model, and search for the best one.

Model of execution (what the runtime does with the schedule): regions run in topological order; a region
starts when every region it reads from has finished *and* its value has crossed the boundary (sync cost,
plus a copy when the processors differ) *and* its processor is free — so concurrent branches cost their
maximum, and branches sharing a processor serialize. `simulate` returns the makespan and the timeline.

Search (`optimise`): exhaustive over every eligible assignment when the space has at most `EXHAUSTIVE_LIMIT`
placements; otherwise block coordinate descent: start from the best of a few seeds (all-CPU, all-GPU,
round-robin, the caller's seeds), then repeatedly re-optimise one block exhaustively with the rest fixed — a
block is one stage (its branches and its join) or one trunk region — until no block improves. Each step
never increases the predicted latency, so the result is never slower than any seed. Fixed (overridden)
regions have one candidate.

Eligibility (`eligibility`): a list of rule functions `rule(ctx: EligibilityContext, processor) -> str | None`
(None = eligible, else the reason). Append to `ELIGIBILITY_RULES` to add rules (e.g. the Hexagon op rules).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

from stretchc.costmodel import CostModel
from stretchc.hexagon.eligibility import check_node, describe
from stretchc.ir import Module, Node

EXHAUSTIVE_LIMIT = 4096
GPU_UNSUPPORTED = frozenset({"GATHER", "GATHER_ND", "CAST", "ARG_MAX", "ARG_MIN", "WHERE", "NON_MAX_SUPPRESSION_V4", "TOPK_V2", "UNIQUE"})


@dataclass
class EligibilityContext:
    region: str
    nodes: list[Node]
    target: Any
    quantized_dsp: bool  # the pipeline quantizes DSP partitions (quantize-hexagon)


def _rule_target(ec: EligibilityContext, proc: str) -> str | None:
    if ec.target is not None and proc not in ec.target.processors:
        if proc == "dsp":
            dsp = ec.target.raw["dsp"]
            alt = f"; {dsp['alternative']}" if dsp.get("alternative") else ""
            return f"target {ec.target.name} cannot run the DSP: {dsp['reason']}{alt}"
        return f"target {ec.target.name} has no {proc}"
    return None


def _rule_dsp_needs_int8(ec: EligibilityContext, proc: str) -> str | None:
    if proc == "dsp" and not ec.quantized_dsp:
        return "DSP partitions must be int8: automatic DSP placement needs quantize-hexagon in the pipeline and --calib data"
    return None


def _rule_hexagon_ops(ec: EligibilityContext, proc: str) -> str | None:
    """The TFLite Hexagon delegate's per-op rules (stretchc.hexagon.eligibility)."""
    if proc != "dsp":
        return None
    for n in ec.nodes:
        v = check_node(n)
        if v is not None:
            return describe(n, ec.region, v)
    return None


def _rule_gpu_ops(ec: EligibilityContext, proc: str) -> str | None:
    if proc != "gpu":
        return None
    for n in ec.nodes:
        if n.kind in GPU_UNSUPPORTED:
            return f"the GPU delegate does not support {n.kind} ({n.name})"
        for v in [*n.inputs, *n.outputs]:
            if v is not None and not v.is_const and len(v.shape) > 4:
                return f"{n.name}: rank-{len(v.shape)} tensor {v.name} (the GPU delegate takes rank <= 4)"
    return None


ELIGIBILITY_RULES: list[Callable[[EligibilityContext, str], str | None]] = [_rule_target, _rule_dsp_needs_int8, _rule_hexagon_ops, _rule_gpu_ops]


def eligibility(ec: EligibilityContext, proc: str) -> str | None:
    for rule in ELIGIBILITY_RULES:
        reason = rule(ec, proc)
        if reason:
            return reason
    return None


@dataclass
class RegionGraph:
    names: list[str]
    kinds: dict[str, str]
    stage: dict[str, int | None]
    nodes: dict[str, list[Node]]
    preds: dict[str, list[tuple[str, int]]]  # region -> [(pred region, bytes)]
    cost: dict[str, dict[str, float]] = field(default_factory=dict)  # region -> proc -> ms (ops + dispatch)


def region_graph(module: Module, cm: CostModel, processors: tuple[str, ...]) -> RegionGraph:
    names = [r.name for r in module.regions]
    nodes: dict[str, list[Node]] = {n: [] for n in names}
    for node in module.graph.nodes:
        if node.region in nodes:
            nodes[node.region].append(node)
    edges: dict[tuple[str, str], int] = {}
    for node in module.graph.nodes:
        if node.region not in nodes:
            continue
        seen = set()
        for v in node.inputs:
            if v is None or v.is_const or v.producer is None or id(v) in seen:
                continue
            seen.add(id(v))
            src = v.producer.region
            if src != node.region and src in nodes:
                edges[(src, node.region)] = edges.get((src, node.region), 0) + v.nbytes
    preds: dict[str, list[tuple[str, int]]] = {n: [] for n in names}
    for (s, d), b in sorted(edges.items()):
        preds[d].append((s, b))
    rg = RegionGraph(names, {r.name: r.kind for r in module.regions}, {r.name: r.stage for r in module.regions}, nodes, preds)
    for r in names:
        rg.cost[r] = {p: cm.partition_ms(nodes[r], p) for p in processors}
    return rg


def simulate(rg: RegionGraph, cm: CostModel, placement: dict[str, str]) -> tuple[float, list[dict[str, Any]]]:
    finish: dict[str, float] = {}
    free: dict[str, float] = {}
    timeline = []
    for r in rg.names:
        p = placement[r]
        ready = 0.0
        for s, b in rg.preds[r]:
            ready = max(ready, finish[s] + cm.transfer_ms(b, placement[s], p))
        start = max(ready, free.get(p, 0.0))
        end = start + rg.cost[r][p]
        finish[r] = free[p] = end
        timeline.append({"region": r, "processor": p, "start_ms": start, "end_ms": end})
    return (max(finish.values()) if finish else 0.0), timeline


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


def optimise(rg: RegionGraph, cm: CostModel, candidates: dict[str, list[str]], seeds: list[dict[str, str]] = ()) -> tuple[dict[str, str], float, str]:  # type: ignore[assignment]
    """The placement with the least predicted latency, its latency, and the method used."""
    names = rg.names
    space = 1
    for r in names:
        space *= len(candidates[r])
    if space <= EXHAUSTIVE_LIMIT:
        best, best_t = None, float("inf")
        for combo in itertools.product(*(candidates[r] for r in names)):
            pl = dict(zip(names, combo))
            t, _ = simulate(rg, cm, pl)
            if t < best_t - 1e-12:
                best, best_t = pl, t
        return best, best_t, f"exhaustive over {space} placements"  # type: ignore[return-value]
    procs = sorted({p for c in candidates.values() for p in c})
    starts = []
    for p in procs:
        starts.append({r: (p if p in candidates[r] else candidates[r][0]) for r in names})
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
        t, _ = simulate(rg, cm, s)
        if t < best_t - 1e-12:
            best, best_t = s, t
    assert best is not None
    rounds = 0
    improved = True
    while improved and rounds < 10:
        improved, rounds = False, rounds + 1
        for block in _blocks(rg):
            for combo in itertools.product(*(candidates[r] for r in block)):
                pl = {**best, **dict(zip(block, combo))}
                t, _ = simulate(rg, cm, pl)
                if t < best_t - 1e-9:
                    best, best_t, improved = pl, t, True
    return best, best_t, f"block coordinate descent ({space} placements is above the exhaustive limit {EXHAUSTIVE_LIMIT}; {rounds} rounds)"


def plan(
    module: Module,
    target: Any,
    *,
    fixed: dict[str, str] | None = None,
    quantized_dsp: bool = False,
    optimise_free: bool = True,
    given: dict[str, str] | None = None,
    seeds: list[dict[str, str]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """Placement and its explanation. `fixed` regions keep their processor (overrides); with `optimise_free`
    the rest are chosen by the search, else they take `given` (a policy's choice). Returns the report dict."""
    cm = CostModel(target)
    fixed = dict(fixed or {})
    procs = tuple(p for p in ("cpu", "gpu", "dsp") if p in target.processors or p in fixed.values())
    rg = region_graph(module, cm, procs)
    elig: dict[str, dict[str, str | None]] = {}
    candidates: dict[str, list[str]] = {}
    for r in rg.names:
        ec = EligibilityContext(r, rg.nodes[r], target, quantized_dsp)
        elig[r] = {p: eligibility(ec, p) for p in ("cpu", "gpu", "dsp")}
        if r in fixed:
            candidates[r] = [fixed[r]]
        else:
            candidates[r] = [p for p in procs if elig[r][p] is None] or ["cpu"]
    if optimise_free:
        placement, total, method = optimise(rg, cm, candidates, list(seeds))
    else:
        placement = {r: fixed.get(r, (given or {}).get(r, "cpu")) for r in rg.names}
        total, _ = simulate(rg, cm, placement)
        method = "policy (not optimised)"
    total, timeline = simulate(rg, cm, placement)
    regions = []
    for r in rg.names:
        alts: dict[str, Any] = {}
        for p in ("cpu", "gpu", "dsp"):
            why = elig[r][p]
            if p not in procs:
                alts[p] = {"eligible": False, "reason": why or f"not a processor of {target.name}"}
                continue
            t_alt, _ = simulate(rg, cm, {**placement, r: p})
            alts[p] = {"eligible": why is None, "reason": why, "region_ms": round(rg.cost[r][p], 4), "total_ms": round(t_alt, 4)}
        chosen = placement[r]
        if r in fixed:
            why = f"override: --place {r}={chosen} (overrides always win)"
        elif optimise_free:
            others = [f"{p} {a['total_ms']:.2f} ms" for p, a in alts.items() if p != chosen and a.get("eligible")]
            why = f"critical-path: {chosen} gives the least predicted end-to-end latency ({total:.2f} ms)" + (f"; on {', '.join(others)}" if others else "; no other eligible processor")
        else:
            why = f"policy placement on {chosen}"
        regions.append({
            "region": r, "kind": rg.kinds[r], "processor": chosen, "override": r in fixed, "why": why,
            "predicted_ms": round(rg.cost[r][chosen], 4), "alternatives": alts, "ops": len(rg.nodes[r]),
        })
    singles = {}
    for p in procs:
        if all(p in candidates[r] or (r in fixed and False) or elig[r][p] is None for r in rg.names):
            singles[p] = round(simulate(rg, cm, {r: p for r in rg.names})[0], 4)
    best_single = min(singles.items(), key=lambda kv: kv[1]) if singles else None
    edges = [{"from": s, "to": d, "bytes": b} for d in rg.names for s, b in rg.preds[d]]
    return {
        "target": target.name,
        "predicted_latency_ms": round(total, 4),
        "method": method,
        "placement": placement,
        "regions": regions,
        "timeline": [{**t, "start_ms": round(t["start_ms"], 4), "end_ms": round(t["end_ms"], 4)} for t in timeline],
        "edges": edges,
        "single_processor_ms": singles,
        "best_single": {"processor": best_single[0], "ms": best_single[1]} if best_single else None,
        "speedup_over_best_single": round(best_single[1] / total, 3) if best_single and total > 0 else None,
    }
