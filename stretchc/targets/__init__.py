"""The target database: one YAML file per phone in `data/`, validated against the target schema the backends
compose (stretchc/targets/schema.py; written out as `schemas/target.schema.json`).

`load_target(spec)` takes a known name (`pixel6`) or a path to a user's YAML file and returns a `Target`.
Unknown names list the known ones; invalid files name the offending field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stretchc.errors import StretchError

DATA_DIR = Path(__file__).with_name("data")


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
        from stretchc.backends import backends

        return tuple(b.name for b in backends() if b.unavailable(self) is None)

    def unavailable(self, processor: str) -> str | None:
        """None when bundles for this phone can use `processor`, else why not (a sentence naming the target)."""
        from stretchc.backends import backend

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


def _validate(raw: object, path: Path) -> dict[str, Any]:
    import jsonschema

    from stretchc.targets.schema import target_schema

    errors = sorted(jsonschema.Draft202012Validator(target_schema()).iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        field = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise StretchError("bad-target-file", f"field {field}: {err.message}", file=str(path))
    return raw  # type: ignore[return-value]


def load_target(spec: str) -> Target:
    """A known target by name, or a target file by path (anything ending in .yaml/.yml or containing '/')."""
    if spec.endswith((".yaml", ".yml")) or "/" in spec:
        path = Path(spec)
        if not path.is_file():
            raise StretchError("file-not-found", "target file does not exist", file=spec)
    else:
        path = DATA_DIR / f"{spec}.yaml"
        if not path.is_file():
            raise StretchError("unknown-target", f"unknown target {spec!r}; known targets: {', '.join(known_targets())}")
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise StretchError("bad-target-file", f"not valid YAML: {str(exc).splitlines()[0]}", file=str(path)) from None
    data = _validate(raw, path)
    from stretchc.costmodel.calibration import load_calibration

    sets = load_calibration().sets
    if data["calibration"] not in sets:
        raise StretchError(
            "bad-target-file", f"field calibration: unknown calibration set {data['calibration']!r}; known: {', '.join(sorted(sets))}", file=str(path)
        )
    return Target(name=str(data["name"]), path=path, raw=data)
