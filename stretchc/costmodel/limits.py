"""The limits a target's delegates put on a placement, checked on a region graph.

A placement gives every region a `Choice` (processor, precision). Its partitions are its regions, except that a
stage's last join and the head merge when they share a processor and a precision (exactly as outline-partitions
cuts them, `partition_groups`). The limits (target
`delegate_limits`, facts/tflite-delegates.md §1.2, §3.1):
- `hexagon-max-partitions`: at most `hexagon_max_partitions` DSP partitions (the Hexagon delegate caps its
  graphs at 16; more is refused by the Hexagon eligibility check);
- `hexagon-min-nodes`: every DSP partition has at least `hexagon_min_nodes` ops (the delegate drops smaller
  partitions to the CPU);
- `gpu-max-partitions`: a GPU partition is one model whose ops form at most `gpu_max_partitions` delegate
  partitions (the delegate's `max_delegated_partitions`; runs of GPU-supported ops, see `GPU_UNSUPPORTED`).

`violations(rg, placement, limits)` lists what a placement breaks: the search keeps to placements without any
(`feasible`), and `repair` moves regions off a limited processor until none is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

LIMIT_NAMES = ("hexagon-max-partitions", "hexagon-min-nodes", "gpu-max-partitions")
DEFAULT_LIMITS = {"gpu_max_partitions": 1, "hexagon_max_partitions": 16, "hexagon_min_nodes": 2}


@dataclass(frozen=True)
class Violation:
    limit: str  # one of LIMIT_NAMES
    processor: str
    regions: tuple[str, ...]  # the regions of the offending partitions
    message: str


def target_limits(target: Any) -> dict[str, int]:
    raw = getattr(target, "raw", None) or {}
    return {**DEFAULT_LIMITS, **(raw.get("delegate_limits") or {})}


def partition_groups(rg: Any, placement: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """(processor, regions) of every partition the placement (region -> `Choice`) gives, as outline-partitions
    cuts them."""
    last_join = next((r for r in reversed(rg.names) if rg.kinds[r] == "join"), None)
    groups: list[tuple[str, tuple[str, ...]]] = []
    for r in rg.names:
        if rg.kinds[r] == "head" and last_join is not None and placement[last_join] == placement[r]:
            i = next(k for k, (_, regs) in enumerate(groups) if last_join in regs)
            groups[i] = (groups[i][0], (*groups[i][1], r))
        else:
            groups.append((placement[r].processor, (r,)))
    return groups


def _ops(rg: Any, regions: tuple[str, ...]) -> list[Any]:
    return [n for r in regions for n in rg.nodes[r] if n.op.startswith("tfl.")]


def _gpu_runs(nodes: list[Any]) -> int:
    from stretchc.costmodel.placement import GPU_UNSUPPORTED

    runs, inside = 0, False
    for n in nodes:
        ok = n.kind not in GPU_UNSUPPORTED
        runs += ok and not inside
        inside = ok
    return runs


def violations(rg: Any, placement: Mapping[str, Any], limits: Mapping[str, int]) -> list[Violation]:
    """Every limit the placement breaks (empty when it keeps to all of them)."""
    out: list[Violation] = []
    groups = partition_groups(rg, placement)
    dsp = [regs for proc, regs in groups if proc == "dsp"]
    cap = int(limits["hexagon_max_partitions"])
    if len(dsp) > cap:
        out.append(Violation(
            "hexagon-max-partitions", "dsp", tuple(r for regs in dsp for r in regs),
            f"{len(dsp)} DSP partitions; the Hexagon delegate runs at most {cap}",
        ))
    least = int(limits["hexagon_min_nodes"])
    for regs in dsp:
        n = len(_ops(rg, regs))
        if n < least:
            out.append(Violation(
                "hexagon-min-nodes", "dsp", regs, f"DSP partition {'+'.join(regs)} has {n} op(s); the Hexagon delegate needs at least {least}"
            ))
    most = int(limits["gpu_max_partitions"])
    for proc, regs in groups:
        if proc == "gpu" and _gpu_runs(_ops(rg, regs)) > most:
            out.append(Violation(
                "gpu-max-partitions", "gpu", regs,
                f"GPU partition {'+'.join(regs)} would split into more than {most} GPU delegate partition(s)",
            ))
    return out


def feasible(rg: Any, limits: Mapping[str, int]) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate for the search: the placement breaks no limit."""
    return lambda placement: not violations(rg, placement, limits)


def repair(
    rg: Any, placement: dict[str, Any], candidates: Mapping[str, list[Any]], limits: Mapping[str, int], cost: Callable[[dict[str, Any]], float]
) -> dict[str, Any]:
    """Move regions off the processors whose limits the placement breaks until it breaks none: each step moves
    the offending region whose move to a candidate `Choice` on another processor costs least."""
    placement = dict(placement)
    moved: set[str] = set()  # a region moves once, so the loop ends even if a move breaks another limit
    while True:
        found = violations(rg, placement, limits)
        if not found:
            return placement
        best: tuple[float, str, dict[str, str]] | None = None
        for v in found:
            for r in v.regions:
                if r in moved:
                    continue
                for c in candidates[r]:
                    if c.processor == v.processor:
                        continue
                    trial = {**placement, r: c}
                    t = cost(trial)
                    if best is None or t < best[0] - 1e-12:
                        best = (t, r, trial)
        if best is None:  # only fixed (or already moved) regions break it: the caller reports it
            return placement
        moved.add(best[1])
        placement = best[2]
