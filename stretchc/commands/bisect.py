"""`stretchc bisect MODEL.onnx -t TARGET [compile options]`: the first pass whose output leaves tolerance.

Lowers the model once (through the lowering cache), runs the pipeline the same compile would run, and after
every pass runs the whole module as one TFLite model against ONNX Runtime on the same inputs; prints a
table pass by pass (see stretchc/bisect.py). For the first row out of tolerance, the dumps before and after
it are written (to --dump-dir, which then holds every dump, or to MODEL.bisect/), with the `stretchc opt`
command that replays that pass. --min-sqnr is the criterion of reduced-precision rows. Exit status 5
(verify-failed) when a row is out of tolerance.
"""

from __future__ import annotations

import argparse

from stretchc import api
from stretchc.cli import non_negative_float
from stretchc.commands._inputs import read_inputs
from stretchc.commands.compile import add_debug_arguments, add_pipeline_arguments, compile_request, debug_options
from stretchc.console import get_console
from stretchc.errors import StretchError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bisect", parents=[common], help="find the first pass whose output leaves tolerance", description=__doc__)
    p.add_argument("model", help="the ONNX model")
    add_pipeline_arguments(p)
    add_debug_arguments(p)
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy", help="inputs in the ONNX layout (default: seeded random)")
    p.add_argument("--samples", type=int, default=3, help="number of seeded random inputs (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--atol", type=non_negative_float, default=None, help="float rows: absolute tolerance (default 1e-4 x max|reference|, at least 1e-6)")
    p.add_argument("--rtol", type=non_negative_float, default=0.0, help="float rows: relative tolerance, times max|reference|")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = get_console()
    request, settings, _ = compile_request(args)
    found = api.bisect_passes(
        args.model, request, inputs=read_inputs(args.input) if args.input else None, samples=args.samples, seed=args.seed, atol=args.atol,
        rtol=args.rtol, debug=debug_options(args, settings["time-passes"]), console=console,
    )
    console.out(found.table())
    if found.failure is not None:
        raise found.failure
    if found.first_bad is not None:
        bad = found.first_bad
        where = "the lowering" if bad.index == 0 else f"pass {bad.label}"
        worst = bad.error or next(c.failure() for c in bad.checks if not c.ok)
        raise StretchError("verify-failed", f"{where} is the first out of tolerance ({worst})", file=str(args.model))
    return 0
