"""`stretchc explain BUNDLE REGION`: why a region (branch, stem, join, head) of a bundle runs where it runs.

Checks the bundle as every command that reads one does (`stretchc.bundle.validate`), then reads its
`report.json` (written by emit-bundle from the placement report; `stretchc.Bundle.explain`): the processor and the
reason (override, the cost model's choice, or the target limit that moved it), the precision and why, the
predicted time, and each alternative processor with its predicted time at each precision it may take, or the
eligibility rule that excluded it.
"""

from __future__ import annotations

import argparse

from stretchc.api import Bundle
from stretchc.console import get_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("explain", parents=[common], help="say why a branch of a bundle runs where it runs", description=__doc__)
    p.add_argument("bundle", help="a bundle directory written by stretchc compile")
    p.add_argument("region", nargs="?", help="a region (s1.b0, stem, s1.join, head, main); all regions if omitted")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = get_console()
    console.out(Bundle(args.bundle, console=console).explain(args.region))
    return 0
