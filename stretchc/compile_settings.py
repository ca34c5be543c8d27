"""`CompileSettings`: what the user asked of a compile that passes read, typed (the command line over stretchc.toml).

Passes read the settings from their context (`PassContext.settings`); the command line never edits pipeline text.
A dump records them (stretchc/reproducer.py) so that `stretchc opt` replays a pass with the settings it ran with.

- `precision`: the policy (`stretchc.precision.POLICIES`); `min_sqnr`: the accuracy bound the user gave (dB;
  None: the default of `auto`, `AUTO_MIN_SQNR`); `accuracy_bound` is what quantize-partitions holds `auto` to
  (0: no guard, as for the fixed policies);
- `io_dtype`: the dtype the bundle holds model inputs and outputs in;
- `calib`: calibration data (a `Path`, or the word `random`); `hold_out`: hold calibration samples out even when
  no guard measures on them (`--min-sqnr` measures the bundle on them); `calib_holdout`: how many (None: the
  default share); `preprocess`: image preprocessing (a `--preprocess` string or stretchc.toml's table);
- `on_ineligible`: what an op breaking the rules of the processor `--place` put it on does: fail, or move its
  region to the fallback processor;
- `emit`: extra outputs of emit-bundle (`nnstretch-tflite`);
- `backend_options`: per backend, its own options (`Backend.options`, e.g. the Hexagon dtype);
- `quantize`: whether the compile quantizes (its pipeline has a pass that makes int8 partitions,
  quantize-partitions): int8 is a choice of assign-delegates only then. The compile driver sets it from the whole
  pipeline once (`for_pipeline`), before any pass runs, so a pass does the same whether it runs in the compile or
  alone in a replay of its dump, which records it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from stretchc.backends import fallback

AUTO_MIN_SQNR = 30.0  # dB: --precision auto's accuracy bound unless --min-sqnr says otherwise
EMITS = ("nnstretch-tflite",)
QUANTIZE = "quantize"  # the capability of a pass that makes int8 partitions (`Pass.capabilities`, `quantize`)
IO_DTYPES = ("float32", "int8", "uint8")


def on_ineligible_choices() -> tuple[str, ...]:
    """`--on-ineligible`: fail, or move the region to the fallback processor (named by its processor)."""
    return ("error", fallback().name)


@dataclass(frozen=True)
class CompileSettings:
    """See the module docstring."""

    precision: str = "auto"
    min_sqnr: float | None = None
    io_dtype: str = "float32"
    calib: Path | str | None = None
    hold_out: bool = False
    calib_holdout: int | None = None
    preprocess: Any = None
    on_ineligible: str = "error"
    emit: tuple[str, ...] = ()
    backend_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    quantize: bool = True

    def for_pipeline(self, passes: Iterable[Any]) -> CompileSettings:
        """These settings for a compile running `passes`: `quantize` when one of them declares the capability
        (`Pass.capabilities`)."""
        return dataclasses.replace(self, quantize=any(QUANTIZE in p.capabilities for p in passes))

    @property
    def accuracy_bound(self) -> float:
        """The SQNR (dB) quantize-partitions holds `auto` to; 0 for a fixed policy (no guard)."""
        if self.precision != "auto":
            return 0.0
        return AUTO_MIN_SQNR if self.min_sqnr is None else float(self.min_sqnr)

    def options_of(self, backend: str) -> Mapping[str, str]:
        """The options the user gave backend `backend` (its defaults are the backend's own)."""
        return self.backend_options.get(backend, {})

    def to_record(self) -> dict[str, Any]:
        """The fields as plain values (JSON-like, a `Path` kept as it is), for dumps."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {
            "emit": list(self.emit),
            "backend_options": {b: dict(o) for b, o in self.backend_options.items()},
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CompileSettings:
        """The inverse of `to_record` (unknown fields refused with ValueError)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(record) - known)
        if unknown:
            raise ValueError(f"unknown compile setting(s) {', '.join(unknown)}")
        values = dict(record)
        if "emit" in values:
            values["emit"] = tuple(values["emit"])
        return cls(**values)
