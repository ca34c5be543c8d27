"""Passes, their registry, pipeline strings, and the pass manager with its instruments.

A pass is a frozen dataclass registered with `@register_pass`; its `name` is kebab-case and its fields are
its options (types: str, int, float, bool; a field may list allowed values in `metadata["choices"]`).
`run(module, ctx) -> bool` says whether it changed the module.

Pipeline strings: `find-branches,assign-delegates{policy=default},insert-sync-points`. Parsing is strict:
unknown passes, unknown options, malformed values and duplicate options are errors. `print_pipeline`
writes every option, defaults included, so any run can be replayed exactly.

The pass manager checks, before the first pass, that every pass's requirements are met (`check_requirements`:
the same check whatever runs the pipeline, compile, opt or bisect), verifies the IR after every pass and calls
its instruments (`Instrument`) around every pass: `PrintIR` (`--print-ir-before`, `--print-ir-after`,
`--print-ir-after-change`), `TimePasses` (`--time-passes`), and, elsewhere, the replayable dumps of `--dump-dir`
(stretchc/dumps.py) and the numeric bisect (stretchc/bisect.py).
"""

from __future__ import annotations

import abc
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence, TypeVar

from stretchc.analyses import Analyses, Analysis
from stretchc.backends import processors
from stretchc.compile_settings import CompileSettings
from stretchc.console import Console, get_console
from stretchc.errors import StretchError
from stretchc.ir import IRError, Module
from stretchc.irtext import print_module


@dataclass
class PassContext:
    """What passes may read besides the module: the target, the `--place` overrides, the compile settings, the
    whole pipeline of the run, the digest of the source model, the analyses earlier passes recorded, where to
    write output.

    A dump records everything here that influences passes (stretchc/reproducer.py: target, place, settings,
    pipeline, source, analyses) so that `stretchc opt` can replay it.
    """

    target: Any = None  # stretchc.targets.Target
    place: dict[str, str] = field(default_factory=dict)  # --place overrides: region -> processor
    output_dir: Path | None = None  # where emit-bundle writes (a staging directory)
    settings: CompileSettings = field(default_factory=CompileSettings)
    pipeline: list[Pass] = field(default_factory=list)  # every pass of the run, those done included
    source_sha256: str | None = None  # of the ONNX file a compile started from (the manifest records it)
    console: Console = field(default_factory=get_console)
    analyses: Analyses = field(default_factory=Analyses)


@dataclass(frozen=True)
class Pass(abc.ABC):
    """Base of all passes. Subclasses are frozen dataclasses whose fields are the options.

    Besides its options a pass declares what it reads and writes: `requires` (passes a compile pipeline must run
    before it), `not_after` (passes it cannot follow), `needs` (analyses it cannot run without: an earlier pass must produce them), `uses` (analyses it
    reads when present), `produces` (analyses it records) and `capabilities` (what it does that the compile settings
    record for the passes before it: `CompileSettings.for_pipeline`).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    not_after: ClassVar[tuple[str, ...]] = ()  # passes that, once run, leave IR this pass cannot take
    needs: ClassVar[tuple[type[Analysis], ...]] = ()
    uses: ClassVar[tuple[type[Analysis], ...]] = ()
    produces: ClassVar[tuple[type[Analysis], ...]] = ()
    capabilities: ClassVar[frozenset[str]] = frozenset()

    @abc.abstractmethod
    def run(self, module: Module, ctx: PassContext) -> bool:
        """Transform `module` in place; return whether anything changed."""

    def spelled(self) -> str:
        """This pass with all its options, as a pipeline element."""
        opts = [f"{f.name.replace('_', '-')}={_format(getattr(self, f.name))}" for f in dataclasses.fields(self)]
        return self.name + ("{" + ",".join(opts) + "}" if opts else "")


P = TypeVar("P", bound=type[Pass])
_REGISTRY: dict[str, type[Pass]] = {}


def register_pass(cls: P) -> P:
    """Class decorator: make the pass available to pipeline strings under its `name`."""
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError(f"pass name {cls.name!r} is empty or taken")
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[Pass]]:
    """All registered passes by name. The built-in ones register when `stretchc.passes` is imported (by the
    driver and the reproducer, which parse pipelines of them): the pass manager sits below the passes."""
    return dict(sorted(_REGISTRY.items()))


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _convert(pass_name: str, f: dataclasses.Field, text: str) -> object:  # type: ignore[type-arg]
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    try:
        if kind == "bool":
            if text not in ("true", "false"):
                raise ValueError
            value: object = text == "true"
        elif kind == "int":
            value = int(text)
        elif kind == "float":
            value = float(text)
        else:
            value = text
    except ValueError:
        raise StretchError("bad-pipeline", f"{pass_name}: option {f.name.replace('_', '-')} needs a {kind}, got {text!r}") from None
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise StretchError(
            "bad-pipeline", f"{pass_name}: option {f.name.replace('_', '-')} must be one of {', '.join(choices)}, got {text!r}"
        )
    return value


def split_pipeline(text: str) -> list[str]:
    """The elements of a pipeline string as written (`pass{options}`), split at its top-level commas."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise StretchError("bad-pipeline", f"unbalanced '}}' in pipeline {text!r}")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if depth:
        raise StretchError("bad-pipeline", f"unbalanced '{{' in pipeline {text!r}")
    parts.append(cur)
    return parts


