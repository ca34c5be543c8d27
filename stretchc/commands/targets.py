"""`stretchc targets [show NAME]`: the phones stretchc knows, and which backends (processors) each has.

`list` (the default): one line per phone with the processors its bundles can use. `show NAME`: the target file,
then every backend: what it is on that phone, or why the phone cannot use it.
"""

from __future__ import annotations

import argparse

import yaml

from stretchc.api import TargetInfo, get_target, list_targets
from stretchc.console import get_console
from stretchc.errors import StretchError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("targets", parents=[common], help="list known targets and their backends, or show one", description=__doc__)
    p.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    p.add_argument("name", nargs="?", help="with show: a target name or target file")
    p.set_defaults(func=run)


def backend_lines(t: TargetInfo) -> list[str]:
    """One line per backend: what it is on `t`, or why `t` cannot use it."""
    return [
        f"  {b.name:<4} {b.delegate:<11} " + (f"yes: {b.description}" if b.unavailable is None else f"no: {t.name} {b.unavailable}")
        for b in t.backends
    ]


def run(args: argparse.Namespace) -> int:
    console = get_console()
    if args.action == "show":
        if not args.name:
            raise StretchError("usage", "stretchc targets show NAME: give a target name or file")
        t = get_target(args.name)
        console.out(yaml.safe_dump(dict(t.data), sort_keys=False, width=120).rstrip("\n"))
        console.out("# backends (processor, delegate: what it is here, or why not)")
        console.out("\n".join(f"#{line}" for line in backend_lines(t)))
        return 0
    console.out(f"{'target':<12} {'backends':<18} description")
    for t in list_targets():
        console.out(f"{t.name:<12} {', '.join(t.processors):<18} {t.description}")
    return 0
