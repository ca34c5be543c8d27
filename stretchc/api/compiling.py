"""Compiling a model into a bundle (`stretchc compile`): the options, the debugging instruments, `compile`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from stretchc.analyses import Analyses, HeldOutInputs
from stretchc.api._common import check_choice, console_for, reporting
from stretchc.api.bundle import ArrayOrFile, CompiledBundle, arrays
from stretchc.compile_settings import EMITS, IO_DTYPES, CompileSettings, on_ineligible_choices
from stretchc.console import Console, get_console
from stretchc.driver import CompileOptions, check_output_dir, compile_model
from stretchc.errors import StretchError
from stretchc.passmanager import registry
from stretchc.precision import POLICIES
from stretchc.quantize.calibration_data import check_calibration_options
from stretchc.quantize.guard import MIN_SQNR_RANDOM_SAMPLES, MIN_SQNR_RANDOM_SEED
from stretchc.resource_limits import ResourceLimits
from stretchc.verify import VerifyReport, verify_bundle, verify_staged


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


def _check_options(options: Options) -> None:
    """What the options ask checked before any work: values, calibration data and the options that need it, and
    the accuracy bound's hold-out. With a `calib` data set, quantize-partitions holds its last `calib_holdout`
    samples (default 20%, at least 1) out of calibration, measures `precision="auto"` on them and hands them to the
    pre-install check of `min_sqnr`; with "random" (or no `calib`) both measure on seeded random inputs that
    calibration never saw."""
    check_choice("--precision", options.precision, POLICIES)
    check_choice("--io-dtype", options.io_dtype, IO_DTYPES)
    check_choice("--on-ineligible", options.on_ineligible, on_ineligible_choices())
    for emit in options.emit:
        check_choice("--emit", emit, EMITS)
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
    const_inputs = arrays(options.const_inputs, "--const-input")
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
    console = console_for(quiet, console)
    with reporting(console):
        driver = driver_options(options, model, debug)
        verified: list[VerifyReport] = []  # the pre-install verification's report, when it passes
        if options.verify:
            driver.check_bundle = _and_verify(driver, Path(model), options, verified)
        result = compile_model(model, output, driver)
    return CompiledBundle(result, verified[0] if verified else None, console)
