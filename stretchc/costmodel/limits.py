"""The limits a target's delegates put on a placement, checked on a region graph.

A placement gives every region a `Choice` (processor, precision). Its partitions are its regions, except that a
stage's last join and the head merge when they share a processor and a precision (exactly as outline-partitions
cuts them, `partition_groups`). Each backend states its limits (`Backend.limit_violations`, reading its keys of the
target's `delegate_limits`, `Backend.limit_keys`; e.g. the Hexagon delegate's partition count and size, the GPU
delegate's delegated partitions); `violations(rg, placement, limits)` asks every backend about the partitions the
placement puts on it: the search keeps to placements without any (`feasible`), and `repair` moves regions off a
limited processor until none is left.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from stretchc.backends import backends
from stretchc.backends.base import LimitViolation, PartitionOps


def target_limits(target: Any) -> dict[str, int]:
    """The target's `delegate_limits`, each backend's default where the target does not say."""
    defaults = {k: lim.default for b in backends() for k, lim in b.limit_keys.items()}
    raw = getattr(target, "raw", None) or {}
    return {**defaults, **(raw.get("delegate_limits") or {})}


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


def violations(rg: Any, placement: Mapping[str, Any], limits: Mapping[str, int]) -> list[LimitViolation]:
    """Every limit the placement breaks (empty when it keeps to all of them), backend by backend."""
    groups = partition_groups(rg, placement)
    out: list[LimitViolation] = []
    for b in backends():
        parts = [PartitionOps(regs, tuple(_ops(rg, regs))) for proc, regs in groups if proc == b.name]
        if parts:
            out += b.limit_violations(parts, limits)
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
