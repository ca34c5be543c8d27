"""`stretchc targets [show NAME]`: the phones stretchc knows."""

from __future__ import annotations

import argparse

import yaml

from stretchc.console import get_console
from stretchc.targets import known_targets, load_target


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("targets", parents=[common], help="list known targets, or show one", description=__doc__)
    p.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    p.add_argument("name", nargs="?", help="with show: a target name or target file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = get_console()
    if args.action == "show":
        if not args.name:
            from stretchc.errors import StretchError

            raise StretchError("usage", "stretchc targets show NAME: give a target name or file")
        t = load_target(args.name)
        console.out(yaml.safe_dump(t.raw, sort_keys=False, width=120))
        return 0
    for name in known_targets():
        t = load_target(name)
        console.out(f"{name:<12} {', '.join(t.processors):<14} {t.description}")
    return 0
