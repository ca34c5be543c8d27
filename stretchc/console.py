"""Where user-facing messages go: notes, warnings, errors and progress, as text or JSON lines on stderr.

One `Console` per command run. `-q` silences notes and progress (warnings and errors still print);
`--diagnostics=json` turns every message into one JSON object per line and drops progress bars.
Library code takes the console from `get_console()` so that passes and the lowering report through it
without threading it through every call.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from stretchc.errors import Diagnostic, Location, StretchError


class Console:
    """Prints diagnostics and progress; collects the diagnostics so callers can inspect them."""

    def __init__(self, *, quiet: bool = False, json_mode: bool = False, stream: IO[str] | None = None) -> None:
        self.quiet = quiet
        self.json_mode = json_mode
        self.stream = stream if stream is not None else sys.stderr
        self.diagnostics: list[Diagnostic] = []

    def emit(self, diag: Diagnostic) -> None:
        self.diagnostics.append(diag)
        if self.json_mode:
            self.stream.write(json.dumps(diag.to_dict(), sort_keys=True) + "\n")
        elif diag.severity == "error":
            self.stream.write(StretchError(diag.code, diag.message, file=diag.location.file).one_line() + "\n")
        elif diag.severity == "warning" or not self.quiet:
            where = f"{diag.location.file}: " if diag.location.file else ""
            self.stream.write(f"{diag.severity}[{diag.code}]: {where}{diag.message}\n")
        self.stream.flush()

    def note(self, code: str, message: str, **loc: str | None) -> None:
        self.emit(Diagnostic("note", code, message, Location(**loc)))

    def warn(self, code: str, message: str, **loc: str | None) -> None:
        self.emit(Diagnostic("warning", code, message, Location(**loc)))

    def error(self, err: StretchError) -> None:
        self.emit(Diagnostic.from_error(err))

    def out(self, text: str) -> None:
        """Write the command's own result (tables, reports) to stdout; suppressed by -q."""
        if not self.quiet:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            sys.stdout.flush()

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        """Announce a long step (lowering, calibration) and report its duration when it ends."""
        start = time.perf_counter()
        if not self.quiet and not self.json_mode:
            self.stream.write(f"{label} ...\n")
            self.stream.flush()
        yield
        if not self.quiet and not self.json_mode:
            self.stream.write(f"{label} done in {time.perf_counter() - start:.1f} s\n")
            self.stream.flush()

    def progress(self, label: str, done: int, total: int) -> None:
        """A one-line progress bar redrawn in place (text mode only)."""
        if self.quiet or self.json_mode:
            return
        width = 30
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        self.stream.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}")
        self.stream.flush()


@contextmanager
def native_output_to(log_path: Path) -> Iterator[None]:
    """Send this process's stdout/stderr (Python and C level) to `log_path` while the block runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "wb") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


_console = Console()


def get_console() -> Console:
    return _console


def set_console(console: Console) -> None:
    global _console
    _console = console
