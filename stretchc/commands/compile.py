"""`stretchc compile MODEL.onnx -t TARGET -o BUNDLE`: the main job."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from stretchc import api, safejson
from stretchc.analyses import AccuracyGuard, Arena, HeldOutInputs, Placement
from stretchc.backends import backends, fallback, processors
from stretchc.bundle.format import MANIFEST_JSON
from stretchc.cli import finite_float, non_negative_float
from stretchc.commands._inputs import input_files
from stretchc.compile_settings import AUTO_MIN_SQNR, EMITS, on_ineligible_choices
from stretchc.console import get_console
from stretchc.costmodel.accuracy import evidence_line
from stretchc.costmodel.placement_report import explain, write_report
from stretchc.depfile import bundle_dependencies, write_depfile
from stretchc.driver import CompileResult, check_output_file, check_outside_output, default_pipeline
from stretchc.errors import StretchError
from stretchc.frontend.validate import parse_input_shapes
from stretchc.ir import lane_name
from stretchc.passes.assign_delegates import parse_placement
from stretchc.precision import POLICIES as PRECISION_POLICIES
from stretchc.project_config import find_project_config, format_config, load_project_config, place_specs
from stretchc.resource_limits import parse_limits
from stretchc.targets import load_target
from stretchc.top1 import calib_accuracy

REPORT_MAX_BYTES = 64 << 20  # a larger file is not a placement report: it is the user's, and not read whole


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("compile", parents=[common], help="compile an ONNX model into a bundle", description=__doc__)
    p.add_argument("model", nargs="?", help="the ONNX model")
    p.add_argument("-o", "--output", help="bundle directory to write (replaced only if it is a bundle); required")
    add_pipeline_arguments(p)
    add_debug_arguments(p)
    p.add_argument("--depfile", type=Path, metavar="FILE", help="after a successful compile, write the bundle's dependencies as a Make/Ninja rule")
    p.add_argument("--print-config", action="store_true", help="print the effective settings and exit without compiling")
    p.add_argument("--report", type=Path, action="append", default=[], metavar="FILE.html|FILE.json", help="write the placement report (HTML: one self-contained file with the predicted timeline; JSON otherwise)")
    p.add_argument("--explain", action="append", default=[], metavar="REGION", help="after compiling, say why REGION (e.g. s1.b0) runs where it runs")
    p.add_argument("--verify", action="store_true", help="compare the compiled bundle with ONNX Runtime before installing it (a bundle that fails is not installed)")
    p.add_argument("--atol", type=non_negative_float, default=None, help="--verify: absolute tolerance (default 1e-4 x max|reference|, at least 1e-6)")
    p.add_argument("--rtol", type=non_negative_float, default=0.0, help="--verify: relative tolerance")
    p.set_defaults(func=run)


def add_pipeline_arguments(p: argparse.ArgumentParser) -> None:
    """The options that decide what the passes do, shared by every command that runs the pipeline on a model."""
    p.add_argument("-t", "--target", default=None, help="phone name (see `stretchc targets`) or a target YAML file (default pixel6)")
    p.add_argument("--place", action="append", default=[], metavar="REGION=PROC,...", help=f"place regions (stem, s1.b0, s1.join, head, main) on {'/'.join(processors())}")
    p.add_argument("--place-from-model", action="store_true", default=None, help="use the placement recorded in the model (stretchc build-model)")
    p.add_argument("--pipeline", help="the pass pipeline (default: see `stretchc passes`)")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,...", help="static shape for a dynamic input")
    p.add_argument("--const-input", action="append", default=[], metavar="NAME=FILE.npy", help="the value of an input, fixed at compile time (it becomes a constant; the bundle no longer takes it); a recorded dependency")
    p.add_argument("--precision", choices=PRECISION_POLICIES, default=None, help="float, int8 (every partition, needs --calib), fp16-gpu, or auto (default: the fastest precision per partition that keeps --min-sqnr; int8 only with --calib)")
    p.add_argument("--io-dtype", choices=("int8", "uint8"), default=None, help="hold every model input and output in the bundle as int8/uint8 with the calibration's scale (the runtime converts)")
    p.add_argument("--calib", metavar="PATH", help="calibration data for int8 partitions: a folder of images, a .npy or a .npz (at most 500 samples are used, evenly spaced); a recorded dependency")
    p.add_argument("--preprocess", metavar="size=S,mean=M:M:M,std=S:S:S", help="image calibration preprocessing, for a --calib folder only (scaled to [0,1] first, then (x-mean)/std, NCHW; mean and std: 1 value or one per channel)")
    p.add_argument(
        "--on-ineligible", choices=on_ineligible_choices(), default=None,
        help=f"an op the processor --place put it on cannot run (strict rules: the Hexagon DSP): fail (default) or move its region to the {fallback().label}",
    )
    for b in backends():  # each backend's own options
        for o in b.options:
            p.add_argument(o.flag, choices=o.choices, default=None, dest=_option_dest(b.name, o.key), help=o.help)
    p.add_argument("--min-sqnr", type=finite_float, default=None, metavar="DB", help="--precision auto: the accuracy bound (default 30); any policy: fail (verify-failed) when an output's SQNR vs the ONNX model on held-out inputs is below DB")
    p.add_argument("--calib-holdout", type=int, default=None, metavar="N", help="--min-sqnr or --precision auto with a --calib data set: hold out its last N samples (default 20%%, at least 1) to measure on; the rest calibrate")
    p.add_argument("--limit", action="append", default=[], metavar="KEY=N", help="raise or lower a resource limit checked before lowering: input-elements, tensor-bytes, arena-bytes, memory-bytes (N may end in K, M, G, T)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the lowering cache ($STRETCHC_CACHE_DIR, ~/.cache/stretchc)")
    p.add_argument("--config", metavar="FILE", help="project defaults (default: ./stretchc.toml if present); the command line overrides them")
    p.add_argument("--emit", action="append", default=[], choices=EMITS, help="also write nnstretch.tflite: one model tagged for the NN-Stretch prototype runtime")


def _option_dest(backend: str, key: str) -> str:
    return f"backend_{backend}_{key}"


def add_debug_arguments(p: argparse.ArgumentParser) -> None:
    """Pass-debugging instruments: replayable dumps, IR printing, pass timing (compile and opt)."""
    p.add_argument("--dump-dir", type=Path, help="write replayable IR dumps (00-input.ir, NN-after-<pass>.ir, constants/) here; compile first writes the ONNX model before and after each canonicalizing rewrite (onnx-NN-*.onnx)")
    p.add_argument("--print-ir-after", action="append", default=[], metavar="PASS", help="print the IR after this pass")
    p.add_argument("--print-ir-before", action="append", default=[], metavar="PASS", help="print the IR before this pass")
    p.add_argument("--print-ir-after-change", action="store_true", help="print the IR after every pass that changed it")
    p.add_argument("--time-passes", action="store_true", default=None, help="print the time of every pass")


def debug_options(args: argparse.Namespace, time_passes: bool) -> api.Debug:
    """The debugging arguments (`add_debug_arguments`) as the API's instruments; `time_passes` is the effective
    --time-passes (compile reads stretchc.toml's too)."""
    return api.Debug(
        dump_dir=args.dump_dir,
        print_ir_after=frozenset(args.print_ir_after),
        print_ir_before=frozenset(args.print_ir_before),
        print_ir_after_change=args.print_ir_after_change,
        time_passes=time_passes,
    )


def _is_depfile(path: Path) -> bool:
    """Whether `path` is a depfile a compile wrote (stretchc/depfile.py): its first line is the rule's target, a
    bundle's manifest.json."""
    with path.open("rb") as f:
        first = f.readline(1 << 16)
    return re.fullmatch(rb".*/" + re.escape(MANIFEST_JSON.encode()) + rb":( \\)?\n", first) is not None


def _is_report(path: Path) -> bool:
    """Whether `path` is a placement report a compile wrote (stretchc/costmodel/placement_report.py): HTML under
    the title compile gives it, or a JSON object with the report's keys."""
    if path.suffix.lower() in (".html", ".htm"):  # as write_report decides the format
        with path.open("rb") as f:
            return b"<title>stretchc placement report" in f.read(1 << 12)
    if path.stat().st_size > REPORT_MAX_BYTES:
        return False
    report = safejson.loads(path.read_bytes(), max_depth=64)
    return isinstance(report, dict) and {"predicted_latency_ms", "placement", "regions"} <= report.keys()


def _write_depfile(args: argparse.Namespace, options: api.Options, config_path: Path | None) -> None:
    calib = options.calib
    deps = bundle_dependencies(
        Path(args.model),
        target_path=load_target(options.target).path,
        config_path=config_path,
        calib=Path(calib) if calib and calib != "random" else None,
        extra=[Path(str(f)) for f in options.const_inputs.values()],  # files: the command line gives no arrays
    )
    try:
        write_depfile(args.depfile, Path(args.output), deps)
    except OSError as exc:
        raise StretchError("write-failed", f"cannot write the depfile: {exc.strerror or exc}", file=str(args.depfile)) from None


def placement_table(result: CompileResult) -> str:
    """Where each partition runs: the short table printed after every compile."""
    m = result.manifest
    placed = result.analyses.get(Placement)
    overrides = set(placed.overrides if placed is not None else [])
    rows = [f"bundle {result.output} for {m['target']['name']} ({m['target']['description']})"]
    pr = (placed.report if placed is not None else None) or {}
    part_ms = {p["name"]: p["predicted_ms"] for p in pr.get("partitions", [])}
    rows.append(f"  {'partition':<24} {'processor':<9} {'precision':<9} {'delegate':<8} {'pred. ms':>9}  regions")
    lane = {n: lane_name(la["processor"], la["index"]) for la in m["schedule"]["lanes"] for n in la["partitions"]}  # cpu, cpu.1, ...
    for p in m["partitions"]:
        mark = " (--place)" if set(p["regions"]) & overrides else ""
        ms = part_ms.get(p["name"])
        ms_text = f"{ms:9.3f}" if ms is not None else f"{'-':>9}"
        rows.append(f"  {p['name']:<24} {lane[p['name']]:<9} {p['precision']:<9} {p['delegate']:<8} {ms_text}  {', '.join(p['regions'])}{mark}")
    steps = " -> ".join("[" + " | ".join(s) + "]" for s in m["schedule"]["steps"])
    rows.append(f"  schedule: {steps}")
    arena = result.analyses.get(Arena)
    if arena is not None:
        share = f", {100 * arena.bytes / arena.float_bytes:.0f}% of the {arena.float_bytes:,} bytes all float32" if arena.float_bytes else ""
        rows.append(f"  arena: {arena.bytes:,} bytes{share}")
    guard = result.analyses.get(AccuracyGuard)
    if guard is not None:
        worst = min((v for v in guard.sqnr_db.values() if v is not None), default=None)
        demoted = ", ".join(d["partition"] for d in guard.demoted)
        rejected = ", ".join(f"{d['processor']} {d['precision']} ({d['partition']})" for d in guard.rejected)
        rows.append(
            f"  accuracy: worst output SQNR {'inf' if worst is None else f'{worst:.1f}'} dB >= {guard.min_sqnr:g} dB on {guard.inputs} {guard.measured_on}"
            + (f"; demoted to float32: {demoted}" if demoted else "")
            + (f"; rejected, then decided again without: {rejected}" if rejected else "")
        )
    if pr:
        best = pr.get("best_single")
        speed = pr.get("speedup_over_best_single")
        extra = f"; best single processor {best['processor']} {best['ms']:.3f} ms, speedup {speed:.2f}x" if best and speed else ""
        rows.append(f"  predicted latency: {pr['predicted_latency_ms']:.3f} ms ({pr.get('policy', '')}){extra}")
        if len(m["partitions"]) == 1 and len(pr.get("regions", [])) > 1 and pr.get("policy") == "critical-path" and not overrides:
            p = m["partitions"][0]
            rows.append(f"  stretching does not pay for this model on this phone: one partition on the {p['processor']}, predicted {pr['predicted_latency_ms']:.3f} ms")
        if pr.get("cost_model"):
            rows.append(f"  {evidence_line(pr['cost_model'], sorted({(p['processor'], p['precision']) for p in m['partitions']}))}")
    return "\n".join(rows)


def _settings(args: argparse.Namespace) -> tuple[dict[str, Any], Path | None]:
    """The effective compile settings (what `--print-config` prints): the command line over stretchc.toml over
    the defaults."""
    config_path = find_project_config(args.config)
    cfg = load_project_config(config_path).values
    place: dict[str, str] = {}
    for source, items in (("config", place_specs(cfg.get("place"))), ("cli", args.place)):
        seen: set[str] = set()
        for item in items:
            for region, proc in parse_placement(item).items():
                if region in seen:
                    raise StretchError("bad-placement", f"--place names region {region!r} twice", file=str(config_path) if source == "config" else None)
                seen.add(region)
                place[region] = proc
    input_shapes = {k: list(v) for k, v in cfg.get("input-shape", {}).items()}
    input_shapes.update(parse_input_shapes(args.input_shape))
    calib = args.calib if args.calib is not None else cfg.get("calib")
    precision = args.precision or cfg.get("precision") or "auto"
    settings: dict[str, Any] = {
        "target": args.target or cfg.get("target") or "pixel6",
        "pipeline": args.pipeline or cfg.get("pipeline"),
        "precision": precision,
        "min-sqnr": args.min_sqnr if args.min_sqnr is not None else (AUTO_MIN_SQNR if precision == "auto" else None),
        "io-dtype": args.io_dtype or cfg.get("io-dtype"),
        "place": place,
        "place-from-model": bool(args.place_from_model if args.place_from_model is not None else cfg.get("place-from-model", False)),
        "input-shape": input_shapes,
        "calib": str(calib) if calib else None,
        "preprocessing": cfg.get("preprocessing"),
        "cache": False if args.no_cache else bool(cfg.get("cache", True)),
        "time-passes": bool(args.time_passes if args.time_passes is not None else cfg.get("time-passes", False)),
    }
    for b in backends():
        for o in b.options:
            given = getattr(args, _option_dest(b.name, o.key))
            settings[o.config_key] = given if given is not None else cfg.get(o.config_key)
    return settings, config_path


def compile_request(args: argparse.Namespace) -> tuple[api.Options, dict[str, Any], Path | None]:
    """The API's options of the pipeline arguments (`add_pipeline_arguments`) over stretchc.toml, parsed but not yet
    checked (`stretchc.api.driver_options` checks them); with the effective settings and the configuration file used."""
    settings, config_path = _settings(args)
    options = api.Options(
        target=settings["target"],
        precision=settings["precision"],
        calib=settings["calib"],
        preprocess=args.preprocess or settings["preprocessing"],
        config=config_path,
        min_sqnr=args.min_sqnr,
        calib_holdout=args.calib_holdout,
        io_dtype=settings["io-dtype"] or "float32",
        place=settings["place"],
        place_from_model=settings["place-from-model"],
        input_shapes=settings["input-shape"],
        const_inputs=input_files(args.const_input, "--const-input"),
        pipeline=settings["pipeline"],
        on_ineligible=args.on_ineligible or "error",
        backend_options={
            b.name: {o.key: settings[o.config_key] for o in b.options if settings[o.config_key] is not None}
            for b in backends()
            if any(settings[o.config_key] is not None for o in b.options)
        },
        emit=tuple(args.emit),
        limits=parse_limits(args.limit),
        cache=settings["cache"],
    )
    return options, settings, config_path


def run(args: argparse.Namespace) -> int:
    if args.print_config:
        settings, config_path = _settings(args)
        shown = dict(settings)
        shown["pipeline"] = settings["pipeline"] or default_pipeline()  # what would run
        shown["config"] = str(config_path) if config_path else None
        get_console().out(format_config(shown).rstrip("\n"))
        return 0
    if not args.model:
        raise StretchError("usage", "stretchc compile: the following arguments are required: model")
    if not args.output:
        raise StretchError("usage", "stretchc compile: the following arguments are required: -o/--output")
    options, settings, config_path = compile_request(args)
    side_files = [("--depfile", args.depfile, _is_depfile, "a depfile")] if args.depfile is not None else []
    side_files += [("--report", path, _is_report, "a placement report") for path in args.report]
    for flag, path, ours, what in side_files:
        check_outside_output(Path(path), Path(args.output), flag)
        check_output_file(Path(path), ours=ours, what=what)
    debug = debug_options(args, settings["time-passes"])
    console = get_console()
    bundle = api.compile(args.model, args.output, options, debug=debug, console=console, verify=args.verify, atol=args.atol, rtol=args.rtol)
    result = bundle.compile_result
    if args.depfile is not None:
        _write_depfile(args, options, config_path)
    console.out(placement_table(result))
    if args.report or args.explain:
        placed = result.analyses.get(Placement)
        pr = placed.report if placed is not None else None
        if pr is None:
            raise StretchError("bad-pipeline", "--report/--explain: the pipeline made no placement report (it needs assign-delegates and a target)")
        if args.report and settings["calib"]:  # labelled --calib data: top-1 accuracy in the report
            held = result.analyses.get(HeldOutInputs)
            accuracy = calib_accuracy(Path(args.output), Path(args.model), settings["calib"], held_out=len(held.feeds) if held is not None else 0)
            if accuracy is not None:
                pr = {**pr, "accuracy": accuracy.as_dict()}
                console.out("\n".join(accuracy.lines()))
        for path in args.report:
            try:
                write_report(pr, path, title=f"stretchc placement report: {Path(args.model).name} on {pr['target']}")
            except OSError as exc:
                raise StretchError("write-failed", f"cannot write the report: {exc.strerror or exc}", file=str(path)) from None
        for region in args.explain:
            console.out(explain(pr, region))
    if bundle.verification is not None:  # --verify's report, measured on the staged bundle, presented after the placement
        bundle.verification.present(console)
    return 0
