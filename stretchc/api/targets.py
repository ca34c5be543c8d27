"""The phones a bundle can be compiled for, as the API gives them (`stretchc targets`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from stretchc.backends import Backend, backends
from stretchc.targets import Target, known_targets, load_target


@dataclass(frozen=True)
class BackendInfo:
    """A backend (processor) on one target: what it is there (`description`), or why the target cannot use it
    (`unavailable`, a phrase following the target's name); exactly one of the two is None."""

    name: str
    delegate: str
    description: str | None
    unavailable: str | None


@dataclass(frozen=True)
class TargetInfo:
    """A phone stretchc compiles for: its name (what `target=` takes), description, the processors its bundles can
    use, every backend (`BackendInfo`, in backend order) and `data`, the target file's contents as validated."""

    name: str
    description: str
    processors: tuple[str, ...]
    backends: tuple[BackendInfo, ...]
    data: Mapping[str, Any]


def _backend_info(b: Backend, t: Target) -> BackendInfo:
    why = b.unavailable(t)
    return BackendInfo(b.name, b.delegate, b.describe(t) if why is None else None, why)


def get_target(name: str) -> TargetInfo:
    """A known target by name, or a target YAML file by path; StretchError (`unknown-target`, `file-not-found`,
    `bad-target-file`) otherwise."""
    t = load_target(name)
    return TargetInfo(t.name, t.description, tuple(t.processors), tuple(_backend_info(b, t) for b in backends()), t.raw)


def list_targets() -> list[TargetInfo]:
    """Every known target, by name."""
    return [get_target(name) for name in known_targets()]
