"""`stretchc explain BUNDLE REGION`: why a region (branch, stem, join, head) of a bundle runs where it runs.

Checks the bundle as every command that reads one does (`stretchc.bundle.validate`), then reads its
`report.json` (written by emit-bundle from the placement report): the processor and the
reason (override, the cost model's choice, or the target limit that moved it), the precision and why, the
predicted time, and each alternative processor with its predicted time at each precision it may take, or the
eligibility rule that excluded it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stretchc.console import get_console
from stretchc.errors import StretchError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("explain", parents=[common], help="say why a branch of a bundle runs where it runs", description=__doc__)
    p.add_argument("bundle", help="a bundle directory written by stretchc compile")
    p.add_argument("region", nargs="?", help="a region (s1.b0, stem, s1.join, head, main); all regions if omitted")
    p.set_defaults(func=run)


_NUMBER = {"type": "number"}
# The part of the placement report `explain` reads; anything else in report.json is left alone.
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["regions", "predicted_latency_ms", "method"],
    "properties": {
        "predicted_latency_ms": _NUMBER,
        "method": {"type": "string"},
        "regions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["region", "kind", "ops", "processor", "precision", "why", "precision_why", "predicted_ms", "alternatives"],
                "properties": {
                    "region": {"type": "string"},
                    "kind": {"type": "string"},
                    "ops": {"type": "integer"},
                    "processor": {"type": "string"},
                    "precision": {"type": "string"},
                    "why": {"type": "string"},
                    "precision_why": {"type": "string"},
                    "predicted_ms": _NUMBER,
                    "alternatives": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["eligible"],
                            "properties": {
                                "eligible": {"type": "boolean"},
                                "reason": {"type": ["string", "null"]},
                                "precisions": {
                                    "type": "object",
                                    "additionalProperties": {"type": "object", "required": ["region_ms", "total_ms"], "properties": {"region_ms": _NUMBER, "total_ms": _NUMBER}},
                                },
                            },
                            "if": {"properties": {"eligible": {"const": True}}},
                            "then": {"required": ["precisions"]},
                            "else": {"required": ["reason"], "properties": {"reason": {"type": "string"}}},
                        },
                    },
                },
            },
        },
    },
}


def read_report(path: Path) -> dict[str, Any]:
    """The placement report at `path`, or StretchError("bad-bundle") naming what is wrong with it."""
    import jsonschema

    from stretchc import safejson

    if not path.is_file():
        raise StretchError("bad-bundle", "the bundle has no report.json (compiled without a placement report?)", file=str(path))
    try:
        report = safejson.loads(path.read_bytes(), max_depth=32)
    except (OSError, ValueError) as exc:
        raise StretchError("bad-bundle", f"cannot read report.json: {exc}", file=str(path)) from None
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(REPORT_SCHEMA).iter_errors(report))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise StretchError("bad-bundle", f"report.json field {where}: {error.message[:200]}", file=str(path))
    return report  # type: ignore[no-any-return]


def run(args: argparse.Namespace) -> int:
    from stretchc.bundle.manifest import load_manifest
    from stretchc.costmodel.placement_report import explain

    load_manifest(args.bundle)  # the bundle check every command runs: explain no bundle that run refuses
    report = read_report(Path(args.bundle) / "report.json")
    regions = [args.region] if args.region else [r["region"] for r in report["regions"]]
    get_console().out("\n".join(explain(report, r) for r in regions))
    return 0
