"""The Python API: compile a model into a bundle, run it and verify it, from Python (docs/api.md).

    import stretchc
    bundle = stretchc.compile("model.onnx", "build/model.stretch", target="pixel6")
    outputs = bundle.run({"input": x})
    report = bundle.verify("model.onnx")

What `stretchc compile`, `run`, `verify` and `targets` do, as functions and typed values; the command line is a
layer over this module (stretchc/commands/), so both make the same checks, in one place (here or below), and raise
the same errors (`stretchc.errors.StretchError`, whose `code` and `exit_status` are the command line's; messages
name an option as the command line spells it, `--calib` for `calib=`, as the layers below do). The command line
adds its configuration file (stretchc.toml), argument parsing and its output (tables, `--diagnostics=json`, exit
statuses); the API reads no configuration file and prints nothing unless asked (`quiet=False`).
"""

from __future__ import annotations

import dataclasses
import re
import sys
import tempfile
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import yaml

from stretchc.analyses import Analyses, HeldOutInputs
from stretchc.backends import Backend, backends
from stretchc.bisect import NumericBisect, Row
from stretchc.bundle.describe import describe
from stretchc.bundle.manifest import compiled_shapes
from stretchc.bundle.validate import CheckedBundle, validate_bundle
from stretchc.compile_settings import EMITS, IO_DTYPES, CompileSettings, on_ineligible_choices
from stretchc.console import Console, get_console, set_console
from stretchc.costmodel.accuracy import TargetAccuracy, accuracy
from stretchc.costmodel.microbench import KERNELS, measure, target_data
from stretchc.costmodel.placement_report import explain, read_report
from stretchc.driver import (
    CompileOptions, CompileResult, LoadedModel, check_output_dir, check_output_file, check_output_path, check_outside_output, compile_model,
    default_pipeline, instruments_for, load_module, make_context, staged_bundle, validate_staged,
)
from stretchc.dumps import CONSTANTS, DumpIR, announce_failure, copy_dump, dump_text, replay_command, snapshot
from stretchc.errors import StretchError
from stretchc.digits.data import data_files
from stretchc.digits.export import trained_model
from stretchc.examples import example_model, stretchy_model
from stretchc.fileio import write_atomically
from stretchc.frontend.module import onnx_inputs
from stretchc.frontend.validate import load_model
from stretchc.ir import Module
from stretchc.modelbuild import as_timed, load_config, placement_regions
from stretchc.modelbuild import build_model as build_onnx_model
from stretchc.modelbuild.config import Config
from stretchc.modelbuild.onnx_builder import unbranched_placement_notes
from stretchc.irtext import HEADER, ConstantStore, has_missing_constants, parse_module, print_module
from stretchc.passmanager import PassManager, check_requirements, parse_pipeline, registry
from stretchc.precision import POLICIES
from stretchc.quantize.calibration_data import check_calibration_options, find_bad_value, load_calibration_data, parse_preprocess, read_npy
from stretchc.quantize.guard import MIN_SQNR_RANDOM_SAMPLES, MIN_SQNR_RANDOM_SEED
from stretchc.reproducer import Recorder, Reproducer, replay_context
from stretchc.resource_limits import ResourceLimits
from stretchc.runtime.host import DEFAULT_STALL_TIMEOUT, HostRuntime, Profile
from stretchc.targets import Target, known_targets, load_target
from stretchc.targets.host import HOST_TARGET, MEASURED_HEADER, last_level_cache_mb
from stretchc.targets.host import describe as describe_host
from stretchc.verify import DEFAULT_SAMPLES, VerifyReport, seeded_feed, seeded_inputs, verify_bundle, verify_staged

__all__ = [
    "Alternative", "BackendInfo", "Bisection", "Bundle", "BuiltModel", "PassInfo", "WrittenExample", "CompiledBundle", "Debug", "Options", "PartitionInfo", "Profile", "RegionInfo", "Report",
    "Replayed", "TargetAccuracy", "TargetInfo", "TimelineEntry", "VerifyReport", "bisect_passes", "build_model", "calibrate", "check_verify_data", "compile", "cost_model_accuracy", "default_pipeline", "driver_options", "get_target", "list_passes", "list_targets",
    "is_stretchc_model", "opt", "read_array", "write_example",
]

REPORT_FILE = "report.json"  # the placement report emit-bundle writes into a bundle

ArrayOrFile = np.ndarray | str | Path  # an array, or a .npy file holding it


# ---- targets ------------------------------------------------------------------------------------------------------


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


# ---- the placement report -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionInfo:
    """One partition of a bundle: the regions it runs, where, at what precision, its predicted time (ms) and `why`
    its regions share it (what splitting it, or merging it with another, is predicted to cost)."""

    name: str
    processor: str
    precision: str
    regions: tuple[str, ...]
    predicted_ms: float
    why: str


@dataclass(frozen=True)
class Alternative:
    """A processor and precision a region may take, priced: the region's own predicted time there (`region_ms`) and
    the whole model's with the region there and every other region as placed (`total_ms`)."""

    processor: str
    precision: str
    region_ms: float
    total_ms: float


@dataclass(frozen=True)
class RegionInfo:
    """One region (`stem`, `s1.b0`, `s1.join`, `head`, `main`, ...): where it runs and at what precision, why
    (`why`, `precision_why`; `override`: `place=` put it there; `limit`: the target limit that moved it, if one did),
    its predicted time (ms) and ops, every processor and precision it was priced at (`alternatives`, the chosen one
    among them) and, by processor, why it may not run on the others (`ineligible`)."""

    name: str
    kind: str
    processor: str
    precision: str
    predicted_ms: float
    ops: int
    why: str
    precision_why: str
    override: bool
    limit: str | None
    alternatives: tuple[Alternative, ...]
    ineligible: Mapping[str, str]

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> RegionInfo:
        """The region of one entry of a placement report's `regions`."""
        alts = r["alternatives"]
        return cls(
            name=r["region"], kind=r["kind"], processor=r["processor"], precision=r["precision"], predicted_ms=float(r["predicted_ms"]),
            ops=int(r["ops"]), why=r["why"], precision_why=r["precision_why"], override=bool(r["override"]), limit=r["limit"],
            alternatives=tuple(
                Alternative(p, q, float(t["region_ms"]), float(t["total_ms"])) for p, a in alts.items() for q, t in a.get("precisions", {}).items()
            ),
            ineligible={p: a["reason"] for p, a in alts.items() if not a["eligible"]},
        )


