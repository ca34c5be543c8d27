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
import tempfile
from pathlib import Path

import numpy as np

from stretchc.api import driver_options
from stretchc.cli import non_negative_float
from stretchc.bisect import NumericBisect, Row
from stretchc.commands._inputs import read_inputs
from stretchc.commands.compile import add_debug_arguments, add_pipeline_arguments, compile_request, debug_options
from stretchc.console import get_console
from stretchc.driver import LoadedModel, check_output_dir, default_pipeline, instruments_for, load_module, make_context
from stretchc.dumps import DumpIR, announce_failure, copy_dump, replay_command
from stretchc.errors import StretchError
from stretchc.passmanager import PassManager, check_requirements, parse_pipeline
from stretchc.targets import load_target
from stretchc.verify import seeded_feed


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


def _reference(loaded: LoadedModel, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """ONNX Runtime's outputs for every feed, by output name."""
    import onnxruntime as ort

    expected = {i.name: i for i in loaded.module.inputs}
    for feed in feeds:
        for name, info in expected.items():
            arr = feed.get(name)
            if arr is None or tuple(arr.shape) != tuple(info.shape) or arr.dtype != np.dtype(info.dtype):
                raise StretchError("bad-input-data", f"input {name!r} needs a {info.dtype} array of shape {list(info.shape)}")
        if set(feed) - set(expected):
            raise StretchError("bad-input-data", f"unknown input {sorted(set(feed) - set(expected))[0]!r}; the model's inputs are {', '.join(expected)}")
    session = ort.InferenceSession(loaded.model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(None, feed))) for feed in feeds]


def _write_dumps(bad: Row, dumps: DumpIR, dest: Path, copy: bool) -> list[str]:
    """Put the dumps before and after the bad row in `dest` (copied from the private run, or already there)."""
    lines = []
    for index, what in ((bad.index - 1, "its input"), (bad.index, "its output")):
        if index in dumps.after:
            lines.append(f"{what}: {copy_dump(dumps.after[index], dest) if copy else dumps.after[index]}")
    if bad.index > 0:
        before = dest / dumps.after[bad.index - 1].name
        lines.append(f"replay it: {replay_command(str(before), None, pipeline=dumps.passes[bad.index - 1].spelled())}")
    return lines


def run(args: argparse.Namespace) -> int:
    console = get_console()
    model_path = Path(args.model)
    request, settings, _ = compile_request(args)
    options = driver_options(request, model_path, debug_options(args, settings["time-passes"]))
    if args.samples < 1:
        raise StretchError("usage", "--samples must be at least 1")
    dest = options.dump_dir if options.dump_dir is not None else Path(f"{model_path.stem}.bisect")
    check_output_dir(dest)
    target = load_target(options.target)
    passes = parse_pipeline(options.pipeline or default_pipeline())
    check_requirements(passes)  # the pass manager checks it too; here it comes before the lowering
    loaded = load_module(model_path, options)
    feeds = [read_inputs(args.input)] if args.input else [
        seeded_feed(((i.name, i.shape, i.dtype) for i in loaded.module.inputs), args.seed + k) for k in range(args.samples)
    ]
    bisect = NumericBisect(feeds, _reference(loaded, feeds), atol=args.atol, rtol=args.rtol, min_sqnr=args.min_sqnr)
    with tempfile.TemporaryDirectory(prefix="stretchc-bisect-") as private:
        options.dump_dir = dest if args.dump_dir is not None else Path(private)
        instruments = instruments_for(options, passes)
        dumps = next(i for i in instruments if isinstance(i, DumpIR))
        dumps.announce = args.dump_dir is not None  # a private dump folder goes away: announce the copy instead
        ctx = make_context(target, loaded, passes, options, output_dir=None)
        try:
            PassManager(passes, [*instruments, bisect]).run(loaded.module, ctx)
        except Exception:  # a failing pass: the rows so far, and its reproducer where it stays
            console.out(bisect.table())
            if dumps.failure_dump is not None and dumps.failed is not None and args.dump_dir is None:
                announce_failure(copy_dump(dumps.failure_dump, dest), dumps.failed, console)
            raise
        bad = bisect.first_bad()
        notes = _write_dumps(bad, dumps, dest, copy=args.dump_dir is None) if bad is not None else []
    console.out(bisect.table(notes=notes))
    if bad is not None:
        where = "the lowering" if bad.index == 0 else f"pass {bad.label}"
        worst = bad.error or next(c.failure() for c in bad.checks if not c.ok)
        raise StretchError("verify-failed", f"{where} is the first out of tolerance ({worst})", file=str(model_path))
    return 0
