"""assign-delegates: tag every region (and so every node) with the processor that runs it.

Only tags; never changes the graph's structure. `--place REGION=PROC` overrides (from `ctx.place`) always
win; every other region gets the processor the policy picks:
- `critical-path` (default): the placement with the least predicted end-to-end latency under the target's
  cost model (concurrent branches cost their maximum, branches sharing a processor serialize, plus sync and
  transfer costs), among the processors each region is eligible for (`stretchc.costmodel.placement`:
  exhaustive when small, block coordinate descent otherwise; float pipelines: cpu and gpu only);
- `round-robin`: trunk regions (stem, joins, head, main) on the CPU; the branches of each stage
  spread over the target's float-capable processors in order (b0 cpu, b1 gpu, b2 cpu, ...), so the
  branches of a stage run at the same time;
- `cpu`: everything on the CPU (the single-processor baseline).
A placement on a processor the target lacks is an error that names the region and says why.
Every policy records the prediction in `ctx.report`: `predicted_latency_ms` and `placement_report` (per
region: processor, why, eligibility and predicted cost of the alternatives; the timeline; baselines).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stretchc.errors import StretchError
from stretchc.ir import PROCESSORS, Module
from stretchc.passmanager import Pass, PassContext, register_pass

POLICIES = ("critical-path", "round-robin", "cpu")
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


def _has_quantize_hexagon(ctx: PassContext) -> bool:
    """Whether the running pipeline quantizes DSP partitions (ctx.options["pipeline_passes"] or the pipeline string)."""
    names = ctx.options.get("pipeline_passes")
    if names is None:
        from stretchc.passmanager import _split_top

        names = [e.partition("{")[0].strip() for e in _split_top(str(ctx.options.get("pipeline", "")))]
    return "quantize-hexagon" in names


@register_pass
@dataclass(frozen=True)
class AssignDelegates(Pass):
    """Sets `processor` on every node from --place overrides and the chosen policy."""

    name = "assign-delegates"
    summary = "tag every region with a processor of the target (--place overrides win)"
    requires = ("find-branches",)
    policy: str = field(default="critical-path", metadata={"choices": POLICIES})

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
                if proc == "dsp" and not _has_quantize_hexagon(ctx):
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
        if "dsp" in chosen.values():
            from stretchc.hexagon.eligibility import apply as hexagon_eligibility

            chosen = hexagon_eligibility(module, chosen, ctx)  # Hexagon rules; may move regions to the CPU
        if target is not None:
            from stretchc.costmodel.placement import plan

            fixed = {r: chosen[r] for r in overrides}
            # The optimiser may pick the DSP only when the pipeline quantizes for it and calibration data was given.
            quantized = _has_quantize_hexagon(ctx) and bool(ctx.options.get("calib"))
            report = plan(module, target, fixed=fixed, quantized_dsp=quantized, optimise_free=self.policy == "critical-path", given=chosen)
            report["policy"] = self.policy
            chosen = dict(report["placement"])
            ctx.report["predicted_latency_ms"] = report["predicted_latency_ms"]
            ctx.report["placement_report"] = report
        changed = False
        for node in module.graph.nodes:
            proc = chosen[node.region]  # type: ignore[index]
            changed |= node.processor != proc
            node.processor = proc
        ctx.report["placement"] = {r.name: chosen[r.name] for r in module.regions}
        ctx.report["overrides"] = overrides
        return changed
