"""JSON from files a user or an attacker wrote: bounded nesting, no NaN/Infinity, no duplicate keys.

Python's JSON parser recurses once per nesting level; importing onnx2tf lifts the recursion limit to 2^31-1,
so a deep enough document would overflow the C stack (a segfault, not a RecursionError). The nesting is
measured on the text, without recursion, before anything is parsed.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def nesting(text: str) -> int:
    """The deepest bracket nesting of a JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if m.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} appears twice in one object")
        out[k] = v
    return out


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | str, *, max_depth: int) -> Any:
    """Parse strict JSON nested at most `max_depth` deep; ValueError (with the reason) otherwise."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data  # UnicodeDecodeError is a ValueError
    if nesting(text) > max_depth:
        raise ValueError(f"nested more than {max_depth} deep")
    return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_refuse_constant)
