"""The `stretchc` command: parses arguments, dispatches to a command module, maps errors to exit codes.

Each command lives in `stretchc/commands/<name>.py` and exposes `register(subparsers)`, which adds its
parser and sets `func=run` where `run(args) -> int`. Commands raise `StretchError` for anything the user
can fix; this module prints it as one line (or JSON) and exits with the code's status.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import traceback
from typing import Sequence

from stretchc import __version__
from stretchc.console import Console, get_console, set_console
from stretchc.errors import ExitStatus, StretchError
from stretchc.interrupts import Terminated, signals_as_exceptions

# Command modules, in the order `stretchc --help` lists them.
COMMANDS = (
    "compile",
    "opt",
    "bisect",
    "run",
    "verify",
    "inspect",
    "passes",
    "targets",
    "cost_model",
    "calibrate",
    "explain",
    "build_model",
    "example",
)


class _Parser(argparse.ArgumentParser):
    """argparse that raises a usage StretchError instead of printing and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise StretchError("usage", f"{self.prog}: {message}")


def finite_float(text: str) -> float:
    """argparse type: a finite number (a bound in dB). NaN and infinities are usage errors when the command
    line is parsed, before any work: no comparison holds against NaN, and an infinite bound is never met."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (a tolerance: a negative one fails every check, an infinite one none)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stretchc", description="Compile branched ONNX models into parallel multi-processor bundles.")
    parser.add_argument("--version", action="version", version=f"stretchc {__version__}")
    common = _Parser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    common.add_argument(
        "--diagnostics", choices=("text", "json"), default="text", help="json: one JSON object per line on stderr"
    )
    common.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"stretchc.commands.{name}")
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # TensorFlow's C++ logging writes to the process's stderr on import; keep it off the user's terminal.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    # oneDNN's custom kernels make TensorFlow's numbers depend on the CPU: off, for reproducible lowering
    # across machines (and its start-up notice would break --diagnostics=json's one-JSON-object-per-line).
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    argv = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--diagnostics=json" in argv or any(
        a == "--diagnostics" and i + 1 < len(argv) and argv[i + 1] == "json" for i, a in enumerate(argv)
    )
    console = Console(quiet="-q" in argv or "--quiet" in argv, json_mode=json_mode)
    previous = get_console()
    set_console(console)
    try:
        with signals_as_exceptions():
            args = build_parser().parse_args(argv)
            return int(args.func(args))
    except StretchError as err:
        console.error(err)
        return int(err.exit_status)
    except KeyboardInterrupt:  # cleanup (staging and scratch folders) ran on the way up
        console.error(StretchError("interrupted", "interrupted (Ctrl-C)"))
        return int(ExitStatus.INTERRUPTED)
    except Terminated:
        console.error(StretchError("terminated", "terminated (SIGTERM)"))
        return int(ExitStatus.TERMINATED)
    except Exception as exc:  # a bug: report it as one, never as the user's fault
        if "--debug" in argv:
            traceback.print_exc()
        console.error(StretchError("internal", f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)"))
        return int(ExitStatus.INTERNAL)
    finally:
        set_console(previous)  # callers in the same process (tests, build tools) keep their own console


if __name__ == "__main__":
    sys.exit(main())
