"""`--dump-dir DIR`: replayable IR dumps, one per pass, and the constants they reference.

    DIR/00-input.ir                the module before the first pass
    DIR/NN-after-<pass>.ir         after pass NN (its position in the pipeline, so names are stable)
    DIR/NN-failed-<pass>.ir        the input of pass NN, which failed: a reproducer of the failure
    DIR/constants/<digest>.bin     constant data (and arrays of options), written once, shared by all dumps
    DIR/constants/<digest>.json    the analyses earlier passes recorded (stretchc.analyses), shared the same way

Each dump is the module's text (stretchc/irtext.py) after a header: comments saying where it stands and the
command that replays it, and the `reproducer` line (stretchc/reproducer.py). Same inputs, same bytes.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from stretchc.console import Console
from stretchc.ir import Module
from stretchc.irtext import ConstantStore, elided_constants, print_module
from stretchc.passmanager import Instrument, Pass, PassContext, PassRun
from stretchc.reproducer import Recorder, Reproducer
from stretchc.version import __version__

CONSTANTS = "constants"


def dump_text(body: str, rep: Reproducer, comments: list[str]) -> str:
    """A dump: the module text `body` (from print_module) with `comments` and the reproducer after its first line."""
    first, _, rest = body.partition("\n")
    return "\n".join([first, *(f"# {c}" for c in comments), rep.line(), rest])


def snapshot(module: Module, ctx: PassContext, recorder: Recorder, *, done: list[Pass], remaining: list[Pass]) -> tuple[str, Reproducer]:
    """The module's text and reproducer, with every constant they reference put in the recorder's store."""
    for data in elided_constants(module):
        recorder.store.put_array(data)
    return print_module(module), recorder.reproducer(ctx, done=done, remaining=remaining)


def replay_command(dump_name: str, rep: Reproducer | None, *, pipeline: str | None = None) -> str:
    """The `stretchc opt` command that replays a dump: `pipeline`, or the remaining pipeline `rep` records."""
    words = ["stretchc", "opt", dump_name]
    if pipeline is not None:
        words.append(f"--pipeline={pipeline}")
    elif rep is not None and "emit-bundle" in [e.split("{", 1)[0] for e in rep.remaining.split(",")]:
        words += ["--bundle", "OUT.stretch"]
    return shlex.join(words)


class DumpIR(Instrument):
    """Writes the dumps of one pipeline run (see the module docstring).

    `prefix` lists the passes the input module has already been through (when the run starts from a dump),
    so that every reproducer says what was done from the start.
    """

    def __init__(self, dump_dir: Path, passes: list[Pass], *, prefix: list[Pass] | None = None) -> None:
        self.dir = dump_dir
        self.passes = passes
        self.prefix = list(prefix or [])
        self.store = ConstantStore(dump_dir / CONSTANTS)
        self.recorder = Recorder(self.store)
        self.after: dict[int, Path] = {}  # pass index (0: the input) -> dump of the module after it
        self._input: tuple[str, Reproducer] | None = None  # what the next pass receives: module text, reproducer
        self.failure_dump: Path | None = None  # the failure dump, and the pass that failed
        self.failed: Pass | None = None
        self.announce = True  # print the failure dump's reproduce command when a pass fails

    def _write(self, name: str, body: str, rep: Reproducer, comments: list[str]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / name
        path.write_text(dump_text(body, rep, comments))
        return path

    def _snapshot(self, module: Module, ctx: PassContext, done: int) -> tuple[str, Reproducer]:
        self._input = snapshot(module, ctx, self.recorder, done=self.prefix + self.passes[:done], remaining=self.passes[done:])
        return self._input

    def run_start(self, module: Module, ctx: PassContext) -> None:
        body, rep = self._snapshot(module, ctx, 0)
        name = "00-input.ir"
        self.after[0] = self._write(name, body, rep, [f"stretchc {__version__}: the input of a pipeline of {len(self.passes)} pass(es)", f"replay: {replay_command(name, rep)}"])

    def after_pass(self, run: PassRun, module: Module, ctx: PassContext) -> None:
        body, rep = self._snapshot(module, ctx, run.index)
        name = f"{run.index:02d}-after-{run.pass_.name}.ir"
        where = f"stretchc {__version__}: after pass {run.index} of {len(self.passes)}, {run.pass_.name}"
        comments = [where, f"replay the rest: {replay_command(name, rep)}" if rep.remaining else "the pipeline is complete"]
        self.after[run.index] = self._write(name, body, rep, comments)

    def pass_failed(self, run: PassRun, module: Module, ctx: PassContext) -> None:
        assert self._input is not None and run.error is not None
        body, before = self._input
        rep = before.with_failure(run.pass_.name, run.error)
        name = f"{run.index:02d}-failed-{run.pass_.name}.ir"
        command = replay_command(name, rep, pipeline=run.pass_.spelled())
        comments = [
            f"stretchc {__version__}: the input of pass {run.index} of {len(self.passes)}, {run.pass_.name}, which failed:",
            f"  {run.error.one_line()}",
            f"reproduce: {command}",
        ]
        self.failure_dump, self.failed = self._write(name, body, rep, comments), run.pass_
        if self.announce:
            announce_failure(self.failure_dump, run.pass_, ctx.console)


def announce_failure(dump: Path, failed: Pass, console: Console) -> None:
    """Tell the user where the failure dump of pass `failed` is and how to reproduce the failure from it."""
    command = replay_command(str(dump), None, pipeline=failed.spelled())
    console.note("reproducer", f"pass {failed.name} failed; its input is dumped. Reproduce with: {command}", file=str(dump))


def copy_dump(dump: Path, dest: Path) -> Path:
    """Copy a dump into folder `dest` with every constant-store entry it references (directly, or through
    the analyses document), so that the copy replays on its own. Returns the copy's path."""
    store, out = dump.parent / CONSTANTS, dest / CONSTANTS
    out.mkdir(parents=True, exist_ok=True)
    pending, copied = [dump.read_text()], set()
    while pending:
        for digest in set(re.findall(r"\b[0-9a-f]{16}\b", pending.pop())) - copied:
            for src in store.glob(f"{digest}.*"):
                shutil.copyfile(src, out / src.name)
                if src.suffix == ".json":
                    pending.append(src.read_text())
            copied.add(digest)
    shutil.copyfile(dump, dest / dump.name)
    return dest / dump.name