@dataclass(frozen=True)
class TimelineEntry:
    """One partition in the predicted timeline of a run: where it runs, its regions, and when it starts and ends
    (ms from the start of the run)."""

    partition: str
    processor: str
    precision: str
    regions: tuple[str, ...]
    start_ms: float
    end_ms: float


@dataclass(frozen=True)
class Report:
    """A bundle's placement report: the predicted latency (ms), the fastest single processor running the whole
    model as one partition and the predicted speedup over it, the partitions, the regions (with their alternatives)
    and the predicted timeline; `data` holds the whole report as `--report r.json` writes it (edges, limits, the
    accuracy guard's rejections and measurements, the cost model's evidence)."""

    target: str
    predicted_latency_ms: float
    best_single: tuple[str, float] | None  # (processor, ms)
    speedup_over_best_single: float | None
    partitions: tuple[PartitionInfo, ...]
    regions: tuple[RegionInfo, ...]
    timeline: tuple[TimelineEntry, ...]
    data: Mapping[str, Any]

    @property
    def processors(self) -> tuple[str, ...]:
        """The processors the partitions run on, sorted."""
        return tuple(sorted({p.processor for p in self.partitions}))

    @property
    def placement(self) -> dict[str, str]:
        """Region -> the processor it runs on."""
        return {r.name: r.processor for r in self.regions}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Report:
        """The report of a placement report's JSON record (costmodel/placement.py writes it)."""
        best = record["best_single"]
        return cls(
            target=record["target"],
            predicted_latency_ms=float(record["predicted_latency_ms"]),
            best_single=(best["processor"], float(best["ms"])) if best else None,
            speedup_over_best_single=record["speedup_over_best_single"],
            partitions=tuple(
                PartitionInfo(p["name"], p["processor"], p["precision"], tuple(p["regions"]), float(p["predicted_ms"]), p["why"])
                for p in record["partitions"]
            ),
            regions=tuple(RegionInfo.from_record(r) for r in record["regions"]),
            timeline=tuple(
                TimelineEntry(t["partition"], t["processor"], t["precision"], tuple(t["regions"]), float(t["start_ms"]), float(t["end_ms"]))
                for t in record["timeline"]
            ),
            data=record,
        )


# ---- bundles ------------------------------------------------------------------------------------------------------


def read_array(name: str, value: ArrayOrFile, flag: str) -> np.ndarray:
    """The array given for input `name` (by `flag`, which messages name: `--input`, `--const-input`): `value` itself,
    or read from the .npy file `value` (a regular file holding one array; missing: `file-not-found`). Floating-point
    values are checked as calibration data is (stretchc/quantize/calibration_data.py: no NaN, infinity or value far
    outside the rest); anything wrong is `bad-input-data`, naming the file."""
    file = None
    if isinstance(value, np.ndarray):
        arr = value
    else:
        file = str(value)
        if not Path(value).exists():
            raise StretchError("file-not-found", f"input file for {name!r} does not exist", file=file)
        arr = read_npy(Path(value), "bad-input-data")
    bad = find_bad_value([arr])
    if bad is not None:
        raise StretchError("bad-input-data", f"{flag} {name}: {bad.describe()}; fix the array", file=file)
    return arr


def _arrays(given: Mapping[str, ArrayOrFile] | None, flag: str) -> dict[str, np.ndarray]:
    return {name: read_array(name, value, flag) for name, value in (given or {}).items()}


def check_verify_data(data: str | Path | None, preprocess: str | None, *, arrays: bool) -> None:
    """`Bundle.verify`'s `data` and `preprocess` checked before any work, as compile checks `--calib` and
    `--preprocess`: the preprocessing parses, the data exists, and preprocessing is given only for `data` images.
    Without `data` the inputs are `inputs` arrays (`arrays`) or seeded random ones, fed as they are: preprocessing
    that would not happen is a usage error, and so are both `data` and `inputs` (one would be ignored)."""
    if data is not None and arrays:
        raise StretchError("usage", "give the inputs as arrays (--input) or as data (--input-dir), not both: one of them would be ignored")
    check_calibration_options(None if data is None else str(data), preprocess)
    pre = parse_preprocess(preprocess)
    if pre.given and not data:
        fed = "the --input arrays" if arrays else "seeded random inputs"
        raise pre.error(f"preprocessing applies to --input-dir images; {fed} are fed as they are (drop --preprocess, or give --input-dir)")


