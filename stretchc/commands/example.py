"""`stretchc example -o FILE.onnx`: write the bundled example model (a 2-stage, 2- and 3-branch network)."""

from __future__ import annotations

import argparse
from pathlib import Path

from stretchc.errors import StretchError
from stretchc.examples import example_model


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("example", parents=[common], help="write the example model", description=__doc__)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.output.is_dir():
        raise StretchError("output-exists", "output path is a directory", file=str(args.output))
    tmp = args.output.with_name(f".{args.output.name}.tmp")
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(example_model().SerializeToString())
        tmp.replace(args.output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StretchError("write-failed", f"cannot write: {exc.strerror or exc}", file=str(args.output)) from None
    return 0
