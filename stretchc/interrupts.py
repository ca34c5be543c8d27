"""Ctrl-C and SIGTERM as exceptions that third-party code cannot swallow for good.

While a command runs (`signals_as_exceptions`), SIGINT raises `KeyboardInterrupt` and SIGTERM raises
`Terminated` in the main thread, so `finally` blocks remove whatever the command had started. Libraries we
call (onnx2tf, TensorFlow) have bare `except:` clauses that can catch such an exception and carry on; the
handler therefore also records the signal, and `raise_pending()` — called when control comes back from such
a library — raises it again. A signal is never lost: the command stops at the latest at the next check.
An exception that a signal caused in a library (a C extension whose import it interrupted raises
ImportError, a converter reports it as its own failure) is reported as that signal: `signals_as_exceptions`
re-raises the pending signal in place of any exception that leaves the block while one is pending.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that `finally` blocks remove what the command had started."""


_pending: int | None = None


def _exception_for(signum: int) -> BaseException:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """While the block runs, SIGINT/SIGTERM raise (and are remembered for `raise_pending`)."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        global _pending
        _pending = signum
        raise _exception_for(signum)

    _pending = None
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except (KeyboardInterrupt, Terminated):
        raise
    except BaseException:
        raise_pending()  # the signal, not what it broke on its way (e.g. an interrupted import's ImportError)
        raise
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _pending = None


def raise_pending() -> None:
    """Raise the signal received while a library that may have swallowed it was running, if any."""
    if _pending is not None:
        raise _exception_for(_pending)