class Bundle:
    """A compiled bundle on disk, checked when opened (checksums, manifest, partition models). Notes and warnings of
    its work (opening, running, verifying it) go to `console`, by default to a console on stderr that prints notes
    only with `quiet=False`."""

    def __init__(self, path: str | Path, *, quiet: bool = True, console: Console | None = None) -> None:
        self.path = Path(path)
        self._console = _console_for(quiet, console)
        self._runtime: HostRuntime | None = None
        self._checked: CheckedBundle | None = validate_bundle(self.path)
        self.manifest: Mapping[str, Any] = self._checked.manifest

    def _host(self) -> HostRuntime:
        """The bundle loaded into the host reference runtime (once, on first use: opening a bundle to read it, as
        `describe` and `explain` do, loads no runtime)."""
        if self._runtime is None:
            with _reporting(self._console):
                self._runtime = HostRuntime(self.path, self._checked)
            self._checked = None  # the runtime holds what it needs of it
        return self._runtime

    @cached_property
    def report(self) -> Report | None:
        """The placement report the bundle holds (report.json), None when its pipeline wrote none;
        StretchError("bad-bundle") when it is not a placement report."""
        path = self.path / REPORT_FILE
        return Report.from_record(read_report(path)) if path.is_file() else None

    def explain(self, region: str | None = None) -> str:
        """Why `region` (`s1.b0`, `stem`, `s1.join`, `head`, `main`, ...; every region when None) runs where it runs,
        as `stretchc explain` prints it: its processor and why, its precision and why, the partition it shares and
        what splitting it would cost, the precisions the accuracy guard rejected, its predicted time and every
        alternative processor and precision priced (or why it is not eligible). StretchError("bad-bundle") when the
        bundle holds no placement report, ("unknown-branch") when it has no such region."""
        if self.report is None:
            raise StretchError("bad-bundle", "the bundle has no report.json (compiled without a placement report?)", file=str(self.path / REPORT_FILE))
        names = [region] if region else [r.name for r in self.report.regions]
        return "\n".join(explain(dict(self.report.data), r) for r in names)

    def describe(self) -> str:
        """What the bundle contains, as `stretchc inspect` prints it: inputs and outputs, partitions (with why their
        regions share them, when the bundle holds a placement report), sync points, the buffer plan, the schedule."""
        grouping = {p.name: p.why for p in self.report.partitions} if self.report is not None else {}
        return describe(dict(self.manifest), grouping)

    @property
    def inputs(self) -> dict[str, tuple[list[int], str]]:
        """The model inputs the bundle takes: name -> (shape, dtype), in ONNX layout."""
        return {i["name"]: (list(i["shape"]), i["dtype"]) for i in self.manifest["inputs"]}

    @property
    def outputs(self) -> dict[str, tuple[list[int], str]]:
        """The model outputs the bundle gives: name -> (shape, dtype), in ONNX layout."""
        return {o["name"]: (list(o["shape"]), o["dtype"]) for o in self.manifest["outputs"]}

    def random_inputs(self, seed: int) -> dict[str, np.ndarray]:
        """Seeded random inputs (what `stretchc run --seed` feeds): the same seed gives the same arrays."""
        return seeded_inputs(dict(self.manifest), seed)

    def run(self, inputs: Mapping[str, np.ndarray], *, profile: Profile | None = None, stall_timeout: float = DEFAULT_STALL_TIMEOUT) -> dict[str, np.ndarray]:
        """Run the bundle once on this machine (the host reference runtime, partitions of one stage concurrently):
        the model outputs by ONNX name, in ONNX layout. `profile` is filled with the times of the run (per partition
        and sync point). StretchError("bad-input-data") on a missing, unknown or mis-shaped input; "run-stalled"
        when no partition starts or finishes for `stall_timeout` seconds."""
        runtime = self._host()
        with _reporting(self._console):
            return runtime.run(dict(inputs), profile=profile, stall_timeout=stall_timeout)

    def verify(
        self,
        model: str | Path,
        *,
        inputs: list[dict[str, np.ndarray]] | None = None,
        data: str | Path | None = None,
        preprocess: str | None = None,
        samples: int = DEFAULT_SAMPLES,
        seed: int = 0,
        atol: float | None = None,
        rtol: float = 0.0,
        min_sqnr: float | None = None,
        const_inputs: Mapping[str, ArrayOrFile] | None = None,
    ) -> VerifyReport:
        """Compare the bundle with the ONNX model under ONNX Runtime on the same inputs, as `stretchc verify` does:
        `inputs` (feeds in ONNX layout), or `data` (calibration-style: a folder of images, with `preprocess`, a
        .npy or a .npz; a .npz with `labels` adds top-1 accuracy; not both, StretchError "usage"), else `samples` seeded random inputs from `seed`. Tolerance: `atol` (default 1e-4 x
        max|reference|) and `rtol`, or an SQNR bound `min_sqnr` (dB; the default for bundles with int8 partitions).
        `const_inputs`: the values the compile fixed (arrays or .npy files, as given to it). Returns the
        `stretchc.verify.VerifyReport` (`ok`, `checks` per output and sync point, `table()`); a failing comparison
        is a report, not an error (`raise_if_failed()` makes it one)."""
        check_verify_data(data, preprocess, arrays=inputs is not None)
        runtime = self._host()
        with _reporting(self._console):
            labels = None
            if data:
                onnx_model = load_model(model, compiled_shapes=compiled_shapes(dict(self.manifest)))
                loaded = load_calibration_data(str(data), onnx_inputs(onnx_model), preprocess=preprocess)
                inputs, labels = loaded.samples, loaded.labels
            return verify_bundle(
                runtime, Path(model), inputs=inputs, samples=samples, seed=seed, atol=atol, rtol=rtol, min_sqnr=min_sqnr,
                labels=labels, labels_source=str(data or ""), const_inputs=_arrays(const_inputs, "--const-input"),
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class CompiledBundle(Bundle):
    """What `compile` returns: the bundle it installed, with the driver's `compile_result` (the module, the pipeline
    as run, the passes' analyses and timings) and, with `verify=True`, the report of the verification that let it be
    installed (`verification`)."""

    def __init__(self, result: CompileResult, verification: VerifyReport | None, console: Console) -> None:
        # Not Bundle.__init__: the driver checked the bundle before installing it, and loading its partitions into
        # the host runtime costs time (and prints host-runtime notes) that a compile which never runs it should not.
        self.path = Path(result.output)
        self._console = console
        self._runtime = None
        self._checked = None
        self.manifest = result.manifest
        self.compile_result = result
        self.verification = verification


# ---- compiling ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What a compile can be asked, with `stretchc compile`'s defaults; a field is the flag of that name (docs/api.md).

    `precision`: "auto" (the fastest precision per partition that keeps `min_sqnr` dB, 30 by default; int8 only
    with `calib`), "float", "int8" (needs `calib`) or "fp16-gpu". `calib`: a folder of images (with `preprocess`:
    a `--preprocess` string, or a table as stretchc.toml's `[preprocessing]`; `config` names the file a table came
    from in its errors, the API reads none), a .npy or .npz file, or "random".
    `min_sqnr` (dB), under any policy: a bundle whose outputs fall below it against the model is not installed;
    `calib_holdout`: how many calibration samples it measures on (default 20%). `io_dtype`: the dtype the bundle holds
    model inputs and outputs in (int8 and uint8 need `calib`). `place`: region -> processor overrides;
    `place_from_model`: the placement the model records. `input_shapes`: input -> shape for dynamic dimensions.
    `const_inputs`: input -> its value (an array or a .npy file), fixed at compile time. `pipeline`: the pass
    pipeline (None: the default). `on_ineligible`: "error", or the fallback processor's name to move a region whose
    op its processor cannot run. `backend_options`: backend -> its options (`Backend.options`). `emit`: extra
    outputs ("nnstretch-tflite"). `limits`: the resource limits checked before lowering. `cache`: the lowering
    cache. `verify`: compare the staged bundle with the model before installing it (`atol`, `rtol` as
    `Bundle.verify`); a bundle that fails is not installed.
    """

    target: str = "pixel6"
    precision: str = "auto"
    calib: str | Path | None = None
    preprocess: str | Mapping[str, Any] | None = None
    config: Path | None = None
    min_sqnr: float | None = None
    calib_holdout: int | None = None
    io_dtype: str = "float32"
    place: Mapping[str, str] = field(default_factory=dict)
    place_from_model: bool = False
    input_shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    const_inputs: Mapping[str, ArrayOrFile] = field(default_factory=dict)
    pipeline: str | None = None
    on_ineligible: str = "error"
    backend_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    emit: tuple[str, ...] = ()
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    cache: bool = True
    verify: bool = False
    atol: float | None = None
    rtol: float = 0.0


@dataclass(frozen=True)
class Debug:
    """Pass-debugging instruments, as `stretchc compile`'s flags of the same names: replayable IR dumps in
    `dump_dir`, the IR printed before or after the named passes or after every pass that changed it, every pass
    timed. The fields are the driver's (`stretchc.driver.CompileOptions`) of the same names."""

    dump_dir: Path | None = None  # a str is taken as a path
    print_ir_after: frozenset[str] = frozenset()
    print_ir_before: frozenset[str] = frozenset()
    print_ir_after_change: bool = False
    time_passes: bool = False

    def __post_init__(self) -> None:
        if self.dump_dir is not None:
            object.__setattr__(self, "dump_dir", Path(self.dump_dir))  # frozen: the one normalisation, at construction

    def check(self) -> None:
        """Refuse unknown pass names and an unwritable dump folder, before any work."""
        known = registry()
        for flag, names in (("--print-ir-after", self.print_ir_after), ("--print-ir-before", self.print_ir_before)):
            for name in sorted(names):
                if name not in known:
                    raise StretchError("unknown-pass", f"{flag} names unknown pass {name!r}; known passes: {', '.join(known)}")
        if self.dump_dir is not None:
            check_output_dir(Path(self.dump_dir))


def _check_choice(option: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise StretchError("usage", f"{option} {value!r}: expected one of {', '.join(choices)}")


def _check_options(options: Options) -> None:
    """What the options ask checked before any work: values, calibration data and the options that need it, and
    the accuracy bound's hold-out. With a `calib` data set, quantize-partitions holds its last `calib_holdout`
    samples (default 20%, at least 1) out of calibration, measures `precision="auto"` on them and hands them to the
    pre-install check of `min_sqnr`; with "random" (or no `calib`) both measure on seeded random inputs that
    calibration never saw."""
    _check_choice("--precision", options.precision, POLICIES)
    _check_choice("--io-dtype", options.io_dtype, IO_DTYPES)
    _check_choice("--on-ineligible", options.on_ineligible, on_ineligible_choices())
    for emit in options.emit:
        _check_choice("--emit", emit, EMITS)
    calib = None if options.calib is None else str(options.calib)
    check_calibration_options(calib, options.preprocess, config=options.config)
    if not calib and (options.precision == "int8" or options.io_dtype != "float32"):
        flag = "--precision int8" if options.precision == "int8" else f"--io-dtype {options.io_dtype}"
        raise StretchError("bad-calibration", f"{flag} quantizes, which needs calibration data: pass --calib DIR|FILE.npy|FILE.npz (or --calib random, which costs accuracy)")
    if options.calib_holdout is not None:
        if options.min_sqnr is None and options.precision != "auto":
            raise StretchError("usage", "--calib-holdout only matters with --min-sqnr or --precision auto (the held-out samples are what they measure on)")
        if not calib or calib == "random":
            raise StretchError("usage", "--calib-holdout needs a --calib data set; with --calib random, --min-sqnr measures on seeded random inputs")


def _compile_settings(options: Options) -> CompileSettings:
    """What the passes read, of checked options."""
    calib = None if options.calib is None else str(options.calib)
    dataset = bool(calib) and calib != "random"
    return CompileSettings(
        precision=options.precision,
        min_sqnr=options.min_sqnr,
        io_dtype=options.io_dtype,
        # a data source (a Path): a recorded dependency, and recorded by digest in dumps
        calib=None if not calib else calib if calib == "random" else Path(calib),
        hold_out=options.calib_holdout is not None or (options.min_sqnr is not None and dataset),
        calib_holdout=options.calib_holdout,
        preprocess=options.preprocess,
        on_ineligible=options.on_ineligible,
        emit=tuple(sorted(set(options.emit))),
        backend_options={b: dict(o) for b, o in options.backend_options.items()},
    )


def driver_options(options: Options, model: str | Path, debug: Debug | None = None) -> CompileOptions:
    """The compile driver's options for compiling `model` as `options` and `debug` ask, checked (every check
    `compile` makes before the driver's own): what `compile` runs, and what `stretchc bisect` (which runs the passes
    itself) starts from. With `min_sqnr`, the driver's pre-install check refuses a bundle below it."""
    _check_options(options)
    const_files = {name: str(v) for name, v in options.const_inputs.items() if not isinstance(v, np.ndarray)}
    const_inputs = _arrays(options.const_inputs, "--const-input")
    debug = debug or Debug()
    debug.check()
    return CompileOptions(
        target=options.target,
        pipeline=options.pipeline,
        place=dict(options.place),
        place_from_model=options.place_from_model,
        input_shapes={k: list(v) for k, v in options.input_shapes.items()},
        const_inputs=const_inputs,
        const_input_files=const_files,
        use_cache=options.cache,
        limits=options.limits,
        settings=_compile_settings(options),
        check_bundle=_min_sqnr_check(Path(model), options.min_sqnr) if options.min_sqnr is not None else None,
        **dataclasses.asdict(debug),
    )


def _min_sqnr_check(model: Path, min_sqnr: float) -> Any:
    """The compile driver's pre-install check for `min_sqnr`: a bundle below it is never installed (its table is
    printed on the console either way)."""

    def check(staging: Path, analyses: Analyses) -> None:
        console = get_console()
        held = analyses.get(HeldOutInputs)
        held_out = held.feeds if held is not None else None
        if held_out:
            console.note("min-sqnr", f"--min-sqnr: measured on {len(held_out)} calibration sample(s) held out of calibration (the last ones of --calib; --calib-holdout)")
            result = verify_bundle(staging, model, inputs=held_out, min_sqnr=min_sqnr)
        else:
            console.note("min-sqnr", f"--min-sqnr: measured on {MIN_SQNR_RANDOM_SAMPLES} seeded uniform-random inputs (no calibration data set was held out of: --calib random, no --calib, or no int8 partition; calibration never saw these inputs)")
            result = verify_bundle(staging, model, samples=MIN_SQNR_RANDOM_SAMPLES, seed=MIN_SQNR_RANDOM_SEED, min_sqnr=min_sqnr)
        result.present(console)
        result.raise_if_failed()  # the driver removes the staging directory; an older bundle is left as it was

    return check


def _and_verify(driver: CompileOptions, model: Path, options: Options, verified: list[VerifyReport]) -> Any:
    """`driver.check_bundle` followed by `verify`, both on the staged bundle: a bundle the verification refuses is
    never installed (its table is printed on the console and the error raised; the driver removes the staging
    directory). A passing report is appended to `verified`. With a `calib` data set, the inputs are the samples
    calibration held out (the accuracy guard's), else seeded random ones."""
    first = driver.check_bundle

    def check(staging: Path, analyses: Analyses) -> None:
        if first is not None:
            first(staging, analyses)
        report = verify_staged(staging, model, analyses, atol=options.atol, rtol=options.rtol, const_inputs=driver.const_inputs)
        if not report.ok:
            report.present(get_console())
            report.raise_if_failed()
        verified.append(report)

    return check


def compile(  # noqa: A001 - the verb the API is about, as `stretchc.compile`
    model: str | Path,
    output: str | Path,
    options: Options | None = None,
    *,
    debug: Debug | None = None,
    quiet: bool = True,
    console: Console | None = None,
    **changes: Any,
) -> CompiledBundle:
    """Compile ONNX `model` into the bundle directory `output`, as `stretchc compile` does, with `options` (default:
    `Options()`) and `changes` to it (its fields as keywords: `compile(m, out, target="mi9", calib="data/")`; an
    unknown one is a TypeError). `debug`: pass-debugging instruments.

    Notes, warnings, progress and the tables of the checks that refuse a bundle go to `console` (the command line
    passes its own), by default to a console on stderr that prints notes and progress only with `quiet=False`; the
    returned bundle reports its own work (running, verifying it) there too. Raises StretchError; on an error nothing is left at `output` (an older bundle there stays as it was).
    """
    options = dataclasses.replace(options or Options(), **changes)
    console = _console_for(quiet, console)
    with _reporting(console):
        driver = driver_options(options, model, debug)
        verified: list[VerifyReport] = []  # the pre-install verification's report, when it passes
        if options.verify:
            driver.check_bundle = _and_verify(driver, Path(model), options, verified)
        result = compile_model(model, output, driver)
    return CompiledBundle(result, verified[0] if verified else None, console)


# ---- models and targets to compile for ----------------------------------------------------------------------------


def is_stretchc_model(path: Path) -> bool:
    """Whether `path` is an ONNX model stretchc wrote (`example`, `build-model`): its producer_name starts with
    "stretchc". Protobuf writes fields in number order, so ir_version (field 1) then producer_name (field 2)
    open the file: its first bytes say, without parsing a file that may be anything."""
    with path.open("rb") as f:
        return re.match(rb"\x08[\x00-\x7f]\x12[\x00-\x7f]stretchc", f.read(32)) is not None


@dataclass(frozen=True)
class BuiltModel:
    """What `build_model` wrote: the ONNX file (`path`), the configuration it was built from (`config`, as built:
    `timed` applied) and its placement (region to processor, recorded in the model's metadata)."""

    path: Path
    config: Config
    placement: Mapping[str, str]


def build_model(
    config: str | Path,
    output: str | Path | None = None,
    *,
    image_size: int = 224,
    seed: int = 0,
    strict: bool = False,
    timed: bool = False,
    quiet: bool = True,
    console: Console | None = None,
) -> BuiltModel:
    """Write the ONNX model of the NN-Stretch configuration `config` (YAML) to `output` (default ./NAME.onnx), as
    `stretchc build-model` does: seeded random weights (`seed`), a `image_size` square input, the configuration's
    placement in the metadata. What the prototype's builder tolerates is built its way with a `lenient-config`
    warning, or refused with `strict`; `timed` builds the layers the prototype's latencies were measured on. The
    file is written atomically; an existing one is replaced only when stretchc wrote it, never the configuration."""
    if image_size < 1:
        raise StretchError("usage", f"--image-size must be a positive integer, got {image_size}")
    console = _console_for(quiet, console)
    config_path = Path(config)
    with _reporting(console):
        cfg = load_config(config_path, strict=strict)
        if timed:
            cfg = as_timed(cfg)
        out = Path(output) if output is not None else Path.cwd() / f"{cfg.name}.onnx"
        if out.exists() and config_path.exists() and out.resolve() == config_path.resolve():
            raise StretchError("usage", f"the output {out} is the configuration itself; choose another -o")
        check_output_file(out, ours=is_stretchc_model, what="an ONNX model")
        if not out.parent.is_dir():
            raise StretchError("write-failed", f"the folder {out.parent} does not exist", file=str(out))
        regions = placement_regions(cfg)
        for msg in cfg.notes:
            console.warn("lenient-config", msg, file=str(config_path))
        for msg in unbranched_placement_notes(cfg):
            console.warn("placement-differs", msg, file=str(config_path))
        with console.step(f"building {cfg.name} at {image_size}x{image_size}"):
            data = build_onnx_model(cfg, image_size=image_size, seed=seed).SerializeToString()
        write_atomically(data, out)
        console.note("model-written", f"wrote {out} ({len(data) / 1e6:.1f} MB); placement " + ",".join(f"{r}={p}" for r, p in regions.items()))
    return BuiltModel(out, cfg, regions)


EXAMPLES = ("branchy", "stretchy", "digits")


@dataclass(frozen=True)
class WrittenExample:
    """What `write_example` wrote: the model (`model`), the digits data files (`data`), and the trained digits
    classifier's held-out top-1 accuracy under ONNX Runtime (`accuracy`, a fraction), each when written."""

    model: Path | None
    data: tuple[Path, ...]
    accuracy: float | None


def _holding(data: bytes) -> Callable[[Path], bool]:
    """Recognizes a file holding exactly `data`: the digits data is fixed (a seeded split of a bundled data set),
    so such a file is what an earlier `data=` wrote, and replacing it loses nothing."""
    return lambda path: path.stat().st_size == len(data) and path.read_bytes() == data


def write_example(
    name: str = "branchy", output: str | Path | None = None, *, data: str | Path | None = None, quiet: bool = True, console: Console | None = None
) -> WrittenExample:
    """Write example model `name` to `output`, as `stretchc example` does: `stretchy` (the README's first example),
    `branchy` (the synthetic 2-stage example) or `digits` (a small branched CNN trained on scikit-learn's digits,
    about half a minute; `data` writes its labelled calibration and held-out data, calib.npz and heldout.npz, into
    that folder). Everything is checked before any work; an existing file is replaced only when stretchc wrote it."""
    _check_choice("example", name, EXAMPLES)
    if data is not None and name != "digits":
        raise StretchError("usage", "--data: only the digits example has data (stretchc example digits --data DIR)")
    if output is None and data is None:
        raise StretchError("usage", "stretchc example: give -o FILE.onnx" + (" and/or --data DIR" if name == "digits" else ""))
    console = _console_for(quiet, console)
    model_path = None if output is None else Path(output)
    if model_path is not None:
        check_output_file(model_path, ours=is_stretchc_model, what="an ONNX model")
    files: dict[Path, bytes] = {}
    if data is not None:  # checked, like the model's file, before the training
        check_output_dir(Path(data))
        files = {Path(data) / file: content for file, content in data_files().items()}
        for path, content in files.items():
            check_output_file(path, ours=_holding(content), what="the digits data")
    data_paths = tuple(files)
    accuracy = None
    if model_path is not None:
        if name == "digits":
            model, accuracy = trained_model(progress=lambda done, total: console.progress("training the digits classifier", done, total))
        else:
            model = example_model() if name == "branchy" else stretchy_model()
        files[model_path] = model.SerializeToString()
    for path, content in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StretchError("write-failed", f"cannot create the folder: {exc.strerror or exc}", file=str(path.parent)) from None
        write_atomically(content, path)
    return WrittenExample(model_path, data_paths, accuracy)


def _measured_target(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(MEASURED_HEADER)) == MEASURED_HEADER.encode()


def calibrate(
    output: str | Path, *, target: str = HOST_TARGET, runs: int = 50, warmup: int = 5, quiet: bool = True, console: Console | None = None
) -> dict[str, Any]:
    """Measure this machine's CPU kernels and write them as a target file at `output` (.yaml), as `stretchc calibrate`
    does: the kernel micro-benchmarks (stretchc/costmodel/microbench.py) timed at float32 and int8, `runs` timed runs
    after `warmup` untimed ones, the minimum counting; the cost model's CPU parameters fitted to them. Returns the
    target file's contents (compile with `target=output`). Only `target="host"` can be measured. An existing file is
    replaced only when this function wrote it."""
    if target != HOST_TARGET:
        raise StretchError("usage", f"calibrate measures the machine it runs on: -t {HOST_TARGET} (measuring {target} would need its kernels run on it through adb, which stretchc does not do yet)")
    output = Path(output)
    if output.suffix not in (".yaml", ".yml"):
        raise StretchError("usage", "the target file must end in .yaml or .yml (compile reads -t PATH as a file by that suffix)", file=str(output))
    if runs < 1 or warmup < 0:
        raise StretchError("usage", "--runs must be >= 1 and --warmup >= 0")
    check_output_file(output, ours=_measured_target, what="a target file")
    console = _console_for(quiet, console)
    with _reporting(console):
        with console.step("describing this machine"):
            raw = describe_host()
        with console.step(f"timing {2 * len(KERNELS)} kernel micro-benchmarks ({runs} runs each, one thread)"):
            measurements = measure(KERNELS, runs=runs, warmup=warmup, progress=lambda i, n, what: console.progress(what, i, n))
        data = target_data(raw, measurements, runs, warmup, last_level_cache_mb())
        write_atomically((MEASURED_HEADER + yaml.safe_dump(data, sort_keys=False, width=140)).encode(), output)
    return data


def cost_model_accuracy(targets: Sequence[str] = (), *, loo: bool = True) -> list[TargetAccuracy]:
    """How well the latency cost model predicts each of `targets` (names or target files; default every known one),
    as `stretchc cost-model --report` prints it: per target its calibration points measured against predicted, with
    their leave-one-out errors when `loo` (each point predicted by a fit without it), and per processor and dtype
    the parameters it is priced with and whether they are prior-dominated."""
    return accuracy([load_target(t) for t in (targets or known_targets())], loo=loo)


@dataclass(frozen=True)
class PassInfo:
    """A pass as pipelines spell it (`name`), what it does (`summary`) and its options: (option, type, default,
    choices) as `stretchc passes` lists them."""

    name: str
    summary: str
    options: tuple[tuple[str, str, Any, tuple[str, ...]], ...]


def list_passes() -> list[PassInfo]:
    """Every registered pass, in registration order, with its options (`default_pipeline()` is the compile's)."""
    found = []
    for name, cls in registry().items():
        options = tuple(
            (f.name.replace("_", "-"), f.type if isinstance(f.type, str) else f.type.__name__, f.default, tuple(f.metadata.get("choices") or ()))
            for f in dataclasses.fields(cls)
        )
        found.append(PassInfo(name, cls.summary, options))
    return found


# ---- replaying passes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replayed:
    """What `opt` did: the IR after its passes (`module`; `ir()` prints it), the replayable dump it wrote
    (`output`) and the bundle it installed (`bundle`), each None when not asked for."""

    module: Module
    output: Path | None
    bundle: Path | None

    def ir(self) -> str:
        """The IR after the passes, as text (what `stretchc opt` prints when it writes no dump and no bundle)."""
        return print_module(self.module)


def _is_ir(path: Path) -> bool:
    """Whether `path` is an IR file stretchc wrote (a dump, or an earlier `opt -o`): its first line is the IR header."""
    with path.open("rb") as f:
        return f.readline(len(HEADER) + 2).rstrip(b"\n") == HEADER.encode()


def opt(
    dump: str | Path,
    *,
    pipeline: str | None = None,
    output: str | Path | None = None,
    bundle: str | Path | None = None,
    constants: str | Path | None = None,
    target: str | None = None,
    data: Mapping[str, str | Path] | None = None,
    debug: Debug | None = None,
    quiet: bool = True,
    console: Console | None = None,
) -> Replayed:
    """Run passes on the IR dump `dump`, as `stretchc opt` does: `pipeline` (default: the rest of the pipeline the
    dump's reproducer records), in the context the dump records (target, placement, settings, analyses; its data
    sources, such as the calibration data, read again and checked against their digests; `data` maps such an
    option, `calib`, to where it is now; `target` runs for another target), the IR verified after every pass and
    every pass's contract checked. `constants`: the dump's constant store (default `constants/` beside it).
    `output`: also write the result as a replayable dump (constants in its folder); `bundle`: the directory the
    pipeline's emit-bundle writes, installed only once it validates. `debug`: the pass-debugging instruments.
    Raises StretchError; on an error nothing is left at `output` or `bundle`."""
    console = _console_for(quiet, console)
    dump = Path(dump)
    output = None if output is None else Path(output)
    bundle = None if bundle is None else Path(bundle)
    debug = debug or Debug()
    with _reporting(console):
        try:
            text = dump.read_text()
        except FileNotFoundError:
            raise StretchError("file-not-found", "IR file does not exist", file=str(dump)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise StretchError("bad-ir", f"cannot read the IR file: {exc}", file=str(dump)) from None
        rep = Reproducer.from_text(text, file=str(dump))
        spelled = pipeline if pipeline is not None else (rep.remaining if rep is not None else "")
        if not spelled:
            raise StretchError("usage", "stretchc opt: give --pipeline (the dump records no pipeline left to run)")
        passes = parse_pipeline(spelled)
        debug.check()
        if bundle is not None:
            if "emit-bundle" not in [p.name for p in passes]:
                raise StretchError("usage", "--bundle: the pipeline has no emit-bundle to write it")
            check_output_path(bundle)
            for flag, path in (("--dump-dir", debug.dump_dir), ("-o", output)):
                if path is not None:
                    check_outside_output(Path(path), bundle, flag)
        if output is not None:
            if output.resolve() == dump.resolve():
                raise StretchError("usage", "-o is the dump being replayed; choose another -o", file=str(output))
            check_output_file(output, ours=_is_ir, what="an IR file")
        store_dir = Path(constants) if constants is not None else dump.parent / CONSTANTS
        module = parse_module(text, file=str(dump), constants=store_dir if store_dir.is_dir() else None)
        if has_missing_constants(module):
            if bundle is not None:
                raise StretchError(
                    "bad-ir", f"the dump's constants are not in {store_dir} (give --constants DIR); a bundle without them would compute garbage", file=str(dump)
                )
            console.warn("no-constants", f"no constant store at {store_dir}: large constants read as zeros (fine for structure, not for numbers)", file=str(dump))
        if rep is not None and rep.failure is not None:
            console.note("reproducer", f"the dump is the input of pass {rep.failure['pass']}, which failed with error[{rep.failure['code']}]: {rep.failure['message']}", file=str(dump))
        prefix = parse_pipeline(rep.done) if rep is not None and rep.done else []
        instruments = instruments_for(CompileOptions(**dataclasses.asdict(debug)), passes, prefix=prefix)  # all a replay takes of the options
        staging = staged_bundle(bundle) if bundle is not None else nullcontext(None)
        with staging as output_dir:
            locations = {key.replace("-", "_"): Path(path) for key, path in (data or {}).items()}
            ctx = replay_context(rep, ConstantStore(store_dir), passes=passes, console=console, target=target, data=locations, output_dir=output_dir)
            PassManager(passes, instruments).run(module, ctx)
            if output_dir is not None:
                validate_staged(output_dir)  # as compile: an invalid bundle is never installed
        if output is not None:
            try:
                output.parent.mkdir(parents=True, exist_ok=True)
                body, out_rep = snapshot(module, ctx, Recorder(ConstantStore(output.parent / CONSTANTS)), done=prefix + passes, remaining=[])
                tmp = output.with_name(f".{output.name}.tmp")
                tmp.write_text(dump_text(body, out_rep, [f"written by {replay_command(dump.name, None, pipeline=spelled)}"]))
                tmp.replace(output)
            except OSError as exc:
                raise StretchError("write-failed", f"cannot write the IR: {exc.strerror or exc}", file=str(output)) from None
    return Replayed(module, output, bundle)


# ---- bisecting a pipeline -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bisection:
    """What `bisect_passes` found: one row per pass (row 0: the lowered model) compared with ONNX Runtime (`rows`), the
    first row out of tolerance (`first_bad`, None when every row holds), where the dumps around it are and how to
    replay it (`notes`), and the error of a pass that failed (`failure`; the rows stop before it)."""

    rows: tuple[Row, ...]
    first_bad: Row | None
    notes: tuple[str, ...]
    failure: Exception | None
    _bisect: NumericBisect = field(repr=False, compare=False)

    def table(self) -> str:
        """The rows as `stretchc bisect` prints them, the first row out of tolerance marked `>>`, then the notes."""
        return self._bisect.table(notes=list(self.notes))


def _reference(loaded: LoadedModel, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """ONNX Runtime's outputs for every feed, by output name; StretchError("bad-input-data") on a feed that does not
    fit the model's inputs."""
    import onnxruntime as ort  # lazy: only bisect and verify run ONNX Runtime

    expected = {i.name: i for i in loaded.module.inputs}
    for feed in feeds:
        for name, info in expected.items():
            arr = feed.get(name)
            if arr is None or tuple(arr.shape) != tuple(info.shape) or arr.dtype != np.dtype(info.dtype):
                raise StretchError("bad-input-data", f"input {name!r} needs a {info.dtype} array of shape {list(info.shape)}")
        if set(feed) - set(expected):
            raise StretchError("bad-input-data", f"unknown input {sorted(set(feed) - set(expected))[0]!r}; the model's inputs are {', '.join(expected)}")
    session = ort.InferenceSession(loaded.model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(None, feed))) for feed in feeds]


def _bad_row_dumps(bad: Row, dumps: DumpIR, dest: Path, copy: bool) -> list[str]:
    """Put the dumps before and after the bad row in `dest` (copied from the private run, or already there); what
    they are and the command that replays the pass."""
    lines = []
    for index, what in ((bad.index - 1, "its input"), (bad.index, "its output")):
        if index in dumps.after:
            lines.append(f"{what}: {copy_dump(dumps.after[index], dest) if copy else dumps.after[index]}")
    if bad.index > 0:
        before = dest / dumps.after[bad.index - 1].name
        lines.append(f"replay it: {replay_command(str(before), None, pipeline=dumps.passes[bad.index - 1].spelled())}")
    return lines


def bisect_passes(
    model: str | Path,
    options: Options | None = None,
    *,
    inputs: Mapping[str, ArrayOrFile] | None = None,
    samples: int = 3,
    seed: int = 0,
    atol: float | None = None,
    rtol: float = 0.0,
    debug: Debug | None = None,
    quiet: bool = True,
    console: Console | None = None,
    **changes: Any,
) -> Bisection:
    """Find the first pass of the compile of `model` (with `options` and `changes`, as `compile`) whose output leaves
    tolerance, as `stretchc bisect` does: the model is lowered once, the pipeline runs, and before the first pass and
    after every pass the whole module runs as one TFLite model against ONNX Runtime on `inputs` (one feed, arrays or
    .npy files by input name; default `samples` seeded random feeds from `seed`). Criterion per row: float rows
    `atol`/`rtol` (as `verify`), reduced-precision rows the options' `min_sqnr` (default 20 dB). The dumps around the
    first bad row go to `debug.dump_dir` (which then holds every dump), else to MODEL.bisect/ beside the working
    folder. A failing pass is the result's `failure`, not an exception; bad options or inputs raise StretchError."""
    if samples < 1:
        raise StretchError("usage", "--samples must be at least 1")
    options = dataclasses.replace(options or Options(), **changes)
    console = _console_for(quiet, console)
    model = Path(model)
    with _reporting(console):
        driver = driver_options(options, model, debug)
        dest = driver.dump_dir if driver.dump_dir is not None else Path(f"{model.stem}.bisect")
        check_output_dir(dest)
        target = load_target(driver.target)
        passes = parse_pipeline(driver.pipeline or default_pipeline())
        check_requirements(passes)  # the pass manager checks it too; here it comes before the lowering
        loaded = load_module(model, driver)
        feeds = [_arrays(inputs, "--input")] if inputs else [
            seeded_feed(((i.name, i.shape, i.dtype) for i in loaded.module.inputs), seed + k) for k in range(samples)
        ]
        check = NumericBisect(feeds, _reference(loaded, feeds), atol=atol, rtol=rtol, min_sqnr=options.min_sqnr)
        private_dumps = driver.dump_dir is None
        with tempfile.TemporaryDirectory(prefix="stretchc-bisect-") as private:
            driver.dump_dir = Path(private) if private_dumps else dest
            instruments = instruments_for(driver, passes)
            dumps = next(i for i in instruments if isinstance(i, DumpIR))
            dumps.announce = not private_dumps  # a private dump folder goes away: the copies are announced instead
            ctx = make_context(target, loaded, passes, driver, output_dir=None)
            try:
                PassManager(passes, [*instruments, check]).run(loaded.module, ctx)
            except Exception as exc:  # a failing pass: the rows so far, and its reproducer where it stays
                if dumps.failure_dump is not None and dumps.failed is not None and private_dumps:
                    announce_failure(copy_dump(dumps.failure_dump, dest), dumps.failed, console)
                return Bisection(tuple(check.rows), check.first_bad(), (), exc, check)
            bad = check.first_bad()
            notes = _bad_row_dumps(bad, dumps, dest, copy=private_dumps) if bad is not None else []
    return Bisection(tuple(check.rows), bad, tuple(notes), None, check)


def _console_for(quiet: bool, console: Console | None) -> Console:
    """`console`, or a console on stderr that prints notes and progress only when not `quiet`."""
    return console if console is not None else Console(quiet=quiet, stream=sys.stderr)


@contextmanager
def _reporting(console: Console) -> Iterator[None]:
    """`console` is the one library code reports through (`get_console()`) while the block runs; the caller's after."""
    before = get_console()
    set_console(console)
    try:
        yield
    finally:
        set_console(before)
