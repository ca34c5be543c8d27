"""quantize-partitions: every partition whose precision is int8 (or uint8) is quantized, from one calibration of
the whole model; where a boundary changes dtype, one conversion is planned; `--precision auto` is held to its
accuracy bound.

Runs after outline-partitions and before insert-sync-points (so sync points and the buffer plan see the final
dtypes). A no-op when no partition is quantized, the guard has nothing to measure and the model I/O stay float.
1. Calibration inputs: `--calib` (stretchc/hexagon/calibration.py). When the guard runs, or with
   `ctx.options["calib_holdout"]` (`--min-sqnr`), the last N samples of a data set are held out of calibration
   and put in `ctx.report["held_out_inputs"]`.
2. The whole float model is calibrated once by TFLite's calibrator and quantized by TFLite's quantizer
   (stretchc/quantize/calibrate.py), so every tensor has one scale and zero point, shared by its producer and
   all its consumers. CPU and GPU partitions take per-channel weights; DSP partitions follow the Hexagon
   delegate's rules (stretchc/hexagon/quantization.py: per-tensor fully connected weights, per-tensor weights
   when a channel-scale spread exceeds 1024x, the legacy uint8 form with `hexagon-dtype=uint8`, every op
   re-checked against the delegate; `--on-ineligible=cpu` moves a failing partition to the CPU, still int8).
3. Guard (`min-sqnr` > 0, which `--precision auto` sets): every model output is measured against the float
   model on held-out inputs (the held-out samples; with `--calib random` or no `--calib`, 20 seeded random
   inputs), and partitions are demoted to float32, most harmful first, until each output keeps `min-sqnr` dB
   (stretchc/quantize/guard.py). A DSP partition the cost model chose is demoted to the CPU; one placed there
   by `--place` stays int8. When the bound is missed even then: StretchError("verify-failed"). If the result
   is predicted slower than the same placement all float and that meets the bound, that is taken instead.
4. The quantized ops replace the float ones; model inputs and outputs become `io-dtype`; conversions are added
   (stretchc/quantize/rewrite.py).
Reports `ctx.report["quantization"]` (per partition) and `ctx.report["accuracy_guard"]` (the guard), and reprices
the placement report at the final precisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stretchc.errors import StretchError
from stretchc.ir import Module, Partition
from stretchc.passmanager import Pass, PassContext, register_pass
from stretchc.precision import QUANTIZED, SUPPORTED

IO_DTYPES = ("float32", "int8", "uint8")


def _backend_rules(processor: str) -> Any:
    """The quantization rules of a processor's delegate (None: TFLite's defaults)."""
    if processor == "dsp":
        from stretchc.hexagon import quantization

        return quantization
    return None


@register_pass
@dataclass(frozen=True)
class QuantizePartitions(Pass):
    """Quantizes int8 partitions from one whole-model calibration, plans conversions, guards --precision auto."""

    name = "quantize-partitions"
    summary = "int8 partitions from one calibration of the whole model; one conversion per boundary that changes dtype; auto's accuracy guard"
    hexagon_dtype: str = field(default="int8", metadata={"choices": ("int8", "uint8")})
    io_dtype: str = field(default="float32", metadata={"choices": IO_DTYPES})
    min_sqnr: float = 30.0

    def run(self, module: Module, ctx: PassContext) -> bool:
        if not module.partitions:
            raise StretchError("ir-invalid", "quantize-partitions needs partitions: run outline-partitions first")
        quantized = [p for p in module.partitions if p.precision in QUANTIZED]
        guarded = self.min_sqnr > 0 and any(p.precision != "float32" for p in module.partitions)
        if not quantized and not guarded and self.io_dtype not in QUANTIZED:
            return False
        if quantized and any(p.precision == "uint8" for p in quantized):
            raise StretchError("ir-invalid", "partitions are uint8 already: quantize-partitions ran twice")
        self._check_dsp_limits(module, ctx, quantized)
        samples, guard_feeds, source = self._inputs(module, ctx, quantized, guarded)
        from stretchc.quantize.calibrate import WholeModel
        from stretchc.whole_model import graph_inputs
        from stretchc.quantize.rewrite import Forms, splice

        console = ctx.console
        whole = None
        if samples:
            with console.step(f"calibrating the whole model (TFLite calibrator, {len(samples)} samples)"):
                whole = WholeModel(module, [graph_inputs(module, s) for s in samples])
        forms = Forms(module, whole.variant("per-channel") if whole is not None and (quantized or self.io_dtype in QUANTIZED) else None)
        report: dict[str, Any] = {"samples": len(samples), "source": source, "partitions": {}}
        if "held_out_inputs" in ctx.report:
            report["held_out"] = len(ctx.report["held_out_inputs"])
        parts: dict[str, Any] = {}
        for p in quantized:
            assert whole is not None
            with console.step(f"quantizing partition {p.name} ({p.processor}, {p.precision})"):
                q = self._quantize(module, ctx, p, whole, forms, report)
            if q is not None:
                parts[p.name] = q
        if guarded:
            self._guard(module, ctx, parts, forms, guard_feeds)
        kept = [parts[p.name] for p in module.partitions if p.name in parts and p.precision in QUANTIZED]
        for q in parts.values():
            if q not in kept:
                for n in q.nodes:
                    n.detach()
        conversions = splice(module, kept, forms, self.io_dtype)
        for p in module.partitions:
            if p.name in report["partitions"]:
                report["partitions"][p.name]["precision"] = p.precision
        report["conversions"] = conversions
        ctx.report["quantization"] = report
        return True

    # ---------------------------------------------------------------- steps

    @staticmethod
    def _check_dsp_limits(module: Module, ctx: PassContext, quantized: list[Partition]) -> None:
        from stretchc.hexagon.eligibility import MAX_PARTITIONS, MIN_NODES

        dsp = [p for p in quantized if p.processor == "dsp"]
        if len(dsp) > MAX_PARTITIONS:  # placements made after the assign-delegates hook (e.g. by the cost model)
            raise StretchError("ineligible-op", f"{len(dsp)} DSP partitions; the Hexagon delegate runs at most {MAX_PARTITIONS} (rule max-partitions)")
        for p in dsp:
            count = sum(1 for n in module.graph.nodes if n.partition == p.name and n.op.startswith("tfl."))
            if count < MIN_NODES:
                raise StretchError("ineligible-op", f"DSP partition {p.name} has {count} op(s); the Hexagon delegate needs at least {MIN_NODES} (rule min-nodes)", branch=p.name)

    def _inputs(self, module: Module, ctx: PassContext, quantized: list[Partition], guarded: bool) -> tuple[list[dict], list[dict], str]:  # type: ignore[type-arg]
        """(calibration samples, inputs the guard measures on, where the samples came from); ONNX layout."""
        from stretchc.hexagon.calibration import holdout_count, load_calibration, split_holdout
        from stretchc.quantize.guard import MIN_SQNR_RANDOM_SAMPLES, MIN_SQNR_RANDOM_SEED
        from stretchc.verify import seeded_inputs

        inputs = [(i.name, tuple(i.shape), i.dtype) for i in module.inputs]
        random_feeds = [
            seeded_inputs({"inputs": [{"name": n, "shape": list(s), "dtype": d} for n, s, d in inputs]}, MIN_SQNR_RANDOM_SEED + k)
            for k in range(MIN_SQNR_RANDOM_SAMPLES)
        ]
        calib = ctx.options.get("calib")
        if not quantized and self.io_dtype not in QUANTIZED:
            return [], random_feeds, ""  # only fp16 partitions to measure: nothing to calibrate
        if calib is None:
            what = ", ".join(f"{p.name} ({p.processor})" for p in quantized) or f"--io-dtype {self.io_dtype}"
            raise StretchError(
                "bad-calibration",
                f"int8 needs calibration data ({what}): pass --calib DIR|FILE.npy|FILE.npz (or --calib random, which costs accuracy)",
            )
        cal = load_calibration(str(calib), inputs, preprocess=ctx.options.get("preprocess", ctx.options.get("preprocessing")))
        if cal.random:
            ctx.console.warn("random-calibration", "--calib random: int8 partitions are calibrated on uniform noise; accuracy will suffer")
        samples = cal.samples
        guard_feeds = random_feeds
        if not cal.random and (guarded or "calib_holdout" in ctx.options):
            held = holdout_count(len(samples), ctx.options.get("calib_holdout"), source=cal.source)
            samples, guard_feeds = split_holdout(samples, held)
            ctx.report["held_out_inputs"] = guard_feeds
        limit = int(ctx.options.get("calib_samples") or 0)
        return (samples[:limit] if limit > 0 else samples), guard_feeds, cal.source

    def _quantize(self, module: Module, ctx: PassContext, p: Partition, whole: Any, forms: Any, report: dict[str, Any]) -> Any:
        """Partition `p`'s quantized ops, adopted into `forms`, after its delegate's rules (see step 2)."""
        from stretchc.hexagon.eligibility import describe
        from stretchc.quantize.rewrite import Quantized, adopt, partition_nodes

        rules = _backend_rules(p.processor)
        dtype = self.hexagon_dtype if rules is not None else "int8"
        weights = rules.weights(dtype) if rules is not None else "per-channel"
        nodes = partition_nodes(module, p.name, whole.variant(weights))
        if rules is not None:
            wide = rules.spreads(nodes)
            if wide and weights != "per-tensor":
                ctx.console.note(
                    "per-tensor",
                    f"partition {p.name}: {wide[0][0]} has a channel-scale spread of {wide[0][1]:.0f}x > {rules.MAX_SCALE_SPREAD:.0f}x; weights quantized per-tensor",
                )
                weights = rules.weights(dtype, per_tensor=True)
                nodes = partition_nodes(module, p.name, whole.variant(weights))
        adopt(nodes, forms, dtype, p.name)
        if rules is not None:
            if dtype == "uint8":
                rules.to_uint8(nodes, partition=p.name)
            bad = rules.violations(nodes)
            if bad:
                n, v = bad[0]
                if str(ctx.options.get("on_ineligible") or "error") == "error":
                    raise StretchError("ineligible-op", "after quantization: " + describe(n, p.name, v), branch=p.name, node=n.loc)
                for n, v in bad:
                    ctx.console.warn("ineligible-op", "after quantization: " + describe(n, p.name, v) + f"; partition {p.name} runs int8 on the CPU", branch=p.name)
                for n in nodes:
                    n.detach()
                _move(module, p, "cpu", "int8")
                report["partitions"][p.name] = {"moved_to_cpu": True}
                dtype, weights = "int8", "per-channel"
                nodes = partition_nodes(module, p.name, whole.variant(weights))
                adopt(nodes, forms, dtype, p.name)
        _move(module, p, p.processor, dtype)
        report["partitions"].setdefault(p.name, {}).update({"ops": len(nodes), "weights": weights, "dtype": dtype})
        return Quantized(p.name, nodes, dtype, weights)

    def _guard(self, module: Module, ctx: PassContext, parts: dict[str, Any], forms: Any, feeds: list[dict]) -> None:  # type: ignore[type-arg]
        """Hold the precisions to min-sqnr (see the module docstring, step 3)."""
        from stretchc.whole_model import graph_inputs
        from stretchc.quantize.guard import Evaluator, demote

        console = ctx.console
        config = {p.name: p.precision for p in module.partitions}
        # A partition whose processor runs no float and that --place put there cannot be demoted.
        pinned = {p.name for p in module.partitions if "float32" not in SUPPORTED[p.processor] and set(p.regions) & set(ctx.place)}
        candidates = [p.name for p in module.partitions if p.precision != "float32" and p.name not in pinned]
        on = "held-out calibration sample(s)" if "held_out_inputs" in ctx.report else "seeded uniform-random input(s)"
        with console.step(f"measuring accuracy against the float model (--min-sqnr {self.min_sqnr:g} dB, {len(feeds)} {on})"):
            evaluator = Evaluator(module, parts, forms, [graph_inputs(module, f) for f in feeds])
            final, sqnr, steps = demote(evaluator, config, candidates, self.min_sqnr)
        reasons = {
            s.partition: f"the worst output SQNR against the float model was {s.worst_before:.1f} dB < --min-sqnr {self.min_sqnr:g} dB ({s.worst_after:.1f} dB after)"
            for s in steps
        }
        all_float = {name: ("float32" if name in candidates else prec) for name, prec in config.items()}
        if final != all_float and ctx.target is not None and "placement_report" in ctx.report:
            mixed, flat = self._latency(module, ctx, final), self._latency(module, ctx, all_float)
            if flat < mixed - 1e-9:
                flat_sqnr = evaluator.sqnr(all_float)
                if min(flat_sqnr.values()) >= self.min_sqnr:
                    for name in candidates:
                        if final[name] != "float32":
                            reasons[name] = f"the mix the accuracy bound left ({mixed:.3f} ms) was predicted slower than all float ({flat:.3f} ms)"
                    final, sqnr = all_float, flat_sqnr
        onnx_name = {t.value: t.name for t in module.outputs}
        worst_name, worst = min(sqnr.items(), key=lambda kv: kv[1])
        demoted = [name for name in candidates if final[name] == "float32"]
        ctx.report["accuracy_guard"] = {
            "min_sqnr": self.min_sqnr,
            "inputs": len(feeds),
            "measured_on": on,
            "sqnr_db": {onnx_name.get(k, k): (round(v, 2) if v != float("inf") else None) for k, v in sorted(sqnr.items())},
            "demoted": [{"partition": name, "from": config[name], "why": reasons.get(name, "")} for name in demoted],
        }
        if worst < self.min_sqnr:
            kept = sorted(n for n, prec in final.items() if prec != "float32")
            raise StretchError(
                "verify-failed",
                f"output {onnx_name.get(worst_name, worst_name)}: SQNR {worst:.1f} dB against the float model is below --min-sqnr {self.min_sqnr:g} dB "
                "even with every partition that can run float demoted to float32"
                + (f" ({', '.join(kept)} stay quantized: --place put them on a processor that runs no float)" if kept else ""),
            )
        if "placement_report" in ctx.report and ctx.target is not None:
            self._reprice(module, ctx, final, reasons, min(sqnr.values()))
            ctx.report["placement_report"]["accuracy_guard"] = ctx.report["accuracy_guard"]
        for name in demoted:
            p = module.partition(name)
            _move(module, p, _float_processor(p), "float32")
            console.note("precision", f"--precision auto: partition {name} demoted to float32 on {p.processor}: {reasons.get(name, '')}")

    def _choices(self, module: Module, final: dict[str, str]) -> dict[str, Any]:
        from stretchc.costmodel.placement import Choice

        out = {}
        for p in module.partitions:
            proc = _float_processor(p) if final[p.name] == "float32" else p.processor
            for r in p.regions:
                out[r] = Choice(proc, final[p.name])
        return out

    def _latency(self, module: Module, ctx: PassContext, final: dict[str, str]) -> float:
        from stretchc.costmodel.placement import reprice

        return float(reprice(module, ctx.target, ctx.report["placement_report"], self._choices(module, final), {})["predicted_latency_ms"])

    def _reprice(self, module: Module, ctx: PassContext, final: dict[str, str], reasons: dict[str, str], worst: float) -> None:
        """The placement report at the final precisions, saying why each partition has its precision."""
        from stretchc.costmodel.placement import reprice

        old = {r["region"]: r for r in ctx.report["placement_report"]["regions"]}
        why: dict[str, str] = {}
        for p in module.partitions:
            for r in p.regions:
                if p.name in reasons and final[p.name] == "float32":
                    why[r] = f"auto: demoted from {p.precision} to float32: {reasons[p.name]}"
                elif final[p.name] != "float32":
                    kept = "inf" if worst == float("inf") else f"{worst:.1f}"
                    why[r] = f"{old[r]['precision_why']}; every model output keeps >= {self.min_sqnr:g} dB against the float model (worst {kept} dB)"
        new = reprice(module, ctx.target, ctx.report["placement_report"], self._choices(module, final), why)
        ctx.report["placement_report"] = new
        ctx.report["predicted_latency_ms"] = new["predicted_latency_ms"]


def _float_processor(p: Partition) -> str:
    """Where partition `p` runs float32: its processor, or the CPU when that runs no float (the DSP)."""
    return p.processor if "float32" in SUPPORTED[p.processor] else "cpu"


def _move(module: Module, p: Partition, processor: str, precision: str) -> None:
    """Partition `p` (and its nodes) now runs on `processor` at `precision`."""
    p.processor, p.precision = processor, precision
    for n in module.graph.nodes:
        if n.partition == p.name:
            n.processor, n.precision = processor, precision
