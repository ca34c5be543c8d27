"""The limits a target's delegates put on a placement, checked on a region graph.

A placement gives every region a `Choice` (processor, precision); a grouping (`stretchc.costmodel.grouping`) says
which regions share a partition, by default the placement's canonical grouping. Each backend states its limits (`Backend.limit_violations`, reading its keys of the
target's `delegate_limits`, `Backend.limit_keys`; e.g. the Hexagon delegate's partition count and size, the GPU
delegate's delegated partitions); `violations(rg, placement, limits)` asks every backend about the partitions the
placement puts on it: the search keeps to placements without any (`feasible`), and `repair` moves regions off a
limited processor until none is left.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from stretchc.backends import backends
from stretchc.backends.base import LimitViolation, PartitionOps
from stretchc.costmodel.grouping import Grouping, cut


def target_limits(target: Any) -> dict[str, int]:
    """The target's `delegate_limits`, each backend's default where the target does not say."""
    defaults = {k: lim.default for b in backends() for k, lim in b.limit_keys.items()}
    raw = getattr(target, "raw", None) or {}
    return {**defaults, **(raw.get("delegate_limits") or {})}


def _ops(rg: Any, regions: tuple[str, ...]) -> list[Any]:
    return [n for r in regions for n in rg.nodes[r] if n.op.startswith("tfl.")]


def violations(rg: Any, placement: Mapping[str, Any], limits: Mapping[str, int], groups: Grouping | None = None) -> list[LimitViolation]:
    """Every limit the placement cut into `groups` (default: the grouping the search prices it with, `grouping.cut`) breaks (empty when it keeps to
    all of them), backend by backend."""
    groups = cut(rg, placement) if groups is None else groups
    out: list[LimitViolation] = []
    for b in backends():
        parts = [PartitionOps(regs, tuple(_ops(rg, regs))) for regs in groups if placement[regs[0]].processor == b.name]
        if parts:
            out += b.limit_violations(parts, limits)
    return out


def feasible(rg: Any, limits: Mapping[str, int]) -> Callable[[Mapping[str, Any], Grouping], bool]:
    """A predicate for the search: the placement cut into a grouping breaks no limit."""
    return lambda placement, groups: not violations(rg, placement, limits, groups)


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
