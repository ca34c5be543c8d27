"""`stretchc opt DUMP.ir [--pipeline=PASSES] [-o OUT.ir] [--bundle DIR]`: run passes on an IR dump.

The dump's reproducer gives the context the passes ran in (target, placement, options, analyses; data
sources such as --calib are read again and checked against their digests) and, when `--pipeline` is not
given, the rest of the pipeline. The IR is verified after every pass, as in `compile`. The result is
printed, or written to OUT.ir as a replayable dump (constants in OUT's folder, `constants/`); a pipeline
with emit-bundle writes a bundle to `--bundle DIR`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from pathlib import Path

from stretchc.commands.compile import add_debug_arguments, debug_options
from stretchc.console import get_console
from stretchc.driver import CompileOptions, check_output_file, check_output_path, check_outside_output, instruments_for, staged_bundle, validate_staged
from stretchc.dumps import CONSTANTS, dump_text, replay_command, snapshot
from stretchc.errors import StretchError
from stretchc.irtext import HEADER, ConstantStore, has_missing_constants, parse_module, print_module
from stretchc.passmanager import PassManager, parse_pipeline
from stretchc.reproducer import Recorder, Reproducer, replay_context


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("opt", parents=[common], help="run passes on an IR dump (replay, reduce, reproduce)", description=__doc__)
    p.add_argument("dump", help="an IR file, e.g. a --dump-dir dump")
    p.add_argument("--pipeline", help="the passes to run (default: the rest of the pipeline the dump records)")
    p.add_argument("-o", "--output", type=Path, metavar="OUT.ir", help="write the result here as a replayable dump instead of printing it")
    p.add_argument("--bundle", type=Path, metavar="DIR", help="the bundle directory emit-bundle writes (the pipeline must contain emit-bundle)")
    p.add_argument("--constants", type=Path, metavar="DIR", help="the dump's constant store (default: constants/ next to the dump)")
    p.add_argument("-t", "--target", default=None, help="run for this target instead of the one the dump records")
    p.add_argument("--data", action="append", default=[], metavar="OPTION=PATH", help="where a data source the dump records (e.g. calib) is now; its digest is still checked")
    add_debug_arguments(p)
    p.set_defaults(func=run)


def _data_locations(specs: list[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for spec in specs:
        key, eq, path = spec.partition("=")
        if not eq or not key or not path:
            raise StretchError("usage", f"--data {spec!r}: expected OPTION=PATH")
        found[key.replace("-", "_")] = Path(path)
    return found


def _is_ir(path: Path) -> bool:
    """Whether `path` is an IR file stretchc wrote (a dump, or an earlier `opt -o`): its first line is the IR header."""
    with path.open("rb") as f:
        return f.readline(len(HEADER) + 2).rstrip(b"\n") == HEADER.encode()


def run(args: argparse.Namespace) -> int:
    console = get_console()
    dump = Path(args.dump)
    try:
        text = dump.read_text()
    except FileNotFoundError:
        raise StretchError("file-not-found", "IR file does not exist", file=str(dump)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StretchError("bad-ir", f"cannot read the IR file: {exc}", file=str(dump)) from None
    rep = Reproducer.from_text(text, file=str(dump))
    pipeline = args.pipeline if args.pipeline is not None else (rep.remaining if rep is not None else "")
    if not pipeline:
        raise StretchError("usage", "stretchc opt: give --pipeline (the dump records no pipeline left to run)")
    passes = parse_pipeline(pipeline)
    debug = debug_options(args, bool(args.time_passes))
    debug.check()
    if args.bundle is not None:
        if "emit-bundle" not in [p.name for p in passes]:
            raise StretchError("usage", "--bundle: the pipeline has no emit-bundle to write it")
        check_output_path(args.bundle)
        for flag, path in (("--dump-dir", args.dump_dir), ("-o", args.output)):
            if path is not None:
                check_outside_output(path, args.bundle, flag)
    if args.output is not None:
        if args.output.resolve() == dump.resolve():
            raise StretchError("usage", "-o is the dump being replayed; choose another -o", file=str(args.output))
        check_output_file(args.output, ours=_is_ir, what="an IR file")
    constants = args.constants or dump.parent / CONSTANTS
    module = parse_module(text, file=str(dump), constants=constants if constants.is_dir() else None)
    if has_missing_constants(module):
        if args.bundle is not None:
            raise StretchError("bad-ir", f"the dump's constants are not in {constants} (give --constants DIR); a bundle without them would compute garbage", file=str(dump))
        console.warn("no-constants", f"no constant store at {constants}: large constants read as zeros (fine for structure, not for numbers)", file=str(dump))
    if rep is not None and rep.failure is not None:
        console.note("reproducer", f"the dump is the input of pass {rep.failure['pass']}, which failed with error[{rep.failure['code']}]: {rep.failure['message']}", file=str(dump))
    prefix = parse_pipeline(rep.done) if rep is not None and rep.done else []
    store = ConstantStore(constants)
    options = CompileOptions(**dataclasses.asdict(debug))  # the instruments are all a replay takes of the options
    manager = PassManager(passes, instruments_for(options, passes, prefix=prefix))
    staging = staged_bundle(args.bundle) if args.bundle is not None else contextlib.nullcontext(None)
    with staging as output_dir:
        ctx = replay_context(rep, store, passes=passes, console=console, target=args.target, data=_data_locations(args.data), output_dir=output_dir)
        manager.run(module, ctx)
        if output_dir is not None:
            validate_staged(output_dir)  # as compile: an invalid bundle is never installed
    if args.output is not None:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            out_store = ConstantStore(args.output.parent / CONSTANTS)
            body, out_rep = snapshot(module, ctx, Recorder(out_store), done=prefix + passes, remaining=[])
            tmp = args.output.with_name(f".{args.output.name}.tmp")
            tmp.write_text(dump_text(body, out_rep, [f"written by {replay_command(dump.name, None, pipeline=pipeline)}"]))
            tmp.replace(args.output)
        except OSError as exc:
            raise StretchError("write-failed", f"cannot write the IR: {exc.strerror or exc}", file=str(args.output)) from None
    elif args.bundle is None:
        console.out(print_module(module))
    if args.bundle is not None:
        console.out(f"bundle {args.bundle} written")
    return 0