def parse_pipeline(text: str) -> list[Pass]:
    """Parse a pipeline string strictly into pass instances (StretchError on any problem)."""
    passes = registry()
    result: list[Pass] = []
    for element in split_pipeline(text.strip()):
        element = element.strip()
        if not element:
            raise StretchError("bad-pipeline", f"empty element in pipeline {text!r}")
        name, brace, rest = element.partition("{")
        name = name.strip()
        if name not in passes:
            raise StretchError("unknown-pass", f"unknown pass {name!r}; known passes: {', '.join(passes)}")
        cls = passes[name]
        fields = {f.name.replace("_", "-"): f for f in dataclasses.fields(cls)}
        kwargs: dict[str, object] = {}
        if brace:
            if not rest.endswith("}"):
                raise StretchError("bad-pipeline", f"{name}: options must end with '}}'")
            body = rest[:-1].strip()
            for item in body.split(",") if body else []:
                key, eq, val = item.partition("=")
                key, val = key.strip(), val.strip()
                if not eq or not key or not val:
                    raise StretchError("bad-pipeline", f"{name}: malformed option {item!r} (expected key=value)")
                if key not in fields:
                    known = ", ".join(fields) or "none"
                    raise StretchError("bad-pipeline", f"{name}: unknown option {key!r} (options: {known})")
                if fields[key].name in kwargs:
                    raise StretchError("bad-pipeline", f"{name}: option {key!r} given twice")
                kwargs[fields[key].name] = _convert(name, fields[key], val)
        result.append(cls(**kwargs))
    return result


def print_pipeline(passes: list[Pass]) -> str:
    return ",".join(p.spelled() for p in passes)


def check_requirements(passes: Sequence[Pass], *, done: Sequence[Pass] = (), recorded: Iterable[str] = ()) -> None:
    """Refuse (`bad-pipeline`) a pipeline that runs a pass before what it needs, or after what it cannot follow.

    Every pass's `requires` must be among the passes `done` before the run (a dump's history; none for a compile,
    which starts from the imported model) or earlier in `passes`, none of its `not_after` may be, and every
    analysis it `needs` must be produced by one of those or already `recorded` (analysis keys a dump carries).
    """
    for i, p in enumerate(passes):
        earlier = [*done, *passes[:i]]
        names = {q.name for q in earlier}
        for need in p.requires:
            if need not in names:
                raise StretchError("bad-pipeline", f"pass {p.name} needs {need} earlier in the pipeline")
        for after in p.not_after:
            if after in names:
                raise StretchError("bad-pipeline", f"pass {p.name} cannot run after {after}" + (" (it runs once)" if after == p.name else ""))
        made = {a.key for q in earlier for a in q.produces} | set(recorded)
        for analysis in p.needs:
            if analysis.key not in made:
                raise StretchError("bad-pipeline", f"pass {p.name} needs the {analysis.key} analysis, which no earlier pass produces")


@dataclass
class PassRun:
    """One pass's run as instruments see it: its 1-based position in the pipeline and how it went."""

    index: int
    pass_: Pass
    changed: bool = False
    seconds: float = 0.0
    error: StretchError | None = None  # set when the pass (or the verifier after it) failed


class Instrument:
    """Hooks the pass manager calls around the passes it runs; every hook is a no-op by default.

    `run_start` sees the module before the first pass, `before_pass` / `after_pass` every pass that runs,
    `pass_failed` the pass that failed (its module is left as the failure left it), `run_end` the result.
    """

    def run_start(self, module: Module, ctx: PassContext) -> None:
        """Called once, before the first pass."""

    def before_pass(self, run: PassRun, module: Module, ctx: PassContext) -> None:
        """Called before each pass."""

    def after_pass(self, run: PassRun, module: Module, ctx: PassContext) -> None:
        """Called after each pass that succeeded and verified."""

    def pass_failed(self, run: PassRun, module: Module, ctx: PassContext) -> None:
        """Called when a pass or the verifier after it failed; the error is then raised."""

    def run_end(self, module: Module, ctx: PassContext) -> None:
        """Called once, after the last pass."""


