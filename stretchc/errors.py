"""Errors as values: every failure the user can cause is a `StretchError` with a code and a location.

A code belongs to one exit status (see `ExitStatus`); the CLI prints the error as one line (or one JSON
object with `--diagnostics=json`) and exits with that status. Anything else that escapes is an internal
error (exit 70) and is reported as such, with the traceback only under `--debug`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ExitStatus(enum.IntEnum):
    """Process exit statuses, documented in the README."""

    OK = 0
    USAGE = 2  # the command line is wrong: unknown option, target, pass, branch; bad output path
    BAD_INPUT = 3  # a file the user gave is missing, unreadable or invalid (model, bundle, data, config)
    UNSUPPORTED = 4  # valid input the target or the lowering cannot handle (op, processor, delegate rule)
    VERIFY_FAILED = 5  # the bundle runs but its numbers are outside tolerance
    IO = 6  # the output cannot be written
    INTERNAL = 70  # a bug in stretchc
    INTERRUPTED = 130  # stopped by Ctrl-C (SIGINT): 128 + 2, as shells report it
    TERMINATED = 143  # stopped by SIGTERM: 128 + 15


# code -> (exit status, one-line meaning). The README's table is generated from this.
CODES: dict[str, tuple[ExitStatus, str]] = {
    "usage": (ExitStatus.USAGE, "malformed command line"),
    "unknown-target": (ExitStatus.USAGE, "the target is neither a known phone nor a target file"),
    "unknown-pass": (ExitStatus.USAGE, "the pipeline names a pass that does not exist"),
    "bad-pipeline": (ExitStatus.USAGE, "the pipeline string or a pass option is malformed"),
    "unknown-branch": (ExitStatus.USAGE, "--place names a region the model does not have"),
    "bad-placement": (ExitStatus.USAGE, "--place is malformed"),
    "output-exists": (ExitStatus.USAGE, "the output path exists and is not a bundle directory"),
    "file-not-found": (ExitStatus.BAD_INPUT, "an input file does not exist"),
    "not-onnx": (ExitStatus.BAD_INPUT, "the model file is not a valid ONNX model"),
    "invalid-model": (ExitStatus.BAD_INPUT, "the ONNX model fails the checker"),
    "dynamic-shape": (ExitStatus.BAD_INPUT, "an input has a dynamic dimension other than the batch"),
    "bad-input-data": (ExitStatus.BAD_INPUT, "an input array is missing, unreadable or of the wrong shape or dtype"),
    "bad-bundle": (ExitStatus.BAD_INPUT, "the bundle is corrupt, modified, or of an unknown format version"),
    "bad-config": (ExitStatus.BAD_INPUT, "a configuration file is invalid"),
    "bad-target-file": (ExitStatus.BAD_INPUT, "a target file is invalid"),
    "bad-calibration": (ExitStatus.BAD_INPUT, "calibration data is missing, unreadable or of the wrong shape"),
    "bad-ir": (ExitStatus.BAD_INPUT, "an IR text file cannot be parsed"),
    "replay-mismatch": (ExitStatus.BAD_INPUT, "data a dump records (calibration set, target file) differs from what replaying it finds"),
    "unsupported-op": (ExitStatus.UNSUPPORTED, "the lowering cannot handle an op of the model"),
    "unsupported-opset": (ExitStatus.UNSUPPORTED, "the model's opset is outside the supported range"),
    "no-such-processor": (ExitStatus.UNSUPPORTED, "the target has no such processor"),
    "resource-limit": (ExitStatus.UNSUPPORTED, "the model or bundle is larger than a resource limit (--limit) or this machine's memory"),
    "ineligible-op": (ExitStatus.UNSUPPORTED, "an op placed on a delegate breaks that delegate's rules"),
    "native-crash": (ExitStatus.UNSUPPORTED, "TFLite's calibrator, quantizer or interpreter failed or crashed on this model or data (the step is named)"),
    "verify-failed": (ExitStatus.VERIFY_FAILED, "the bundle's outputs differ from ONNX Runtime beyond tolerance"),
    "write-failed": (ExitStatus.IO, "the output cannot be written"),
    "run-stalled": (ExitStatus.INTERNAL, "the host runtime made no progress for --stall-timeout seconds"),
    "ir-invalid": (ExitStatus.INTERNAL, "a pass left the IR invalid"),
    "internal": (ExitStatus.INTERNAL, "an internal error"),
    "interrupted": (ExitStatus.INTERRUPTED, "stopped by Ctrl-C (SIGINT); nothing was left behind"),
    "terminated": (ExitStatus.TERMINATED, "stopped by SIGTERM; nothing was left behind"),
}


@dataclass(frozen=True)
class Location:
    """Where a diagnostic points: a file and, inside a model, a pass, a region and a node."""

    file: str | None = None
    pass_name: str | None = None
    branch: str | None = None
    node: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"file": self.file, "pass": self.pass_name, "branch": self.branch, "node": self.node}
        return {k: v for k, v in out.items() if v is not None}


class StretchError(Exception):
    """A failure with a stable code (a key of `CODES`), a one-line message and a location."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        file: str | None = None,
        pass_name: str | None = None,
        branch: str | None = None,
        node: str | None = None,
        rule: str | None = None,
    ) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        if rule is not None and not message.startswith(f"[{rule}] "):
            message = f"[{rule}] {message}"
        super().__init__(message)
        self.code = code
        self.message = message
        self.rule = rule  # the bundle rule broken (schemas/bundle_rules.json), shown as "[rule] message"
        self.location = Location(file=file, pass_name=pass_name, branch=branch, node=node)

    @property
    def exit_status(self) -> ExitStatus:
        return CODES[self.code][0]

    def one_line(self) -> str:
        """The error as the CLI prints it: `error[code]: file: message`."""
        where = f"{self.location.file}: " if self.location.file else ""
        return f"error[{self.code}]: {where}{self.message}".replace("\n", " ")


@dataclass
class Diagnostic:
    """One message for the user: severity, code, text, and where it points."""

    severity: str  # "error" | "warning" | "note"
    code: str
    message: str
    location: Location = field(default_factory=Location)
    rule: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"severity": self.severity, "code": self.code, "message": self.message, **self.location.to_dict()}
        if self.rule is not None:
            out["rule"] = self.rule
        return out

    @staticmethod
    def from_error(err: StretchError) -> "Diagnostic":
        return Diagnostic("error", err.code, err.message, err.location, err.rule)


def first_line(text: str, limit: int = 200) -> str:
    """The first non-empty line of a third-party message, without terminal colour codes, at most `limit` chars."""
    for line in _ANSI.sub("", text).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return "no message"
