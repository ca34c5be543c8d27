"""`stretchc passes`: every pass with its options and the default pipeline."""

from __future__ import annotations

import argparse

from stretchc import api
from stretchc.console import get_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("passes", parents=[common], help="list the passes and their options", description=__doc__)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for info in api.list_passes():
        rows.append(f"{info.name}: {info.summary}")
        for option, kind, default, choices in info.options:
            extra = f" (one of {', '.join(choices)})" if choices else ""
            rows.append(f"    {option}: {kind} = {default}{extra}")
    rows.append(f"default pipeline: {api.default_pipeline()}")
    get_console().out("\n".join(rows))
    return 0
