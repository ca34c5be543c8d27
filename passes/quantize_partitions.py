"""quantize-partitions: every partition whose precision is int8 (or uint8) is quantized, from one calibration of
the whole model; where a boundary changes dtype, one conversion is planned; `--precision auto` is held to its
accuracy bound.

Runs after outline-partitions and before insert-sync-points (so sync points and the buffer plan see the final
dtypes). A no-op when no partition is quantized, the guard has nothing to measure and the model I/O stay float.
What it does follows the compile settings (`ctx.settings`): the calibration data, the accuracy bound, the model
I/O dtype, the backends' own options.
1. Calibration inputs: `--calib` (stretchc/quantize/calibration_data.py). When the guard runs, or when the
   settings ask to hold samples out (`--min-sqnr`), the last N samples of a data set are held out of
   calibration (the `held-out-inputs` analysis).
2. The whole float model is calibrated once by TFLite's calibrator and quantized by TFLite's quantizer
   (stretchc/quantize/calibrate.py), so every tensor has one scale and zero point, shared by its producer and
   all its consumers; except that a value crossing a partition boundary whose shared scale (a same-scale op's,
   e.g. a concatenation's) is far coarser than its own crosses in its own, and each partition reading it
   requantizes it (stretchc/quantize/rewrite.py). A partition takes per-channel weights unless its backend has quantization rules
   (`Backend.quantization`: e.g. the Hexagon delegate's per-tensor fully connected weights, per-tensor weights
   when a channel-scale spread exceeds its limit, the legacy uint8 form); every quantized op of a processor with
   strict rules is checked against them again; `--on-ineligible` set to the fallback processor moves a failing
   partition there, still int8.
3. Guard (the settings' accuracy bound > 0, as `--precision auto` has): every model output is measured against
   the float model on held-out inputs (the held-out samples; with `--calib random` or no `--calib`, 20 seeded
   random inputs), and partitions are demoted to float32, most harmful first, until each output keeps the bound
   (stretchc/quantize/guard.py). A partition on a processor that runs no float32 and that the cost model chose
   is demoted to the fallback processor; one placed there by `--place` stays. When the bound is missed even
   then: StretchError("verify-failed"). If the result is predicted slower than the same placement all float
   and that meets the bound, that is taken instead. With a priced plan (a compile), the precisions the guard
   demotes are taken out of the plan's choices and the plan is decided again (at most `MAX_REDECISIONS` times):
   out of their regions' choices in split plans, and out of the whole model's as one partition only when that
   was the plan measured (a split plan's sync points say nothing of the whole model as one partition, which
   has none; stretchc/costmodel/placement.py).
4. The quantized ops replace the float ones; model inputs and outputs become the settings' `io_dtype`;
   conversions are added (stretchc/quantize/rewrite.py).
Records the `quantization` analysis (per partition) and `accuracy-guard` (the guard), and reprices the
placement report at the final precisions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from stretchc.analyses import AccuracyGuard, HeldOutInputs, Placement, Quantization
from stretchc.backends import backend, backends, fallback
from stretchc.backends.base import PartitionOps
from stretchc.compile_settings import QUANTIZE
from stretchc.costmodel.limits import target_limits
from stretchc.costmodel.placement import Choice, plan, reprice
from stretchc.eligibility import describe
from stretchc.errors import StretchError
from stretchc.ir import Module, Partition
from stretchc.native import NativeProcess
from stretchc.passes.outline_partitions import outline
from stretchc.passmanager import Pass, PassContext, register_pass
from stretchc.precision import QUANTIZED, sync_point_bound
from stretchc.quantize.calibrate import WholeModel
from stretchc.quantize.calibration_data import holdout_count, load_calibration_data, split_holdout
from stretchc.quantize.guard import MIN_SQNR_RANDOM_SAMPLES, MIN_SQNR_RANDOM_SEED, Evaluator, demote
from stretchc.quantize.rewrite import Forms, Quantized, adopt, own_scales, partition_nodes, splice
from stretchc.verify import DEFAULT_SAMPLES, seeded_feed
from stretchc.whole_model import graph_inputs

MAX_REDECISIONS = 8  # plans decided again after the guard rejected precisions; then the old demotion in place


@register_pass
@dataclass(frozen=True)
class QuantizePartitions(Pass):
    """Quantizes int8 partitions from one whole-model calibration, plans conversions, guards --precision auto."""

    name = "quantize-partitions"
    summary = "int8 partitions from one calibration of the whole model; one conversion per boundary that changes dtype; auto's accuracy guard"
    requires = ("outline-partitions",)
    not_after = ("insert-sync-points", "quantize-partitions")  # it quantizes the float graph, once
    uses = (Placement,)
    produces = (Quantization, HeldOutInputs, AccuracyGuard, Placement)
    capabilities = frozenset({QUANTIZE})

    def run(self, module: Module, ctx: PassContext) -> bool:
        if not module.partitions:
            raise StretchError("ir-invalid", "quantize-partitions needs partitions: run outline-partitions first")
        settings = ctx.settings
        quantized = [p for p in module.partitions if p.precision in QUANTIZED]
        guarded = settings.accuracy_bound > 0 and any(p.precision != "float32" for p in module.partitions)
        if not quantized and not guarded and settings.io_dtype not in QUANTIZED:
            return False
        if quantized and any(p.precision == "uint8" for p in quantized):
            raise StretchError("ir-invalid", "partitions are uint8 already: quantize-partitions ran twice")
        placed = ctx.analyses.get(Placement)
        # With a priced plan, a precision the guard rejects is taken out of the plan's choices and the plan is
        # decided again (so int8 may appear where the first plan had none: calibrate whenever data was given).
        redecide = guarded and ctx.target is not None and placed is not None and placed.report is not None
        calibrate = bool(quantized) or settings.io_dtype in QUANTIZED or (redecide and settings.calib is not None)
        samples, guard_feeds, source = self._inputs(module, ctx, quantized, calibrate, guarded)
        with NativeProcess() as native:
            forms, parts, partitions = self._decide(module, ctx, samples, guard_feeds, guarded, redecide, native)

        kept = [parts[p.name] for p in module.partitions if p.name in parts and p.precision in QUANTIZED]
        for q in parts.values():
            if q not in kept:
                for n in q.nodes:
                    n.detach()
        conversions = splice(module, kept, forms, settings.io_dtype)
        for p in module.partitions:
            if p.name in partitions:
                partitions[p.name]["precision"] = p.precision
        held = ctx.analyses.get(HeldOutInputs)
        ctx.analyses.put(Quantization(len(samples), source, None if held is None else len(held.feeds), partitions, conversions))
        return True

    def _decide(
        self, module: Module, ctx: PassContext, samples: list[dict], guard_feeds: list[dict], guarded: bool, redecide: bool, native: NativeProcess  # type: ignore[type-arg]
    ) -> tuple[Any, dict[str, Any], dict[str, dict[str, Any]]]:
        """Calibrate, quantize and (when `guarded`) measure, deciding the plan again while the guard rejects
        precisions (steps 2 and 3); (forms, quantized partitions by name, per-partition report) of the result."""
        console = ctx.console
        whole = None
        if samples:
            with console.step(f"calibrating the whole model (TFLite calibrator, {len(samples)} samples)"):
                whole = WholeModel(module, [graph_inputs(module, s) for s in samples], native)
        rejected: dict[str, dict[Any, str]] = {}  # per region, in split plans
        whole_rejected: dict[Any, str] = {}  # the whole model as one partition (see costmodel/placement.py)
        history: list[dict[str, str]] = []
        for attempt in range(MAX_REDECISIONS + 1):
            if attempt and whole is not None:
                whole.reset()
            forms, parts, partitions = self._quantize_all(module, ctx, whole)
            if not guarded:
                break
            measured = self._measure(module, ctx, parts, forms, guard_feeds, redecide and attempt < MAX_REDECISIONS, native)
            if redecide and attempt < MAX_REDECISIONS and measured.steps:
                self._reject(module, ctx, measured, rejected, whole_rejected, history)
                for q in parts.values():
                    for n in q.nodes:
                        n.detach()
                self._replan(module, ctx, rejected, whole_rejected)
                guarded = any(p.precision != "float32" for p in module.partitions)
                if not guarded:  # everything float32 now: the float model itself, nothing to measure or quantize
                    if whole is not None:
                        whole.reset()
                    forms, parts, partitions = self._quantize_all(module, ctx, whole)
                    exact = {p.name: "float32" for p in module.partitions}
                    same = _Measured(exact, [], exact, {t.value: float("inf") for t in module.outputs}, [], measured.on, measured.feeds, True, "")
                    self._settle(module, ctx, same, history, redecided=True, rejected=rejected, whole_rejected=whole_rejected)
                    break
                continue
            self._settle(module, ctx, measured, history, redecided=redecide, rejected=rejected, whole_rejected=whole_rejected)
            break
        return forms, parts, partitions

    def _quantize_all(self, module: Module, ctx: PassContext, whole: Any) -> tuple[Any, dict[str, Any], dict[str, dict[str, Any]]]:
        """(forms, quantized partitions by name, per-partition report) of the module's int8 partitions."""
        quantized = [p for p in module.partitions if p.precision in QUANTIZED]
        self._check_limits(module, ctx, quantized)
        if quantized and whole is None:
            raise StretchError("bad-calibration", "int8 partitions need calibration data: pass --calib DIR|FILE.npy|FILE.npz")
        reference = whole.variant("per-channel") if whole is not None and (quantized or ctx.settings.io_dtype in QUANTIZED) else None
        # Boundary values the quantizer gave a much coarser scale than their own keep theirs (rewrite.py).
        own = own_scales(module, reference, whole.own_quant(), {p.name for p in quantized}) if reference is not None else {}
        forms = Forms(module, reference, own)
        partitions: dict[str, dict[str, Any]] = {}
        parts: dict[str, Any] = {}
        for p in quantized:
            with ctx.console.step(f"quantizing partition {p.name} ({p.processor}, {p.precision})"):
                q = self._quantize(module, ctx, p, whole, forms, partitions)
            if q is not None:
                parts[p.name] = q
        return forms, parts, partitions

    # ---------------------------------------------------------------- steps

    @staticmethod
    def _check_limits(module: Module, ctx: PassContext, quantized: list[Partition]) -> None:
        """The quantized partitions keep their processors' limits (placements made after assign-delegates' check,
        e.g. by the cost model, are checked here once more)."""
        limits = target_limits(ctx.target)
        for b in backends():
            mine = [p for p in quantized if p.processor == b.name]
            ops = [PartitionOps(tuple(p.regions), tuple(n for n in module.graph.nodes if n.partition == p.name and n.op.startswith("tfl."))) for p in mine]
            found = b.limit_violations(ops, limits) if ops else []
            if found:
                v = found[0]
                raise StretchError("ineligible-op", f"{v.message} (rule {v.limit})", branch=v.regions[0] if len(v.regions) == 1 else None)

    def _inputs(self, module: Module, ctx: PassContext, quantized: list[Partition], calibrate: bool, guarded: bool) -> tuple[list[dict], list[dict], str]:  # type: ignore[type-arg]
        """(calibration samples, inputs the guard measures on, where the samples came from); ONNX layout. Nothing
        is calibrated unless `calibrate`."""
        inputs = [(i.name, tuple(i.shape), i.dtype) for i in module.inputs]
        random_feeds = _seeded(module, range(MIN_SQNR_RANDOM_SEED, MIN_SQNR_RANDOM_SEED + MIN_SQNR_RANDOM_SAMPLES))
        settings = ctx.settings
        calib = settings.calib
        if not calibrate:
            return [], random_feeds, ""  # only fp16 partitions to measure: nothing to calibrate
        if calib is None:
            what = ", ".join(f"{p.name} ({p.processor})" for p in quantized) or f"--io-dtype {settings.io_dtype}"
            raise StretchError(
                "bad-calibration",
                f"int8 needs calibration data ({what}): pass --calib DIR|FILE.npy|FILE.npz (or --calib random, which costs accuracy)",
            )
        cal = load_calibration_data(str(calib), inputs, preprocess=settings.preprocess)
        if cal.random:
            ctx.console.warn("random-calibration", "--calib random: int8 partitions are calibrated on uniform noise; accuracy will suffer")
        samples = cal.samples
        guard_feeds = random_feeds
        if not cal.random and (guarded or settings.hold_out):
            held = holdout_count(len(samples), settings.calib_holdout, source=cal.source)
            samples, guard_feeds = split_holdout(samples, held)
            ctx.analyses.put(HeldOutInputs(guard_feeds))
        return samples, guard_feeds, cal.source

    def _quantize(self, module: Module, ctx: PassContext, p: Partition, whole: Any, forms: Any, report: dict[str, dict[str, Any]]) -> Any:
        """Partition `p`'s quantized ops, adopted into `forms`, after its backend's rules (see step 2)."""
        runs = backend(p.processor)
        rules = runs.quantization(ctx.settings.options_of(runs.name))
        dtype = rules.dtype if rules is not None else "int8"
        weights = rules.weights() if rules is not None else "per-channel"
        nodes = partition_nodes(module, p.name, whole.variant(weights))
        if rules is not None:
            wide = rules.wide_spreads(nodes)
            if wide and weights != "per-tensor":
                ctx.console.note(
                    "per-tensor",
                    f"partition {p.name}: {wide[0][0]} has a channel-scale spread of {wide[0][1]:.0f}x > {rules.max_spread:.0f}x; weights quantized per-tensor",
                )
                weights = rules.weights(per_tensor=True)
                nodes = partition_nodes(module, p.name, whole.variant(weights))
        adopt(nodes, forms, dtype, p.name)
        if rules is not None:
            rules.finish(nodes, partition=p.name)
        bad = [(n, v) for n in nodes if (v := runs.op_violation(n, quantized=True)) is not None] if runs.strict_rules else []
        if bad:
            n, v = bad[0]
            base = fallback()
            if ctx.settings.on_ineligible == "error":
                raise StretchError("ineligible-op", "after quantization: " + describe(n, p.name, runs, v), branch=p.name, node=n.loc)
            for n, v in bad:
                ctx.console.warn("ineligible-op", "after quantization: " + describe(n, p.name, runs, v) + f"; partition {p.name} runs int8 on the {base.label}", branch=p.name)
            for n in nodes:
                n.detach()
            _move(module, p, base.name, "int8")
            report[p.name] = {"moved_to": base.name}
            dtype, weights = "int8", "per-channel"
            nodes = partition_nodes(module, p.name, whole.variant(weights))
            adopt(nodes, forms, dtype, p.name)
        _move(module, p, p.processor, dtype)
        report.setdefault(p.name, {}).update({"ops": len(nodes), "weights": weights, "dtype": dtype})
        return Quantized(p.name, nodes, dtype, weights)

    def _measure(self, module: Module, ctx: PassContext, parts: dict[str, Any], forms: Any, feeds: list[dict], redecide: bool, native: NativeProcess) -> "_Measured":  # type: ignore[type-arg]
        """Every model output against the float model at the partitions' precisions, and the demotions that bring
        each to the bound (stretchc/quantize/guard.py); a partition TFLite cannot run at its precision is demoted
        first."""
        bound = ctx.settings.accuracy_bound
        config = {p.name: p.precision for p in module.partitions}
        # A partition whose processor runs no float32 and that --place put there cannot be demoted; when the plan is
        # decided again, only one --place put there whole (its other regions may still lose that precision).
        stuck = (lambda p: set(p.regions) <= set(ctx.place)) if redecide else (lambda p: bool(set(p.regions) & set(ctx.place)))
        pinned = {p.name for p in module.partitions if not backend(p.processor).runs_float32(ctx.target) and stuck(p)}
        candidates = [p.name for p in module.partitions if p.precision != "float32" and p.name not in pinned]
        groups = None
        if ctx.analyses.get(HeldOutInputs) is not None:
            on = "held-out calibration sample(s)"
        else:
            # `compile --verify` and `verify` run verify's seeded inputs then: every check holds on them by themselves too
            groups = [range(len(feeds)), range(len(feeds), len(feeds) + DEFAULT_SAMPLES)]
            feeds = [*feeds, *_seeded(module, range(DEFAULT_SAMPLES))]
            on = f"seeded uniform-random input(s), verify's {DEFAULT_SAMPLES} included"
        with ctx.console.step(f"measuring accuracy against the float model (--min-sqnr {bound:g} dB, {len(feeds)} {on})"):
            evaluator = Evaluator(module, parts, forms, [graph_inputs(module, f) for f in feeds], native, groups)
            final, measurement, steps = demote(evaluator, config, candidates, bound)
            evaluator.close()
        failed = [(name, prec) for name, prec in final.items() if (name, prec) in evaluator.failed]
        if failed:
            name, prec = failed[0]
            p = module.partition(name)
            raise StretchError(
                "native-crash",
                f"partition {name} ({p.processor} {prec}): {evaluator.failed[(name, prec)]}; --place put it on a processor that runs no float32",
                branch=p.regions[0] if len(p.regions) == 1 else None,
            )
        return _Measured(config, candidates, final, measurement.outputs, steps, on, len(feeds), measurement.kept, measurement.worst())

    @staticmethod
    def _reject(
        module: Module, ctx: PassContext, measured: "_Measured", rejected: dict[str, dict[Any, str]], whole_rejected: dict[Any, str], history: list[dict[str, str]]
    ) -> None:
        """Take the precisions the guard demoted out of their regions' choices (with the SQNR that condemned them),
        and out of the whole model's when the measured plan was the whole model as one partition; a region --place
        put on a processor that runs no float32 keeps its only precision."""
        whole = len(module.partitions) == 1
        for step in measured.steps:
            p = module.partition(step.partition)
            why = (
                f"{p.processor} {p.precision} in partition {p.name}: {step.failure}" if step.failure
                else f"{p.processor} {p.precision} in partition {p.name}: {step.before} (without it{_and_others(step.with_)} {step.after})"
            )
            stays = not backend(p.processor).runs_float32(ctx.target)
            # The same numbers on another processor (the same fp16 emulation, or the same TFLite int8 form where no
            # backend rule changes it) were measured too: rejected with it.
            twins = [q for q in _processors(ctx.target) if q != p.processor and _same_form(ctx, p.processor, q, p.precision)]
            refused = {Choice(p.processor, p.precision): why} | {Choice(q, p.precision): f"{why}; the {q} runs the same {p.precision} form" for q in twins}
            for r in p.regions:
                if not (stays and r in ctx.place):
                    for c, w in refused.items():
                        rejected.setdefault(r, {}).setdefault(c, w)
            if whole:
                for c, w in refused.items():
                    whole_rejected.setdefault(c, w)
            history.append({"partition": p.name, "processor": p.processor, "precision": p.precision, "why": why})

    def _replan(self, module: Module, ctx: PassContext, rejected: dict[str, dict[Any, str]], whole_rejected: dict[Any, str]) -> None:
        """Decide placement, precisions and partitions again without the rejected choices; retag and recut."""
        placed = ctx.analyses.require(Placement, by=self.name)
        report = placed.report
        assert report is not None
        new = plan(
            module, ctx.target, fixed={r: placed.placement[r] for r in placed.overrides}, policy=report["precision_policy"],
            calibrated=report["calibrated"], optimise_free=report.get("policy") == "critical-path", given=dict(placed.placement),
            io_dtype=report["io_dtype"], rejected=rejected, grouping=report.get("grouping", "cost"), whole_rejected=whole_rejected,
        )
        new["policy"] = report.get("policy")
        if "cost_model" in report:
            new["cost_model"] = report["cost_model"]
        part_of = {r: p["name"] for p in new["partitions"] for r in p["regions"]}
        for n in module.graph.nodes:
            if n.region in part_of:
                n.processor, n.precision, n.partition = new["placement"][n.region], new["precision"][n.region], part_of[n.region]
                n.lane = new["lanes"][n.region] or None
        outline(module)
        ctx.analyses.put(replace(placed, placement=dict(new["placement"]), report=new))

    def _settle(
        self, module: Module, ctx: PassContext, m: "_Measured", history: list[dict[str, str]], *, redecided: bool,
        rejected: dict[str, dict[Any, str]], whole_rejected: dict[Any, str],
    ) -> None:
        """Record the guard, fail when the bound cannot be kept, demote what must be demoted (when the plan could not
        be decided again) and reprice the report at the final precisions."""
        bound = ctx.settings.accuracy_bound
        placed = ctx.analyses.get(Placement)
        priced = ctx.target is not None and placed is not None and placed.report is not None
        reasons = {
            s.partition: s.failure or f"against the float model, {s.before} (after demoting it{_and_others(s.with_)}: {s.after})"
            for s in m.steps
        }
        onnx_name = {t.value: t.name for t in module.outputs}
        demoted = [name for name in m.candidates if m.final[name] == "float32"]
        guard = AccuracyGuard(
            min_sqnr=bound,
            inputs=m.feeds,
            measured_on=m.on,
            sqnr_db={onnx_name.get(k, k): (round(v, 2) if v != float("inf") else None) for k, v in sorted(m.sqnr.items())},
            demoted=[{"partition": name, "from": m.config[name], "why": reasons.get(name, "")} for name in demoted],
            rejected=history,
        )
        ctx.analyses.put(guard)
        if not m.kept:
            kept = sorted(n for n, prec in m.final.items() if prec != "float32")
            raise StretchError(
                "verify-failed",
                f"against the float model, {m.worst} (--min-sqnr {bound:g} dB; sync points {sync_point_bound(bound):g} dB) "
                "even with every partition that can run float demoted to float32"
                + (f" ({', '.join(kept)} stay quantized: --place put them on a processor that runs no float32)" if kept else ""),
            )
        if priced:
            report = self._reprice(module, ctx, m.final, reasons, min(m.sqnr.values()), rejected, whole_rejected)
            report["accuracy_guard"] = guard.to_record()
            ctx.analyses.put(replace(ctx.analyses.require(Placement, by=self.name), report=report))
        for name in demoted:
            p = module.partition(name)
            _move(module, p, _float_processor(p, ctx.target), "float32")
            ctx.console.note("precision", f"--precision auto: partition {name} demoted to float32 on {p.processor}: {reasons.get(name, '')}")
        for h in history if redecided else []:
            ctx.console.note("precision", f"--precision auto: rejected {h['why']}; the plan was decided again without it")

    def _choices(self, module: Module, final: dict[str, str], target: Any) -> dict[str, Any]:
        out = {}
        for p in module.partitions:
            proc = _float_processor(p, target) if final[p.name] == "float32" else p.processor
            for r in p.regions:
                out[r] = Choice(proc, final[p.name], p.lane if proc == p.processor else 0)
        return out

    def _report(self, ctx: PassContext) -> dict[str, Any]:
        report = ctx.analyses.require(Placement, by=self.name).report
        assert report is not None
        return report

    def _reprice(
        self, module: Module, ctx: PassContext, final: dict[str, str], reasons: dict[str, str], worst: float,
        rejected: dict[str, dict[Any, str]], whole_rejected: dict[Any, str],
    ) -> dict[str, Any]:
        """The placement report at the final precisions, saying why each partition has its precision."""
        old = {r["region"]: r for r in self._report(ctx)["regions"]}
        bound = ctx.settings.accuracy_bound
        why: dict[str, str] = {}
        for p in module.partitions:
            for r in p.regions:
                if p.name in reasons and final[p.name] == "float32":
                    why[r] = f"auto: demoted from {p.precision} to float32: {reasons[p.name]}"
                elif final[p.name] != "float32":
                    kept = "inf" if worst == float("inf") else f"{worst:.1f}"
                    why[r] = f"{old[r]['precision_why']}; every model output keeps >= {bound:g} dB against the float model (worst {kept} dB)"
        groups = tuple(tuple(p.regions) for p in module.partitions)
        return reprice(module, ctx.target, self._report(ctx), self._choices(module, final, ctx.target), why, groups, rejected, whole_rejected)


