"""What a bundle is, shared by its writer (stretchc/bundle/manifest.py, emit-bundle) and its readers (the
validator, the binary codec, the C++ loader): the format name and version (const attributes of
`schemas/manifest.fbs`), the files every bundle holds, the rule table of `schemas/bundle_rules.json` (the rules
in the order they are checked, and the numeric limits they refer to) and which buffer slots alias.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from stretchc.bundle.schema import manifest_schema
from stretchc.schemas import schema_path

_ROOT = manifest_schema().root_table
FORMAT = str(_ROOT.field("format").attr("const"))
FORMAT_VERSION = int(str(_ROOT.field("format_version").attr("const")))
MANIFEST_JSON = "manifest.json"
MANIFEST_BIN = "manifest.bin"
SHA256SUMS = "SHA256SUMS"


@dataclass(frozen=True)
class Rule:
    id: str
    readers: tuple[str, ...]
    checks: str


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[Rule, ...], dict[str, int]]:
    raw = json.loads(schema_path("bundle_rules.json").read_text())
    rules = tuple(Rule(r["id"], tuple(r["readers"]), r["checks"]) for r in raw["rules"])
    return rules, {k: int(v) for k, v in raw["limits"].items()}


def rules() -> tuple[Rule, ...]:
    """The rules, in the order they are checked."""
    return _table()[0]


def limits() -> dict[str, int]:
    """The numeric limits the rules refer to (limits.NAME in the table)."""
    return _table()[1]


def sharing_pairs(slots: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of slots (names, in slot order) whose byte ranges intersect, sorted: what buffers.aliases lists."""
    order = sorted(range(len(slots)), key=lambda i: (slots[i]["offset"], i))
    pairs = []
    for k, i in enumerate(order):
        a = slots[i]
        for j in order[k + 1 :]:
            b = slots[j]
            if b["offset"] >= a["offset"] + a["size"]:
                break  # every later slot starts at or after b
            if a["offset"] < b["offset"] + b["size"] and b["offset"] < a["offset"] + a["size"]:
                pairs.append((slots[min(i, j)]["name"], slots[max(i, j)]["name"]))
    return sorted(pairs)
