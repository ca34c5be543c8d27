"""`stretchc opt DUMP.ir [--pipeline=PASSES] [-o OUT.ir] [--bundle DIR]`: run passes on an IR dump.

The dump's reproducer gives the context the passes ran in (target, placement, options, analyses; data
sources such as --calib are read again and checked against their digests) and, when `--pipeline` is not
given, the rest of the pipeline. The IR is verified after every pass, as in `compile`. The result is
printed, or written to OUT.ir as a replayable dump (constants in OUT's folder, `constants/`); a pipeline
with emit-bundle writes a bundle to `--bundle DIR`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stretchc import api
from stretchc.commands.compile import add_debug_arguments, debug_options
from stretchc.console import get_console
from stretchc.errors import StretchError


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
        found[key] = Path(path)
    return found


def run(args: argparse.Namespace) -> int:
    console = get_console()
    replayed = api.opt(
        args.dump, pipeline=args.pipeline, output=args.output, bundle=args.bundle, constants=args.constants, target=args.target,
        data=_data_locations(args.data), debug=debug_options(args, bool(args.time_passes)), console=console,
    )
    if replayed.bundle is not None:
        console.out(f"bundle {replayed.bundle} written")
    elif replayed.output is None:
        console.out(replayed.ir())
    return 0
