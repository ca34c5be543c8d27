"""The backends: one module per processor kind (`stretchc/backends/<name>.py`), found by listing this package.

A module defines a `Backend` subclass (stretchc/backends/base.py) and registers one instance with
`register_backend`. Adding a processor is adding a module (and its target data): the registry, and so every
generic pass, table and schema that asks it, picks it up. `backends()` lists them in their `order` (the
manifest's lanes, the reports, the preference of the policies); `fallback()` is the one every partition falls
back to.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from stretchc.backends.base import Backend

_REGISTERED: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Make `backend` known under its name (once)."""
    if not backend.name or backend.name in _REGISTERED:
        raise ValueError(f"backend name {backend.name!r} is empty or taken")
    _REGISTERED[backend.name] = backend
    return backend


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


__all__ = ["Backend", "backend", "backends", "fallback", "processors", "register_backend"]
