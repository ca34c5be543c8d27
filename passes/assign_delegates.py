"""assign-delegates: tag every region (and so every node) with the processor that runs it, its lane there (when the
processor runs several partitions at the same time: `Backend.lanes`) and its precision.

Only tags; never changes the graph's structure. `--place REGION=PROC` overrides (from `ctx.place`) always
win; every other region gets the processor the policy picks:
- `critical-path` (default): the placement with the least predicted end-to-end latency under the target's
  cost model (concurrent branches cost their maximum, branches sharing a processor serialize, plus sync and
  transfer costs), among the processors each region is eligible for (`stretchc.costmodel.placement`:
  exhaustive when small, block coordinate descent otherwise; a processor that runs int8 only is eligible when
  the pipeline quantizes and calibration data was given);
- `round-robin`: trunk regions (stem, joins, head, main) on the fallback processor (the CPU); the branches of each
  stage spread over the target's processors that run float32, in backend order (b0 cpu, b1 gpu, b2 cpu, ...), so
  the branches of a stage run at the same time;
- `cpu`: everything on the fallback processor (the single-processor baseline).
A placement on a processor the target lacks is an error that names the region and says why; a region `--place`d
on a processor with strict op rules is checked against them (stretchc/eligibility.py, `--on-ineligible`).
The precision of every region comes from the compile settings' policy (`--precision`, see `stretchc.precision`):
a fixed policy gives each processor one precision; `auto` lets the cost model choose, together with the
placement, the fastest precision each processor runs (int8 only when a pass of the pipeline quantizes,
quantize-partitions, and calibration data was given; quantize-partitions then holds `auto` to its accuracy bound).
Also tags every node with the partition it will be cut into (outline-partitions cuts along these tags): the
plan's grouping of regions into partitions (stretchc.costmodel.grouping). `grouping=cost` (default): chosen
together with the placement and priced by the cost model, never predicted slower than the whole model as one
partition on one processor; `grouping=regions`: every region its own partition (the last join and the head
share one when they share a processor and precision), as the NN-Stretch prototype runs every branch as its own
delegate partition: for reproducing it, whatever that costs.
Records the `placement` analysis: per region its processor, the overrides, the regions moved off a processor
whose rules they broke, and with a target the placement report (per region: processor, precision, why,
eligibility and predicted cost of the alternatives; the timeline; baselines) and its predicted latency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stretchc.analyses import Placement
from stretchc.backends import backend, backends, fallback, processors
from stretchc.costmodel.accuracy import evidence
from stretchc.costmodel.grouping import GROUPINGS, partition_name
from stretchc.costmodel.placement import Choice, plan, region_graph
from stretchc.eligibility import check_overrides
from stretchc.errors import StretchError
from stretchc.ir import Module
from stretchc.passmanager import Pass, PassContext, register_pass
from stretchc.precision import choices



def policies() -> tuple[str, ...]:
    """The placement policies: the cost model's, round-robin, and everything on the fallback processor."""
    return ("critical-path", "round-robin", fallback().name)


def parse_placement(text: str) -> dict[str, str]:
    """Parse `REGION=PROC,REGION=PROC` (the --place syntax) into a dict."""
    place: dict[str, str] = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        region, eq, proc = item.partition("=")
        region, proc = region.strip(), proc.strip().lower()
        if not eq or not region or not proc:
            raise StretchError("bad-placement", f"--place item {item!r}: expected REGION=PROCESSOR")
        if proc not in processors():
            raise StretchError("bad-placement", f"--place {item!r}: unknown processor {proc!r} (processors: {', '.join(processors())})")
        if region in place:
            raise StretchError("bad-placement", f"--place names region {region!r} twice")
        place[region] = proc
    return place


