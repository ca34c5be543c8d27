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
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from stretchc import safejson
from stretchc.analyses import Analyses, HeldOutInputs
from stretchc.backends import Backend, backends
from stretchc.bundle.manifest import compiled_shapes
from stretchc.compile_settings import EMITS, IO_DTYPES, CompileSettings, on_ineligible_choices
from stretchc.console import Console, get_console, set_console
from stretchc.driver import CompileOptions, CompileResult, check_output_dir, compile_model
from stretchc.errors import StretchError
from stretchc.frontend.module import onnx_inputs
from stretchc.frontend.validate import load_model
from stretchc.passmanager import registry
from stretchc.precision import POLICIES
from stretchc.quantize.calibration_data import check_calibration_options, find_bad_value, load_calibration_data, parse_preprocess, read_npy
from stretchc.quantize.guard import MIN_SQNR_RANDOM_SAMPLES, MIN_SQNR_RANDOM_SEED
from stretchc.resource_limits import ResourceLimits
from stretchc.runtime.host import DEFAULT_STALL_TIMEOUT, HostRuntime, Profile
from stretchc.targets import Target, known_targets, load_target
from stretchc.verify import DEFAULT_SAMPLES, VerifyReport, seeded_inputs, verify_bundle, verify_staged

__all__ = [
    "Alternative", "BackendInfo", "Bundle", "CompiledBundle", "Debug", "Options", "PartitionInfo", "Profile", "RegionInfo", "Report",
    "TargetInfo", "TimelineEntry", "VerifyReport", "check_verify_data", "compile", "driver_options", "get_target", "list_targets",
    "read_array",
]

REPORT_FILE = "report.json"  # the placement report emit-bundle writes into a bundle
REPORT_MAX_DEPTH = 32  # as `stretchc explain` reads it

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
        self.manifest: Mapping[str, Any] = self._host().manifest

    def _host(self) -> HostRuntime:
        """The bundle loaded into the host reference runtime (once)."""
        if self._runtime is None:
            with _reporting(self._console):
                self._runtime = HostRuntime(self.path)
        return self._runtime

    @cached_property
    def report(self) -> Report | None:
        """The placement report the bundle holds (report.json), None when its pipeline wrote none."""
        path = self.path / REPORT_FILE
        return Report.from_record(safejson.loads(path.read_bytes(), max_depth=REPORT_MAX_DEPTH)) if path.is_file() else None

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

    dump_dir: Path | None = None
    print_ir_after: frozenset[str] = frozenset()
    print_ir_before: frozenset[str] = frozenset()
    print_ir_after_change: bool = False
    time_passes: bool = False

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
