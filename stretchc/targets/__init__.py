"""The target database: one YAML file per phone in `data/`, validated against the target schema the backends
compose (stretchc/targets/schema.py; written out as `schemas/target.schema.json`).

`load_target(spec)` takes a known name (`pixel6`) or a path to a user's YAML file and returns a `Target`.
Unknown names list the known ones; invalid files name the offending field and what it must be. No message
quotes the file's text: a target path may name any file (`targets show /etc/passwd`, a stretchc.toml
`target =`, a dump's reproducer), so what it holds is never echoed.

A target names the calibration set that prices it (`calibration:`): the sets are part of the database too
(`data/costmodel/calibration.yaml`, read and checked against its schema by `read_calibration_sets`); what their
points mean is the cost model's (stretchc/costmodel/calibration.py), a layer above the targets.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from stretchc.backends import backend, backends
from stretchc.errors import StretchError
from stretchc.targets.schema import calibration_schema, target_schema

if TYPE_CHECKING:
    from jsonschema import ValidationError

DATA_DIR = Path(__file__).with_name("data")
CALIBRATION_PATH = DATA_DIR / "costmodel" / "calibration.yaml"
MAX_TARGET_BYTES = 1 << 20  # a target file is a few KB; anything larger is not one, and is not read
_QUOTED = re.compile(r"'([^']*)'")
_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false", "null": "null"}


@dataclass(frozen=True)
class Target:
    """A phone as the compiler sees it. `raw` holds the validated file contents."""

    name: str
    path: Path
    raw: dict[str, Any]

    @property
    def description(self) -> str:
        return str(self.raw["description"])

    @property
    def processors(self) -> tuple[str, ...]:
        """Processors a bundle can use on this phone, in backend order (stretchc/backends/)."""
        return tuple(b.name for b in backends() if b.unavailable(self) is None)

    def unavailable(self, processor: str) -> str | None:
        """None when bundles for this phone can use `processor`, else why not (a sentence naming the target)."""
        why = backend(processor).unavailable(self)
        return None if why is None else f"target {self.name} {why}"

    def require(self, processor: str, *, what: str) -> None:
        """Raise a clear StretchError if `processor` is not usable on this target (`what` names the user of it)."""
        why = self.unavailable(processor)
        if why is not None:
            raise StretchError("no-such-processor", f"{what}: {why}; it has {', '.join(self.processors)}")

    @property
    def delegate_limits(self) -> dict[str, int]:
        return dict(self.raw["delegate_limits"])


def known_targets() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.yaml"))


def _schema_problem(err: ValidationError) -> str:
    """What a jsonschema ValidationError says is wrong, in the schema's words only: jsonschema's own message
    quotes the offending value (for a file that is no target file at all, its whole text)."""
    rule, value = err.validator, err.validator_value
    if rule == "type":
        return "must be " + " or ".join(_TYPE_NAMES.get(t, t) for t in ([value] if isinstance(value, str) else value))
    if rule == "required":
        return "lacks the field " + next(k for k in value if k not in err.instance)
    if rule == "additionalProperties":
        return "has a field a target file does not have (allowed: " + ", ".join(err.schema.get("properties", {})) + ")"
    if rule == "enum":
        return "must be one of " + ", ".join(str(v) for v in value)
    bounds = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<="}
    if rule in bounds:
        return f"must be {bounds[rule]} {value}"
    if rule in ("minItems", "minLength"):
        return f"must have at least {value} {'item' if rule == 'minItems' else 'character'}(s)"
    if rule == "pattern":
        return f"must match {value}"
    return f"breaks the schema's {rule} rule"


def _validate(raw: object, path: Path) -> dict[str, Any]:
    import jsonschema  # lazy: 0.1 s to import; only reading a target file needs it

    # paths mix keys and list indices; compared as text so that sorting never compares a str with an int
    errors = sorted(jsonschema.Draft202012Validator(target_schema()).iter_errors(raw), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        err = errors[0]
        # every path component is a property the schema names or a list index (the schema has no map of
        # user-chosen keys), so naming the field quotes nothing of the file
        field = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise StretchError("bad-target-file", f"field {field}: {_schema_problem(err)}", file=str(path))
    return raw  # type: ignore[return-value]


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and why PyYAML refused the file, without the file's text: the parts of its problem it quotes from
    the file (a tag, an alias, a character run) are elided; grammar tokens (`<stream end>`, one character) stay."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or problem is None:
        return "not valid YAML"
    kept = _QUOTED.sub(lambda m: m.group(0) if len(m.group(1)) <= 2 or re.fullmatch(r"<[a-z ]+>", m.group(1)) else "'...'", problem)
    return f"not valid YAML: line {mark.line + 1}, column {mark.column + 1}: {kept}"


def load_target(spec: str) -> Target:
    """A known target by name, or a target file by path (anything ending in .yaml/.yml or containing '/')."""
    if spec.endswith((".yaml", ".yml")) or "/" in spec:
        path = Path(spec)
        if not path.is_file():
            raise StretchError("file-not-found", "target file does not exist", file=spec)
        data = _read_target(path)
    else:
        path = DATA_DIR / f"{spec}.yaml"
        if not path.is_file():
            raise StretchError("unknown-target", f"unknown target {spec!r}; known targets: {', '.join(known_targets())}")
        data = copy.deepcopy(_read_known_target(spec))  # a copy: callers may edit their target's raw data
    return Target(name=str(data["name"]), path=path, raw=data)


@lru_cache(maxsize=None)
def _read_known_target(name: str) -> dict[str, Any]:
    """The bundled target `name`, read and checked once per process (the package's data does not change while it
    runs; a target file given by path is read every time). Cached: callers must not modify it."""
    return _read_target(DATA_DIR / f"{name}.yaml")


def _read_target(path: Path) -> dict[str, Any]:
    """The target file at `path`, parsed and checked against the schema and the calibration sets."""
    if path.stat().st_size > MAX_TARGET_BYTES:
        raise StretchError("bad-target-file", f"larger than {MAX_TARGET_BYTES >> 20} MiB: not a target file", file=str(path))
    try:
        raw = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise StretchError("bad-target-file", f"not valid YAML: not UTF-8 text (byte {exc.start})", file=str(path)) from None
    except yaml.YAMLError as exc:
        raise StretchError("bad-target-file", _yaml_problem(exc), file=str(path)) from None
    data = _validate(raw, path)
    sets = read_calibration_sets()["sets"]
    if data["calibration"] not in sets and "measured" not in data:  # a measured target carries its own parameters
        # the value is the file's text: the field is named, the value is not quoted
        raise StretchError("bad-target-file", f"field calibration: not a known calibration set; known: {', '.join(sorted(sets))}", file=str(path))
    return data


@lru_cache(maxsize=2)
def read_calibration_sets(path: str = str(CALIBRATION_PATH)) -> dict[str, Any]:
    """The calibration sets file at `path` (the measured latencies the cost model is fitted to, one set of points
    per SoC), parsed and checked against its schema (`calibration_schema`). Cached: callers must not modify it."""
    import jsonschema  # lazy: as in _validate

    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise StretchError("bad-target-file", f"cannot read the calibration sets: {exc}", file=str(p)) from None
    errors = sorted(jsonschema.Draft202012Validator(calibration_schema()).iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        field = ".".join(str(part) for part in errors[0].absolute_path) or "(top level)"
        raise StretchError("bad-target-file", f"field {field}: {errors[0].message}", file=str(p))
    return raw  # type: ignore[no-any-return]
