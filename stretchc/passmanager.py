"""Passes, their registry, pipeline strings, and the pass manager with its instruments.

A pass is a frozen dataclass registered with `@register_pass`; its `name` is kebab-case and its fields are
its options (types: str, int, float, bool; a field may list allowed values in `metadata["choices"]`).
`run(module, ctx) -> bool` says whether it changed the module.

Pipeline strings: `find-branches,assign-delegates{policy=default},insert-sync-points`. Parsing is strict:
unknown passes, unknown options, malformed values and duplicate options are errors. `print_pipeline`
writes every option, defaults included, so any run can be replayed exactly.

The pass manager verifies the IR after every pass, and drives the instruments: `--dump-dir` (numbered
dumps `00-input.ir`, `NN-after-<pass>.ir`, `NN-failed-<pass>.ir`), `--print-ir-after`, `--time-passes`.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, TypeVar

from stretchc.console import Console, get_console
from stretchc.errors import StretchError
from stretchc.ir import IRError, Module
from stretchc.irtext import print_module


@dataclass
class PassContext:
    """What passes may read besides the module: the target, the user's options, where to write output."""

    target: Any = None  # stretchc.targets.Target
    place: dict[str, str] = field(default_factory=dict)  # --place overrides: region -> processor
    output_dir: Path | None = None  # where emit-bundle writes (a staging directory)
    options: dict[str, Any] = field(default_factory=dict)  # further user options (calibration data, ...)
    console: Console = field(default_factory=get_console)
    report: dict[str, Any] = field(default_factory=dict)  # facts passes record for the compile report


@dataclass(frozen=True)
class Pass(abc.ABC):
    """Base of all passes. Subclasses are frozen dataclasses whose fields are the options."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

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
    """All registered passes by name (importing stretchc.passes registers the built-in ones)."""
    import stretchc.passes  # noqa: F401  (registers the built-in passes)

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


def _split_top(text: str) -> list[str]:
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
    for element in _split_top(text.strip()):
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


@dataclass
class Instruments:
    """What the pass manager does around passes besides running them."""

    dump_dir: Path | None = None
    print_ir_after: frozenset[str] = frozenset()
    time_passes: bool = False
    verify_each: bool = True
    timings: list[tuple[str, float, bool]] = field(default_factory=list)  # (pass, seconds, changed)


class PassManager:
    """Runs a pipeline over a module, verifying after every pass."""

    def __init__(self, passes: list[Pass], instruments: Instruments | None = None) -> None:
        self.passes = passes
        self.instruments = instruments or Instruments()

    def _dump(self, name: str, module: Module) -> None:
        d = self.instruments.dump_dir
        if d is not None:
            d.mkdir(parents=True, exist_ok=True)
            (d / name).write_text(print_module(module))

    def run(self, module: Module, ctx: PassContext, *, on_pass: Callable[[Pass], None] | None = None) -> Module:
        """Run every pass in order. A pass failure is dumped as NN-failed-<pass>.ir and re-raised."""
        ins = self.instruments
        self._dump("00-input.ir", module)
        for index, p in enumerate(self.passes, start=1):
            if on_pass is not None:
                on_pass(p)
            start = time.perf_counter()
            try:
                changed = bool(p.run(module, ctx))
                if ins.verify_each:
                    module.verify()
            except StretchError as err:
                self._dump(f"{index:02d}-failed-{p.name}.ir", module)
                if err.location.pass_name is None:
                    raise StretchError(
                        err.code, err.message, file=err.location.file, pass_name=p.name,
                        branch=err.location.branch, node=err.location.node,
                    ) from None
                raise
            except IRError as err:
                self._dump(f"{index:02d}-failed-{p.name}.ir", module)
                raise StretchError("ir-invalid", f"IR invalid after pass {p.name}: {err}", pass_name=p.name) from None
            except Exception:
                self._dump(f"{index:02d}-failed-{p.name}.ir", module)
                raise
            elapsed = time.perf_counter() - start
            ins.timings.append((p.name, elapsed, changed))
            self._dump(f"{index:02d}-after-{p.name}.ir", module)
            if p.name in ins.print_ir_after:
                ctx.console.out(f"// -----// IR after {p.name} //----- //\n{print_module(module)}")
        if ins.time_passes:
            ctx.console.out(self.timing_report())
        return module

    def timing_report(self) -> str:
        total = sum(t for _, t, _ in self.instruments.timings) or 1e-9
        rows = ["pass timing:", f"  {'time (ms)':>10}  {'%':>6}  changed  pass"]
        for name, secs, changed in self.instruments.timings:
            rows.append(f"  {secs * 1e3:10.2f}  {100 * secs / total:6.1f}  {'yes' if changed else 'no':>7}  {name}")
        rows.append(f"  {total * 1e3:10.2f}  {100.0:6.1f}           total")
        return "\n".join(rows)
