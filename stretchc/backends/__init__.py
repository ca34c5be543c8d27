"""The backends: one module or package per processor kind (`stretchc/backends/<name>.py`, or `<name>/` when the
backend has rules of its own to keep beside it, as the DSP's `dsp/`), found by listing this package.

A backend's module (a package's `__init__.py`) defines a `Backend` subclass (stretchc/backends/base.py) and
registers one instance with `register_backend`. Adding a processor is adding a module (and its target data): the
registry, and so every generic pass, table and schema that asks it, picks it up. `backends()` lists them in their
`order` (the manifest's lanes, the reports, the preference of the policies); `fallback()` is the one every
partition falls back to.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from stretchc.backends.base import Backend

_REGISTERED: dict[str, Backend] = {}


# What every backend must define itself (the base class has no default for them): its class attributes, and the
# methods the base class leaves to it (the cost model's, and the CPU threads for the fallback).
REQUIRED_ATTRIBUTES = ("name", "label", "delegate", "order", "PRECISIONS", "section_schema", "kernel_priors", "dispatch_ms")
REQUIRED_METHODS = ("execution", "peak_gops")


def register_backend(backend: Backend) -> Backend:
    """Make `backend` known under its name (once), after checking it keeps the `Backend` contract
    (`contract_problems`): a backend that does not is refused here, not where a pass first asks it."""
    problems = contract_problems(backend)
    if problems:
        raise TypeError(f"backend {type(backend).__name__} does not keep the Backend contract: {'; '.join(problems)}")
    if backend.name in _REGISTERED:
        raise ValueError(f"backend name {backend.name!r} is taken")
    _REGISTERED[backend.name] = backend
    return backend


def contract_problems(backend: Backend) -> list[str]:
    """What `backend` lacks or gets wrong of the `Backend` contract (stretchc/backends/base.py), each in a few words."""
    kind = type(backend)
    problems = [f"no {a}" for a in REQUIRED_ATTRIBUTES if not hasattr(backend, a)]
    problems += [f"{m}() not defined" for m in REQUIRED_METHODS if getattr(kind, m, None) is getattr(Backend, m)]
    if backend.fallback and getattr(kind, "threads") is getattr(Backend, "threads"):
        problems.append("the fallback backend must define threads()")
    if problems:
        return problems
    if not isinstance(backend.name, str) or not backend.name.isidentifier() or backend.name != backend.name.lower():
        problems.append(f"name {backend.name!r} is not a lower-case identifier")
    if not isinstance(backend.order, int):
        problems.append(f"order {backend.order!r} is not an int")
    if not backend.PRECISIONS or not all(isinstance(q, str) for q in backend.PRECISIONS):
        problems.append("PRECISIONS is not a non-empty tuple of precision names")
    if not isinstance(backend.dispatch_ms, (int, float)) or backend.dispatch_ms < 0:
        problems.append(f"dispatch_ms {backend.dispatch_ms!r} is not a non-negative number")
    if not all(isinstance(v, (int, float)) for priors in backend.kernel_priors.values() for v in priors.values()):
        problems.append("kernel_priors is not a mapping of kernel families to numeric parameters")
    if not isinstance(backend.section_schema, dict):
        problems.append("section_schema is not a JSON schema (a dict)")
    return problems


@lru_cache(maxsize=1)
def backends() -> tuple[Backend, ...]:
    """Every backend, in `order`."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")
    found = tuple(sorted(_REGISTERED.values(), key=lambda b: (b.order, b.name)))
    if sum(b.fallback for b in found) != 1:
        raise RuntimeError("exactly one backend must be the fallback")
    return found


def processors() -> tuple[str, ...]:
    """The processor names, in backend order."""
    return tuple(b.name for b in backends())


def backend(name: str) -> Backend:
    """The backend of processor `name` (KeyError for an unknown one)."""
    for b in backends():
        if b.name == name:
            return b
    raise KeyError(name)


def fallback() -> Backend:
    """The backend every partition can fall back to, and that runs what no other can."""
    return next(b for b in backends() if b.fallback)


__all__ = ["Backend", "backend", "backends", "contract_problems", "fallback", "processors", "register_backend"]