@register_pass
@dataclass(frozen=True)
class AssignDelegates(Pass):
    """Sets `processor` and `precision` on every node from --place overrides, the policy and the precision policy."""

    name = "assign-delegates"
    summary = "tag every region with a processor of the target and a precision (--place overrides win)"
    requires = ("find-branches",)
    produces = (Placement,)
    policy: str = field(default="critical-path", metadata={"choices": policies()})
    grouping: str = field(default="cost", metadata={"choices": ("cost", "regions")})

    def run(self, module: Module, ctx: PassContext) -> bool:
        if not module.regions:
            raise StretchError("ir-invalid", "assign-delegates needs regions: run find-branches first")
        known = [r.name for r in module.regions]
        for region in ctx.place:
            if region not in known:
                raise StretchError("unknown-branch", f"--place names region {region!r}; the model's regions are {', '.join(known)}")
        target, settings = ctx.target, ctx.settings
        quantizes = ctx.settings.quantize
        calibrated = quantizes and settings.calib is not None  # int8 is available
        base = fallback()
        spread = [b.name for b in backends() if b.runs_float32(target) and (target is None or b.name in target.processors)]
        chosen: dict[str, str] = {}
        overrides: list[str] = []
        for region in module.regions:
            if region.name in ctx.place:
                proc = ctx.place[region.name]
                if target is not None:
                    target.require(proc, what=f"--place {region.name}={proc}")
                if not quantizes and backend(proc).quantized_only(target):
                    raise StretchError(
                        "no-such-processor",
                        f"--place {region.name}={proc}: {backend(proc).label} partitions must be int8, and this pipeline has no pass that quantizes",
                        branch=region.name,
                    )
                chosen[region.name] = proc
                overrides.append(region.name)
            elif self.policy == "round-robin" and region.kind == "branch":
                chosen[region.name] = spread[(region.branch or 0) % len(spread)]
            else:
                chosen[region.name] = base.name
        chosen, moved = check_overrides(module, chosen, overrides, target=target, on_ineligible=settings.on_ineligible, console=ctx.console)
        if settings.precision == "auto" and not calibrated and quantizes:
            ctx.console.note("precision", "--precision auto without --calib: nothing can be calibrated, so no partition is int8 (CPU float32; GPU float32 or fp16); pass --calib to let auto choose int8")
        precision = {r: choices(settings.precision, p, calibrated=calibrated, target=target)[0] for r, p in chosen.items()}
        report = None
        if target is not None:
            fixed = {r: chosen[r] for r in overrides}
            # The optimiser may pick a processor that runs int8 only, and int8, only when the pipeline quantizes
            # and calibration data was given.
            report = plan(
                module, target, fixed=fixed, policy=settings.precision, calibrated=calibrated,
                optimise_free=self.policy == "critical-path", given=dict(chosen), io_dtype=settings.io_dtype, grouping=self.grouping,
            )
            report["policy"] = self.policy
            report["cost_model"] = evidence(target)  # what the predictions rest on, per processor
            chosen, precision = dict(report["placement"]), dict(report["precision"])
        part_of = self._partitions(module, chosen, precision, report, self.grouping)
        lane = {} if report is None else report["lanes"]
        changed = False
        for node in module.graph.nodes:
            tags = (chosen[node.region], precision[node.region], part_of[node.region], lane.get(node.region) or None)  # type: ignore[index]
            changed |= (node.processor, node.precision, node.partition, node.lane) != tags
            node.processor, node.precision, node.partition, node.lane = tags
        ctx.analyses.put(Placement({r.name: chosen[r.name] for r in module.regions}, overrides, moved, report))
        return changed

    @staticmethod
    def _partitions(module: Module, chosen: dict[str, str], precision: dict[str, str], report: dict[str, Any] | None, grouping: str) -> dict[str, str]:
        """Region -> the partition it joins: the plan's grouping, or without a target (nothing to price) the
        placement's grouping by the option's rule (stretchc.costmodel.grouping: canonical, or per region)."""
        if report is not None:
            return {r: p["name"] for p in report["partitions"] for r in p["regions"]}
        rg = region_graph(module)
        return {r: partition_name(g) for g in GROUPINGS[grouping](rg, {r: Choice(chosen[r], precision[r]) for r in rg.names}) for r in g}
