"""Placements against the processors' rules: the message for an op that breaks one, and the check of the regions
`--place` put on a processor whose rules are strict.

Each backend states its op rules (`Backend.op_violation`, the rule named) and partition limits
(`Backend.limit_violations`). The automatic placement only considers eligible processors
(stretchc/costmodel/placement.py); a region `--place`d on a processor with strict rules (`Backend.strict_rules`:
the Hexagon DSP) is checked here, region by region as the partition it will be: with `on_ineligible` "error"
(the default) the first broken rule is a StretchError("ineligible-op") naming the op, the node, the region and the
rule; with the fallback's name each offending region moves to the fallback processor, one warning per broken rule.
"""

from __future__ import annotations

from typing import Any

from stretchc.backends import Backend, backends, fallback
from stretchc.backends.base import PartitionOps, Violation
from stretchc.console import Console
from stretchc.errors import StretchError
from stretchc.ir import Module, Node


def describe(node: Node, region: str | None, runs: Backend, v: Violation) -> str:
    """One sentence: `node` in `region` cannot run on the processor of `runs`, and the rule it breaks."""
    return f"{node.op} {node.name} (from {node.loc or '?'}) in {region or '?'} cannot run on the {runs.label}: rule {v.rule}: {v.detail}"


def check_overrides(
    module: Module, chosen: dict[str, str], overrides: list[str], *, target: Any, on_ineligible: str, console: Console
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The placement `chosen` with every `--place`d region that breaks its strict processor's rules moved (or a
    StretchError, see the module docstring), and region -> the rules that moved it."""
    if on_ineligible not in ("error", fallback().name):
        raise StretchError("usage", f"--on-ineligible={on_ineligible}: expected error or {fallback().name}")
    chosen = dict(chosen)
    moved: dict[str, list[str]] = {}
    limits = dict(target.delegate_limits) if target is not None else {}

    def move(region: str, rules: list[str], messages: list[tuple[str, str | None]]) -> None:
        if on_ineligible == "error":
            text, node = messages[0]
            more = f" (and {len(messages) - 1} more ineligible op(s))" if len(messages) > 1 else ""
            raise StretchError("ineligible-op", text + more, branch=region, node=node)
        for text, node in messages:
            console.warn("ineligible-op", f"{text}; region {region} moved to the {fallback().label}", branch=region, node=node)
        chosen[region] = fallback().name
        moved[region] = rules

    for b in backends():
        if not b.strict_rules:
            continue
        placed = [r for r in module.regions if r.name in overrides and chosen.get(r.name) == b.name]
        for region in placed:
            bad = [(n, v) for n in _ops(module, region.name) if (v := b.op_violation(n)) is not None]
            if bad:
                move(region.name, [f"{n.kind}:{v.rule}" for n, v in bad], [(describe(n, region.name, b, v), n.name) for n, v in bad])
        while True:  # a limit broken: move its last region still there, until none is
            parts = [PartitionOps((r.name,), _ops(module, r.name)) for r in module.regions if chosen.get(r.name) == b.name]
            found = b.limit_violations(parts, {**_defaults(b), **limits}) if parts else []
            if not found:
                break
            lim = found[0]
            region = [r for r in lim.regions if chosen.get(r) == b.name][-1]
            move(region, [lim.limit], [(f"region {region}: {lim.message} (rule {lim.limit})", None)])
    return chosen, moved


def _ops(module: Module, region: str) -> tuple[Node, ...]:
    return tuple(n for n in module.graph.nodes if n.region == region and n.op.startswith("tfl."))


def _defaults(b: Backend) -> dict[str, int]:
    return {k: lim.default for k, lim in b.limit_keys.items()}
