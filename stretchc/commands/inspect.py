"""`stretchc inspect BUNDLE`: partitions (processor, precision), sync points (dtype, scale, conversions) and the
buffer plan, readably (`stretchc.Bundle.describe`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from stretchc.api import Bundle
from stretchc.console import get_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("inspect", parents=[common], help="show what a bundle contains", description=__doc__)
    p.add_argument("bundle", type=Path)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = get_console()
    console.out(Bundle(args.bundle, console=console).describe())
    return 0
