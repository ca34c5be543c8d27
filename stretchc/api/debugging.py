"""Debugging a pipeline: the passes (`stretchc passes`), replaying them on a dump (`stretchc opt`), finding the first
pass that leaves tolerance (`stretchc bisect`)."""

from __future__ import annotations

import dataclasses
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from stretchc.api._common import console_for, reporting
from stretchc.api.bundle import ArrayOrFile, arrays
from stretchc.api.compiling import Debug, Options, driver_options
from stretchc.bisect import NumericBisect, Row
from stretchc.console import Console
from stretchc.driver import (
    CompileOptions,
    LoadedModel,
    check_output_dir,
    check_output_file,
    check_output_path,
    check_outside_output,
    default_pipeline,
    instruments_for,
    load_module,
    make_context,
    staged_bundle,
    validate_staged,
)
from stretchc.dumps import CONSTANTS, DumpIR, announce_failure, copy_dump, dump_text, replay_command, snapshot
from stretchc.errors import StretchError
from stretchc.ir import Module
from stretchc.irtext import HEADER, ConstantStore, has_missing_constants, parse_module, print_module
from stretchc.passmanager import PassManager, check_requirements, parse_pipeline, registry
from stretchc.reproducer import Recorder, Reproducer, replay_context
from stretchc.targets import load_target
from stretchc.verify import seeded_feed


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
    console = console_for(quiet, console)
    dump = Path(dump)
    output = None if output is None else Path(output)
    bundle = None if bundle is None else Path(bundle)
    debug = debug or Debug()
    with reporting(console):
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
    console = console_for(quiet, console)
    model = Path(model)
    with reporting(console):
        driver = driver_options(options, model, debug)
        dest = driver.dump_dir if driver.dump_dir is not None else Path(f"{model.stem}.bisect")
        check_output_dir(dest)
        target = load_target(driver.target)
        passes = parse_pipeline(driver.pipeline or default_pipeline())
        check_requirements(passes)  # the pass manager checks it too; here it comes before the lowering
        loaded = load_module(model, driver)
        feeds = [arrays(inputs, "--input")] if inputs else [
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
