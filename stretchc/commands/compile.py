"""`stretchc compile MODEL.onnx -t TARGET -o BUNDLE`: the main job."""

from __future__ import annotations

import argparse
from pathlib import Path

from stretchc.console import get_console
from stretchc.driver import CompileOptions, CompileResult, compile_model
from stretchc.errors import StretchError
from stretchc.frontend.validate import parse_input_shapes
from stretchc.passes.assign_delegates import parse_placement
from stretchc.passmanager import registry


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("compile", parents=[common], help="compile an ONNX model into a bundle", description=__doc__)
    p.add_argument("model", help="the ONNX model")
    p.add_argument("-t", "--target", default="pixel6", help="phone name (see `stretchc targets`) or a target YAML file")
    p.add_argument("-o", "--output", required=True, help="bundle directory to write (replaced only if it is a bundle)")
    p.add_argument("--place", action="append", default=[], metavar="REGION=PROC,...", help="place regions (stem, s1.b0, s1.join, head, main) on cpu/gpu/dsp")
    p.add_argument("--place-from-model", action="store_true", help="use the placement recorded in the model (stretchc build-model)")
    p.add_argument("--pipeline", help="the pass pipeline (default: see `stretchc passes`)")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,...", help="static shape for a dynamic input")
    p.add_argument("--dump-dir", type=Path, help="write numbered IR dumps (00-input.ir, NN-after-<pass>.ir) here")
    p.add_argument("--print-ir-after", action="append", default=[], metavar="PASS", help="print the IR after this pass")
    p.add_argument("--time-passes", action="store_true", help="print the time of every pass")
    p.add_argument("--verify", action="store_true", help="after compiling, compare the bundle with ONNX Runtime")
    p.add_argument("--atol", type=float, default=None, help="--verify: absolute tolerance (default 1e-4 x max|reference|)")
    p.add_argument("--rtol", type=float, default=0.0, help="--verify: relative tolerance")
    p.set_defaults(func=run)


def placement_table(result: CompileResult) -> str:
    """Where each partition runs: the short table printed after every compile."""
    m = result.manifest
    overrides = set(result.report.get("overrides", []))
    rows = [f"bundle {result.output} for {m['target']['name']} ({m['target']['description']})"]
    rows.append(f"  {'partition':<24} {'processor':<9} {'delegate':<8} regions")
    for p in m["partitions"]:
        mark = " (--place)" if set(p["regions"]) & overrides else ""
        rows.append(f"  {p['name']:<24} {p['processor']:<9} {p['delegate']:<8} {', '.join(p['regions'])}{mark}")
    steps = " -> ".join("[" + " | ".join(s) + "]" for s in m["schedule"]["steps"])
    rows.append(f"  schedule: {steps}")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    known = registry()
    for name in args.print_ir_after:
        if name not in known:
            raise StretchError("unknown-pass", f"--print-ir-after names unknown pass {name!r}; known passes: {', '.join(known)}")
    place: dict[str, str] = {}
    for item in args.place:
        for region, proc in parse_placement(item).items():
            if region in place:
                raise StretchError("bad-placement", f"--place names region {region!r} twice")
            place[region] = proc
    options = CompileOptions(
        target=args.target,
        pipeline=args.pipeline,
        place=place,
        place_from_model=args.place_from_model,
        input_shapes=parse_input_shapes(args.input_shape),
        dump_dir=args.dump_dir,
        print_ir_after=frozenset(args.print_ir_after),
        time_passes=args.time_passes,
    )
    result = compile_model(args.model, args.output, options)
    console = get_console()
    console.out(placement_table(result))
    if args.verify:
        from stretchc.verify import verify_bundle

        report = verify_bundle(Path(args.output), Path(args.model), atol=args.atol, rtol=args.rtol)
        console.out(report.table())
        report.raise_if_failed()
    return 0
