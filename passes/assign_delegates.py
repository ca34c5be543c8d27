"""assign-delegates: tag every region (and so every node) with the processor that runs it and its precision.

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
The precision of every region comes from `precision` (`--precision`, see `stretchc.precision`): a fixed
policy gives each processor one precision; `auto` lets the cost model choose, together with the placement,
the fastest precision each processor runs (int8 only when the pipeline quantizes, with quantize-partitions,
and calibration data was given; quantize-partitions then holds `auto` to its accuracy bound).
Every policy records the prediction in `ctx.report`: `predicted_latency_ms` and `placement_report` (per
region: processor, precision, why, eligibility and predicted cost of the alternatives; the timeline; baselines).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stretchc.errors import StretchError
from stretchc.ir import PROCESSORS, Module
from stretchc.passmanager import Pass, PassContext, _split_top, parse_pipeline, register_pass
from stretchc.precision import POLICIES as PRECISION_POLICIES
from stretchc.precision import choices

POLICIES = ("critical-path", "round-robin", "cpu")
# Processors that run float partitions; the DSP needs quantize-partitions, which this pipeline may lack.
FLOAT_PROCESSORS = ("cpu", "gpu")
QUANTIZER = "quantize-partitions"


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


def quantizer(ctx: PassContext) -> Pass | None:
    """The running pipeline's quantize-partitions pass (from ctx.options["pipeline"]), or None."""
    text = str(ctx.options.get("pipeline", ""))
    for element in _split_top(text) if text else []:
        if element.partition("{")[0].strip() == QUANTIZER:
            return parse_pipeline(element)[0]
    return None


@register_pass
@dataclass(frozen=True)
class AssignDelegates(Pass):
    """Sets `processor` and `precision` on every node from --place overrides and the chosen policies."""

    name = "assign-delegates"
    summary = "tag every region with a processor of the target and a precision (--place overrides win)"
    requires = ("find-branches",)
    policy: str = field(default="critical-path", metadata={"choices": POLICIES})
    precision: str = field(default="auto", metadata={"choices": PRECISION_POLICIES})

    def run(self, module: Module, ctx: PassContext) -> bool:
        if not module.regions:
            raise StretchError("ir-invalid", "assign-delegates needs regions: run find-branches first")
        known = [r.name for r in module.regions]
        for region in ctx.place:
            if region not in known:
                raise StretchError("unknown-branch", f"--place names region {region!r}; the model's regions are {', '.join(known)}")
        target = ctx.target
        quant = quantizer(ctx)
        # int8 is available when the pipeline quantizes and calibration data was given.
        calibrated = quant is not None and bool(ctx.options.get("calib"))
        available = [p for p in FLOAT_PROCESSORS if target is None or p in target.processors]
        chosen: dict[str, str] = {}
        overrides: list[str] = []
        for region in module.regions:
            if region.name in ctx.place:
                proc = ctx.place[region.name]
                if target is not None:
                    target.require(proc, what=f"--place {region.name}={proc}")
                if proc == "dsp" and quant is None:
                    raise StretchError(
                        "no-such-processor",
                        f"--place {region.name}=dsp: DSP partitions must be int8, and this pipeline has no {QUANTIZER} pass",
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
        if self.precision == "auto" and not calibrated and quant is not None:
            ctx.console.note("precision", "--precision auto without --calib: nothing can be calibrated, so no partition is int8 (CPU float32; GPU float32 or fp16); pass --calib to let auto choose int8")
        precision = {r: choices(self.precision, p, calibrated=calibrated)[0] for r, p in chosen.items()}
        if target is not None:
            from stretchc.costmodel.placement import plan

            fixed = {r: chosen[r] for r in overrides}
            # The optimiser may pick the DSP, and int8, only when the pipeline quantizes and calibration data was given.
            report = plan(
                module, target, fixed=fixed, policy=self.precision, calibrated=calibrated,
                optimise_free=self.policy == "critical-path", given=dict(chosen), io_dtype=getattr(quant, "io_dtype", "float32"),
            )
            report["policy"] = self.policy
            chosen, precision = dict(report["placement"]), dict(report["precision"])
            ctx.report["predicted_latency_ms"] = report["predicted_latency_ms"]
            ctx.report["placement_report"] = report
        changed = False
        for node in module.graph.nodes:
            proc, prec = chosen[node.region], precision[node.region]  # type: ignore[index]
            changed |= (node.processor, node.precision) != (proc, prec)
            node.processor, node.precision = proc, prec
        ctx.report["placement"] = {r.name: chosen[r.name] for r in module.regions}
        ctx.report["overrides"] = overrides
        return changed