@dataclass(frozen=True)
class _Measured:
    """What one measurement of the guard found: the precisions measured, the partitions it could demote, the
    precisions that keep the bounds, each output's SQNR at those, the demotions, what it measured on, how many,
    whether every check kept its bound and the worst one."""

    config: dict[str, str]
    candidates: list[str]
    final: dict[str, str]
    sqnr: dict[str, float]
    steps: list[Any]
    on: str
    feeds: int
    kept: bool  # every output and sync point keeps its bound at `final`
    worst: str  # the check furthest below (or least above) its bound at `final`


def _and_others(others: list[str]) -> str:
    """" and N other partition(s)" demoted in the same step, or nothing."""
    return f" and {len(others)} other partition(s) that broke their bounds by themselves" if others else ""


def _seeded(module: Module, seeds: range) -> list[dict[str, Any]]:
    """`verify`'s seeded inputs (ONNX layout) for the module's inputs, one per seed."""
    return [seeded_feed(((i.name, list(i.shape), i.dtype) for i in module.inputs), seed) for seed in seeds]


def _processors(target: Any) -> list[str]:
    """The processors of `target` (every backend's without one)."""
    return [b.name for b in backends() if target is None or b.name in target.processors]


def _same_form(ctx: PassContext, a: str, b: str, precision: str) -> bool:
    """Whether processors `a` and `b` run `precision` with the same numbers in the guard's measurement: fp16 is
    one emulation; an 8-bit precision is the same when neither backend has quantization rules of its own."""
    if precision not in backend(b).precisions(ctx.target):
        return False
    if precision == "float16":
        return True
    rules = [backend(x).quantization(ctx.settings.options_of(x)) for x in (a, b)]
    return precision in QUANTIZED and rules == [None, None]


def _float_processor(p: Partition, target: Any) -> str:
    """Where partition `p` runs float32: its processor, or the fallback when that runs no float32."""
    return p.processor if backend(p.processor).runs_float32(target) else fallback().name


def _move(module: Module, p: Partition, processor: str, precision: str) -> None:
    """Partition `p` (and its nodes) now runs on `processor` at `precision` (in its lane there, or the first lane of
    another processor)."""
    if processor != p.processor:
        p.lane = 0
    p.processor, p.precision = processor, precision
    for n in module.graph.nodes:
        if n.partition == p.name:
            n.processor, n.precision, n.lane = processor, precision, p.lane or None
