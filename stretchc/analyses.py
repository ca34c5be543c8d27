"""Typed analyses: the facts one pass records for later passes, the compile report and the driver.

An analysis is a dataclass registered with `@analysis` under a kebab-case `key`; a run holds at most one of each
kind (`Analyses`). A pass declares the analyses it needs (`Pass.needs`: the pipeline is refused when no earlier
pass produces them), those it reads when present (`Pass.uses`) and those it produces (`Pass.produces`). Fields are
plain values (JSON-like, numpy arrays, `Path`s), so a dump records them (stretchc/reproducer.py) and `stretchc opt`
replays a pass with the analyses it ran with.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Iterator, Mapping, TypeVar

from stretchc.errors import StretchError


class Analysis:
    """Base of the analyses (see the module docstring)."""

    key: ClassVar[str] = ""

    def to_record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


A = TypeVar("A", bound=Analysis)
_KINDS: dict[str, type[Analysis]] = {}


def analysis(cls: type[A]) -> type[A]:
    """Class decorator: register an analysis under its `key`."""
    if not cls.key or cls.key in _KINDS:
        raise ValueError(f"analysis key {cls.key!r} is empty or taken")
    _KINDS[cls.key] = cls
    return cls


def kind(key: str) -> type[Analysis]:
    """The analysis class registered under `key` (KeyError when none is)."""
    return _KINDS[key]


class Analyses:
    """The analyses of one run, at most one of each kind."""

    def __init__(self, items: list[Analysis] | None = None) -> None:
        self._items: dict[str, Analysis] = {}
        self._declared: tuple[str, frozenset[str], frozenset[str]] | None = None  # (pass, may read, may write)
        for item in items or []:
            self.put(item)

    @contextmanager
    def declared(self, by: str, reads: Iterable[str], writes: Iterable[str]) -> Iterator[None]:
        """While the block runs (pass `by`), reading an analysis outside `reads` and `writes` (its `needs`, `uses` and
        `produces` keys), or recording one outside `writes`, is StretchError("internal"): a pass's contract is what
        it does, not a comment."""
        before = self._declared
        self._declared = (by, frozenset(reads) | frozenset(writes), frozenset(writes))
        try:
            yield
        finally:
            self._declared = before

    def put(self, item: Analysis) -> None:
        """Record `item`, replacing the analysis of its kind."""
        if self._declared is not None and item.key not in self._declared[2]:
            raise StretchError("internal", f"pass {self._declared[0]} records the {item.key} analysis, which it does not declare in `produces`")
        self._items[item.key] = item

    def get(self, cls: type[A]) -> A | None:
        if self._declared is not None and cls.key not in self._declared[1]:
            raise StretchError("internal", f"pass {self._declared[0]} reads the {cls.key} analysis, which it does not declare in `needs` or `uses`")
        item = self._items.get(cls.key)
        return item if isinstance(item, cls) else None

    def require(self, cls: type[A], *, by: str) -> A:
        """The analysis of kind `cls`; StretchError("ir-invalid") naming what needs it when there is none."""
        item = self.get(cls)
        if item is None:
            raise StretchError("ir-invalid", f"{by} needs the {cls.key} analysis, which no earlier pass recorded")
        return item

    def __iter__(self) -> Iterator[Analysis]:
        return iter(self._items[k] for k in sorted(self._items))

    def __bool__(self) -> bool:
        return bool(self._items)


# ---------------------------------------------------------------------------------------------- the analyses


@analysis
@dataclass(frozen=True)
class Placement(Analysis):
    """assign-delegates' result: the processor of every region, the regions `--place` fixed, the regions moved
    off the processor they were placed on because an op broke its rules (region -> the rules), and, with a
    target, the placement report (`stretchc.costmodel.placement.plan`; what `--report`, `explain` and report.json
    show) and its predicted latency. quantize-partitions reprices it at the final precisions."""

    key = "placement"
    placement: dict[str, str]
    overrides: list[str]
    moved: dict[str, list[str]] = field(default_factory=dict)
    report: dict[str, Any] | None = None

    @property
    def predicted_latency_ms(self) -> float | None:
        return None if self.report is None else float(self.report["predicted_latency_ms"])


@analysis
@dataclass(frozen=True)
class HeldOutInputs(Analysis):
    """Calibration samples quantize-partitions held out of calibration (model feeds, ONNX layout): what the
    accuracy guard and `--min-sqnr` measure on."""

    key = "held-out-inputs"
    feeds: list[dict[str, Any]]


@analysis
@dataclass(frozen=True)
class Quantization(Analysis):
    """quantize-partitions' report: how many samples calibrated, from where, how many were held out, per quantized
    partition its ops, weights, dtype and precision (and whether it moved to the fallback processor), and the
    planned conversions."""

    key = "quantization"
    samples: int
    source: str
    held_out: int | None
    partitions: dict[str, dict[str, Any]]
    conversions: list[Any]


@analysis
@dataclass(frozen=True)
class AccuracyGuard(Analysis):
    """The accuracy guard of `--precision auto`: the bound, what it measured on, each output's SQNR (None: inf), the
    partitions it demoted to float in place (with why), and the choices (partition, processor, precision, why) it
    rejected before the plan was decided again without them."""

    key = "accuracy-guard"
    min_sqnr: float
    inputs: int
    measured_on: str
    sqnr_db: dict[str, float | None]
    demoted: list[dict[str, str]]
    rejected: list[dict[str, str]] = field(default_factory=list)  # choices taken out of the plan, which was decided again


@analysis
@dataclass(frozen=True)
class Arena(Analysis):
    """insert-sync-points' buffer plan in bytes, and the bytes of the same plan with every slot float32."""

    key = "arena"
    bytes: int
    float_bytes: int


@analysis
@dataclass(frozen=True)
class Manifest(Analysis):
    """The manifest emit-bundle wrote (the JSON document)."""

    key = "manifest"
    document: dict[str, Any]


def from_record(key: str, record: Mapping[str, Any]) -> Analysis:
    """The analysis of kind `key` with the fields of `record` (ValueError / KeyError on a mismatch)."""
    cls = kind(key)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if set(record) - names:
        raise ValueError(f"analysis {key}: unknown field(s) {', '.join(sorted(set(record) - names))}")
    return cls(**record)
