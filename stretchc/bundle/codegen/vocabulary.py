"""The value sets a manifest field names with `kind: "..."` in `schemas/manifest.fbs`.

Each comes from the one list the compiler keeps of it (the IR's dtypes, the precisions, the backends' processors
and delegates (stretchc/backends/), the name length limit of `schemas/bundle_rules.json`), so the generated JSON
schema follows the compiler: add a backend and run `scripts/gen_manifest.py`. The processors and delegates are each
reader's own: the C++ loader accepts those of its backend registry (`android_runtime/src/backends/registry.cc`,
handed to the generated checks by `manifest::KnownProcessor()` / `KnownDelegate()` in bundle.cc).
"""

from __future__ import annotations

from dataclasses import dataclass

from stretchc.backends import backends
from stretchc.bundle.format import limits
from stretchc.ir import DTYPE_SIZES, PRECISIONS


@dataclass(frozen=True)
class Chars:
    """Strings of `min_length` to `max_length` characters from `chars` (the body of a regex character class)."""

    chars: str
    min_length: int
    max_length: int
    description: str


@dataclass(frozen=True)
class Words:
    """Strings that are one of `words`; `runtime_defined`: the C++ runtime supplies its own list."""

    words: tuple[str, ...]
    description: str
    runtime_defined: bool = False


def kinds() -> dict[str, Chars | Words]:
    """Every value set by the name the .fbs uses for it."""
    return {
        "name": Chars("A-Za-z0-9_.+-", 1, limits()["name_chars"], "a partition, sync point or slot name"),
        "sha256": Chars("0-9a-f", 64, 64, "a SHA-256 digest in lower-case hex"),
        "dtype": Words(tuple(DTYPE_SIZES), "a dtype the IR knows"),
        "processor": Words(tuple(b.name for b in backends()), "a processor a partition runs on", runtime_defined=True),
        "delegate": Words(tuple(dict.fromkeys(b.delegate for b in backends())), "the delegate that runs a partition", runtime_defined=True),
        "precision": Words(PRECISIONS, "the dtype a partition computes in"),
    }


def expand(chars: str) -> str:
    """Every character of a character class body such as "A-Za-z0-9_.+-" (a '-' last is itself)."""
    out, i = [], 0
    while i < len(chars):
        if i + 2 < len(chars) and chars[i + 1] == "-":
            out += [chr(c) for c in range(ord(chars[i]), ord(chars[i + 2]) + 1)]
            i += 3
        else:
            out.append(chars[i])
            i += 1
    return "".join(out)