class PrintIR(Instrument):
    """`--print-ir-before=PASS`, `--print-ir-after=PASS`, `--print-ir-after-change`: the IR on stdout.

    "Changed" is judged by the printed IR (which includes constant digests), not by what a pass says.
    """

    def __init__(self, *, before: frozenset[str] = frozenset(), after: frozenset[str] = frozenset(), after_change: bool = False) -> None:
        self.before, self.after, self.after_change = before, after, after_change
        self._last = ""

    def run_start(self, module: Module, ctx: PassContext) -> None:
        if self.after_change:
            self._last = print_module(module)

    def before_pass(self, run: PassRun, module: Module, ctx: PassContext) -> None:
        if run.pass_.name in self.before:
            ctx.console.out(f"// -----// IR before {run.pass_.name} //----- //\n{print_module(module)}")

    def after_pass(self, run: PassRun, module: Module, ctx: PassContext) -> None:
        named = run.pass_.name in self.after
        if not (named or self.after_change):
            return
        text = print_module(module)
        changed, self._last = text != self._last, text
        if named or changed:
            ctx.console.out(f"// -----// IR after {run.pass_.name} //----- //\n{text}")


class TimePasses(Instrument):
    """`--time-passes`: a table of every pass's time once the pipeline has run."""

    def __init__(self) -> None:
        self.runs: list[PassRun] = []

    def after_pass(self, run: PassRun, module: Module, ctx: PassContext) -> None:
        self.runs.append(run)

    def run_end(self, module: Module, ctx: PassContext) -> None:
        ctx.console.out(timing_report([(r.pass_.name, r.seconds, r.changed) for r in self.runs]))


def timing_report(timings: list[tuple[str, float, bool]]) -> str:
    """The `--time-passes` table of (pass, seconds, changed) rows."""
    total = sum(t for _, t, _ in timings) or 1e-9
    rows = ["pass timing:", f"  {'time (ms)':>10}  {'%':>6}  changed  pass"]
    for name, secs, changed in timings:
        rows.append(f"  {secs * 1e3:10.2f}  {100 * secs / total:6.1f}  {'yes' if changed else 'no':>7}  {name}")
    rows.append(f"  {total * 1e3:10.2f}  {100.0:6.1f}           total")
    return "\n".join(rows)


class PassManager:
    """Runs a pipeline over a module, verifying after every pass, with instruments around every pass."""

    def __init__(self, passes: list[Pass], instruments: list[Instrument] | None = None, *, verify_each: bool = True) -> None:
        self.passes = passes
        self.instruments = list(instruments or [])
        self.verify_each = verify_each
        self.timings: list[tuple[str, float, bool]] = []  # (pass, seconds, changed) of every pass run

    def run(self, module: Module, ctx: PassContext) -> Module:
        """Run every pass in order. A failure is shown to the instruments (pass_failed), then raised as a
        StretchError naming the pass (IR verifier failures as `ir-invalid`); other exceptions propagate.

        While a pass runs it may read only the analyses it declares (`needs`, `uses`, `produces`) and record only
        those it `produces` (`Analyses.declared`): an undeclared one is an internal error naming the pass.

        First, when `ctx.pipeline` records the run (it ends with these passes; what comes before them was done
        before), the passes' requirements are checked against it (`check_requirements`), so that a pipeline
        lacking a pass is the user's `bad-pipeline` before any pass runs, not a pass failing on its input. A
        context that does not record the run (one made by hand for a single pass, as per-pass tests do) is
        not checked.
        """
        start = len(ctx.pipeline) - len(self.passes)
        if start >= 0 and ctx.pipeline[start:] == self.passes:
            check_requirements(self.passes, done=ctx.pipeline[:start], recorded=[a.key for a in ctx.analyses])
        for ins in self.instruments:
            ins.run_start(module, ctx)
        for index, p in enumerate(self.passes, start=1):
            run = PassRun(index, p)
            for ins in self.instruments:
                ins.before_pass(run, module, ctx)
            start = time.perf_counter()
            try:
                with ctx.analyses.declared(p.name, [a.key for a in (*p.needs, *p.uses)], [a.key for a in p.produces]):
                    run.changed = bool(p.run(module, ctx))
                if self.verify_each:
                    module.verify(processors())
            except StretchError as err:
                if err.location.pass_name is None:
                    err = StretchError(
                        err.code, err.message, file=err.location.file, pass_name=p.name,
                        branch=err.location.branch, node=err.location.node,
                    )
                run.error = err
                self._failed(run, module, ctx)
                raise err from None
            except IRError as exc:
                run.error = StretchError("ir-invalid", f"IR invalid after pass {p.name}: {exc}", pass_name=p.name)
                self._failed(run, module, ctx)
                raise run.error from None
            except Exception as exc:
                run.error = StretchError("internal", f"internal error in pass {p.name}: {type(exc).__name__}: {exc}", pass_name=p.name)
                self._failed(run, module, ctx)
                raise
            run.seconds = time.perf_counter() - start
            self.timings.append((p.name, run.seconds, run.changed))
            for ins in self.instruments:
                ins.after_pass(run, module, ctx)
        for ins in self.instruments:
            ins.run_end(module, ctx)
        return module

    def _failed(self, run: PassRun, module: Module, ctx: PassContext) -> None:
        for ins in self.instruments:
            ins.pass_failed(run, module, ctx)
