"""assign-delegates: tag every region (and so every node) with the processor that runs it.

Only tags; never changes the graph's structure. `--place REGION=PROC` overrides (from `ctx.place`) always
win; every other region gets the processor the policy picks:
- `round-robin` (default): trunk regions (stem, joins, head, main) on the CPU; the branches of each stage
  spread over the target's float-capable processors in order (b0 cpu, b1 gpu, b2 cpu, ...), so the
  branches of a stage run at the same time;
- `cpu`: everything on the CPU (the single-processor baseline).
A placement on a processor the target lacks is an error that names the region and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stretchc.errors import StretchError
from stretchc.ir import PROCESSORS, Module
from stretchc.passmanager import Pass, PassContext, register_pass

POLICIES = ("round-robin", "cpu")
# Processors that run float partitions; the DSP needs quantize-hexagon, which this pipeline lacks.
FLOAT_PROCESSORS = ("cpu", "gpu")


def parse_placement(text: str) -> dict[str, str]:
    """Parse `REGION=PROC,REGION=PROC` (the --place syntax) into a dict."""
    place: dict[str, str] = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        region, eq, proc = item.partition("=")
        region, proc = region.strip(), proc.strip().lower()
        if not eq or not region or not proc:
            raise StretchError("bad-placement", f"--place item {item!r}: expected REGION=PROCESSOR")
        if proc not in PROCESSORS:
            raise StretchError("bad-placement", f"--place {item!r}: unknown processor {proc!r} (processors: {', '.join(PROCESSORS)})")
        if region in place:
            raise StretchError("bad-placement", f"--place names region {region!r} twice")
        place[region] = proc
    return place


@register_pass
@dataclass(frozen=True)
class AssignDelegates(Pass):
    """Sets `processor` on every node from --place overrides and the chosen policy."""

    name = "assign-delegates"
    summary = "tag every region with a processor of the target (--place overrides win)"
    policy: str = field(default="round-robin", metadata={"choices": POLICIES})

    def run(self, module: Module, ctx: PassContext) -> bool:
        if not module.regions:
            raise StretchError("ir-invalid", "assign-delegates needs regions: run find-branches first")
        known = [r.name for r in module.regions]
        for region in ctx.place:
            if region not in known:
                raise StretchError("unknown-branch", f"--place names region {region!r}; the model's regions are {', '.join(known)}")
        target = ctx.target
        available = [p for p in FLOAT_PROCESSORS if target is None or p in target.processors]
        chosen: dict[str, str] = {}
        overrides: list[str] = []
        for region in module.regions:
            if region.name in ctx.place:
                proc = ctx.place[region.name]
                if target is not None:
                    target.require(proc, what=f"--place {region.name}={proc}")
                if proc == "dsp":
                    raise StretchError(
                        "no-such-processor",
                        f"--place {region.name}=dsp: DSP partitions must be int8, and this pipeline has no quantize-hexagon pass",
                        branch=region.name,
                    )
                chosen[region.name] = proc
                overrides.append(region.name)
            elif self.policy == "round-robin" and region.kind == "branch":
                chosen[region.name] = available[(region.branch or 0) % len(available)]
            else:
                chosen[region.name] = "cpu"
        changed = False
        for node in module.graph.nodes:
            proc = chosen[node.region]  # type: ignore[index]
            changed |= node.processor != proc
            node.processor = proc
        ctx.report["placement"] = {r.name: chosen[r.name] for r in module.regions}
        ctx.report["overrides"] = overrides
        return changed
