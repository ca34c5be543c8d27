"""The Python API: compile a model into a bundle, run it and verify it, from Python (docs/api.md).

    import stretchc
    bundle = stretchc.compile("model.onnx", "build/model.stretch", target="pixel6")
    outputs = bundle.run({"input": x})
    report = bundle.verify("model.onnx")

What `stretchc compile`, `run` and `verify` do, as functions and typed values: the same passes, the same checks
and the same errors (`stretchc.errors.StretchError`, whose `code` and `exit_status` are the command line's). The
command line adds its configuration file (stretchc.toml), its debugging flags and its output; the API reads no
configuration file and prints nothing unless asked (`quiet=False`).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from stretchc.console import Console, get_console, set_console
from stretchc.errors import StretchError

__all__ = ["Bundle", "PartitionInfo", "Report", "TargetInfo", "compile", "list_targets"]

REPORT_FILE = "report.json"  # the placement report emit-bundle writes into a bundle


@dataclass(frozen=True)
class TargetInfo:
    """A phone stretchc compiles for: its name (what `target=` takes), description and processors."""

    name: str
    description: str
    processors: tuple[str, ...]


def list_targets() -> list[TargetInfo]:
    """Every known target, by name (`stretchc.targets` is the package that loads them)."""
    from stretchc.targets import known_targets, load_target

    out = []
    for name in known_targets():
        t = load_target(name)
        out.append(TargetInfo(name, t.description, tuple(t.processors)))
    return out


@dataclass(frozen=True)
class PartitionInfo:
    """One partition of a bundle: the regions it runs, where, at what precision, and its predicted time (ms)."""

    name: str
    processor: str
    precision: str
    regions: tuple[str, ...]
    predicted_ms: float


@dataclass(frozen=True)
class Report:
    """A bundle's placement report: the predicted latency (ms), the fastest single processor running the whole
    model as one partition and the predicted speedup over it, the partitions; `data` holds the whole report as
    `--report r.json` writes it (regions with their alternatives, timeline, accuracy guard)."""

    target: str
    predicted_latency_ms: float
    best_single: tuple[str, float] | None  # (processor, ms)
    speedup_over_best_single: float | None
    partitions: tuple[PartitionInfo, ...]
    data: Mapping[str, Any]

    @property
    def processors(self) -> tuple[str, ...]:
        """The processors the partitions run on, sorted."""
        return tuple(sorted({p.processor for p in self.partitions}))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Report:
        """The report of a placement report's JSON record."""
        best = record.get("best_single")
        return cls(
            target=record["target"],
            predicted_latency_ms=float(record["predicted_latency_ms"]),
            best_single=(best["processor"], float(best["ms"])) if best else None,
            speedup_over_best_single=record.get("speedup_over_best_single"),
            partitions=tuple(
                PartitionInfo(p["name"], p["processor"], p["precision"], tuple(p["regions"]), float(p["predicted_ms"])) for p in record["partitions"]
            ),
            data=record,
        )


class Bundle:
    """A compiled bundle on disk, checked when opened (checksums, manifest, partition models)."""

    def __init__(self, path: str | Path) -> None:
        from stretchc.runtime.host import HostRuntime

        self.path = Path(path)
        self._runtime = HostRuntime(self.path)
        self.manifest: Mapping[str, Any] = self._runtime.manifest
        report = self.path / REPORT_FILE
        self.report: Report | None = Report.from_record(json.loads(report.read_text())) if report.is_file() else None

    @property
    def inputs(self) -> dict[str, tuple[list[int], str]]:
        """The model inputs the bundle takes: name -> (shape, dtype), in ONNX layout."""
        return {i["name"]: (list(i["shape"]), i["dtype"]) for i in self.manifest["inputs"]}

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the bundle once on this machine (the host reference runtime, partitions of one stage concurrently):
        the model outputs by ONNX name, in ONNX layout. StretchError("bad-input-data") on a missing, unknown or
        mis-shaped input."""
        return self._runtime.run(dict(inputs))

    def verify(self, model: str | Path, *, inputs: list[dict[str, np.ndarray]] | None = None, samples: int | None = None, atol: float | None = None) -> Any:
        """Compare the bundle with the ONNX model under ONNX Runtime on the same inputs (`inputs`, or `samples`
        seeded random ones; `stretchc verify`'s defaults otherwise): a `stretchc.verify.VerifyReport` (`ok`,
        `checks` per output and sync point, `table()`)."""
        from stretchc.verify import DEFAULT_SAMPLES, verify_bundle

        return verify_bundle(self._runtime, Path(model), inputs=inputs, samples=samples or DEFAULT_SAMPLES, atol=atol)

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r})"


def compile(  # noqa: A001 - the verb the API is about, as `stretchc.compile`
    model: str | Path,
    output: str | Path,
    *,
    target: str = "pixel6",
    precision: str = "auto",
    calib: str | Path | None = None,
    min_sqnr: float | None = None,
    place: Mapping[str, str] | None = None,
    input_shapes: Mapping[str, list[int]] | None = None,
    verify: bool = False,
    quiet: bool = True,
) -> Bundle:
    """Compile ONNX `model` for `target` into the bundle directory `output`, as `stretchc compile` does.

    `precision`: "auto" (default: the fastest precision per partition that keeps `min_sqnr` dB, 30 by default;
    int8 only with `calib`), "float", "int8" (needs `calib`) or "fp16-gpu". `calib`: a folder of images, a .npy
    or .npz file, or "random". `place`: region -> processor overrides. `input_shapes`: input -> shape for
    dynamic dimensions. `verify`: verify the staged bundle against the model before installing it (a bundle that
    fails is not installed). Raises StretchError; on an error nothing is left at `output`.
    """
    from stretchc.driver import CompileOptions, compile_model
    from stretchc.quantize.calibration_data import check_calibration_options
    from stretchc.settings import CompileSettings

    if precision not in ("auto", "float", "int8", "fp16-gpu"):
        raise StretchError("usage", f"precision {precision!r}: expected auto, float, int8 or fp16-gpu")
    calib_arg = None if calib is None else str(calib)
    check_calibration_options(calib_arg, None)
    if precision == "int8" and calib_arg is None:
        raise StretchError("bad-calibration", "precision int8 quantizes, which needs calibration data: pass calib=DIR|FILE.npy|FILE.npz (or 'random')")
    settings = CompileSettings(
        precision=precision,
        min_sqnr=min_sqnr,
        calib=None if calib_arg is None else calib_arg if calib_arg == "random" else Path(calib_arg),
        hold_out=min_sqnr is not None and calib_arg not in (None, "random"),
    )
    options = CompileOptions(
        target=target, place=dict(place or {}), input_shapes={k: list(v) for k, v in (input_shapes or {}).items()}, settings=settings
    )
    if verify:
        options.check_bundle = _verified(Path(model))
    with _console(quiet):
        result = compile_model(model, output, options)
        return Bundle(result.output)


def _verified(model: Path) -> Any:
    """A pre-install check refusing a staged bundle that `verify` refuses."""

    def check(staging: Path, analyses: Any) -> None:
        from stretchc.verify import verify_staged

        verify_staged(staging, model, analyses).raise_if_failed()

    return check


@contextmanager
def _console(quiet: bool) -> Iterator[None]:
    """Diagnostics and progress on stderr unless `quiet`; the caller's console restored after."""
    import sys

    before = get_console()
    set_console(Console(quiet=quiet, stream=sys.stderr))
    try:
        yield
    finally:
        set_console(before)
