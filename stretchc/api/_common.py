"""What every part of the API shares: the console it reports through, and option checks."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, Sequence

from stretchc.console import Console, get_console, set_console
from stretchc.errors import StretchError


def console_for(quiet: bool, console: Console | None) -> Console:
    """`console`, or a console on stderr that prints notes and progress only when not `quiet`."""
    return console if console is not None else Console(quiet=quiet, stream=sys.stderr)


@contextmanager
def reporting(console: Console) -> Iterator[None]:
    """`console` is the one library code reports through (`get_console()`) while the block runs; the caller's after."""
    before = get_console()
    set_console(console)
    try:
        yield
    finally:
        set_console(before)


def check_choice(option: str, value: str, choices: Sequence[str]) -> None:
    """StretchError("usage") naming `option` unless `value` is one of `choices`."""
    if value not in choices:
        raise StretchError("usage", f"{option} {value!r}: expected one of {', '.join(choices)}")
