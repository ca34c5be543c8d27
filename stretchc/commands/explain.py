"""`stretchc explain BUNDLE REGION`: why a region (branch, stem, join, head) of a bundle runs where it runs.

Reads the bundle's `report.json` (written by emit-bundle from the placement report): the processor, the
reason (override, or the cost model's choice), the predicted time, and each alternative processor with its
predicted time or the eligibility rule that excluded it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stretchc.console import get_console
from stretchc.errors import StretchError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("explain", parents=[common], help="say why a branch of a bundle runs where it runs", description=__doc__)
    p.add_argument("bundle", help="a bundle directory written by stretchc compile")
    p.add_argument("region", nargs="?", help="a region (s1.b0, stem, s1.join, head, main); all regions if omitted")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stretchc.costmodel.report import explain

    path = Path(args.bundle) / "report.json"
    if not path.is_file():
        raise StretchError("bad-bundle", "the bundle has no report.json (compiled without a placement report?)", file=str(path))
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StretchError("bad-bundle", f"cannot read report.json: {exc}", file=str(path)) from None
    regions = [args.region] if args.region else [r["region"] for r in report["regions"]]
    get_console().out("\n".join(explain(report, r) for r in regions))
    return 0
