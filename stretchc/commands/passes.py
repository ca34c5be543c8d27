"""`stretchc passes`: every pass with its options and the default pipeline."""

from __future__ import annotations

import argparse
import dataclasses

from stretchc.console import get_console
from stretchc.driver import default_pipeline
from stretchc.passmanager import registry


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("passes", parents=[common], help="list the passes and their options", description=__doc__)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for name, cls in registry().items():
        rows.append(f"{name}: {cls.summary}")
        for f in dataclasses.fields(cls):
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            choices = f.metadata.get("choices")
            extra = f" (one of {', '.join(choices)})" if choices else ""
            rows.append(f"    {f.name.replace('_', '-')}: {kind} = {f.default}{extra}")
    rows.append(f"default pipeline: {default_pipeline()}")
    get_console().out("\n".join(rows))
    return 0
