"""The compile driver: ONNX file + target + options -> bundle directory, all or nothing.

Order of work: check everything cheap first (output path, target, pipeline, placement syntax), then read
and validate the model, check it against the resource limits (stretchc/resource_limits.py), canonicalize it
(ONNX-level rewrites, stretchc/frontend/canonicalize), lower it, import it, run the pipeline into a private staging
directory next to the output, validate the bundle with the validator `run` uses, and only then move it into
place. On any failure the staging directory is removed and an existing bundle at the output path is left as
it was; a bundle that fails validation is a bug in stretchc (internal error), never installed.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import onnx

from stretchc import safejson
from stretchc.analyses import Analyses, Manifest
from stretchc.bundle.format import FORMAT, MANIFEST_JSON, SHA256SUMS
from stretchc.bundle.manifest import load_manifest
from stretchc.cache import LoweringCache, lowering_key
from stretchc.compile_settings import CompileSettings
from stretchc.console import get_console
from stretchc.costmodel.calibration import NETWORK_IMAGE_SIZE, NETWORK_SEED, NETWORKS_DIR, config_digest
from stretchc.costmodel.workload import workload_of
from stretchc.dumps import DumpIR
from stretchc.errors import StretchError
from stretchc.frontend.canonicalize import RewriteContext, canonicalize
from stretchc.frontend.lower import lower_to_tflite
from stretchc.frontend.module import build_module
from stretchc.frontend.validate import check_lowerable, load_model
from stretchc.ir import Module
from stretchc.modelbuild import as_timed, build_model, load_config, placement_from_model
from stretchc.passes import DEFAULT_PIPELINE
from stretchc.passmanager import (
    Instrument, Pass, PassContext, PassManager, PrintIR, TimePasses, check_requirements, parse_pipeline, print_pipeline, split_pipeline,
)
from stretchc.resource_limits import ResourceLimits, check_arena
from stretchc.resource_limits import check_model as check_model_limits
from stretchc.targets import Target, load_target


def default_pipeline() -> str:
    """The pipeline a compile runs unless told otherwise (importing `stretchc.passes` registered its passes)."""
    return DEFAULT_PIPELINE


def placement_input_pipeline() -> str:
    """The default pipeline's passes before assign-delegates: the IR assign-delegates prices."""
    entries = split_pipeline(DEFAULT_PIPELINE)
    names = [e.partition("{")[0].strip() for e in entries]
    return ",".join(entries[: names.index("assign-delegates")])


@dataclass
class CompileOptions:
    """Everything `stretchc compile` can be told, with the CLI's defaults."""

    target: str = "pixel6"
    pipeline: str | None = None
    place: dict[str, str] = field(default_factory=dict)
    place_from_model: bool = False
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    const_inputs: dict[str, np.ndarray] = field(default_factory=dict)  # --const-input: folded at compile time
    const_input_files: dict[str, str] = field(default_factory=dict)  # their files, for messages
    dump_dir: Path | None = None
    print_ir_after: frozenset[str] = frozenset()
    print_ir_before: frozenset[str] = frozenset()
    print_ir_after_change: bool = False
    time_passes: bool = False
    use_cache: bool = True  # the lowering cache (stretchc/cache.py); --no-cache turns it off
    limits: ResourceLimits = field(default_factory=ResourceLimits)  # --limit; checked before the lowering
    settings: CompileSettings = field(default_factory=CompileSettings)  # what the passes read
    # Called with the finished staging directory and the passes' analyses before the bundle is installed;
    # raising refuses the bundle (e.g. --min-sqnr, which measures on inputs quantize-partitions held out).
    check_bundle: Callable[[Path, Analyses], None] | None = None


@dataclass
class CompileResult:
    output: Path
    module: Module
    manifest: dict[str, Any]
    pipeline: str
    analyses: Analyses
    timings: list[tuple[str, float, bool]]


def check_pipeline_order(passes: list[Pass]) -> None:
    """A compile pipeline starts from the imported model (nothing done: `check_requirements`) and ends with
    emit-bundle (which writes the bundle); checked before any work."""
    check_requirements(passes)
    if not passes or passes[-1].name != "emit-bundle":
        raise StretchError("bad-pipeline", "the pipeline must end with emit-bundle (which writes the bundle)")


def check_output_path(output: Path, model_path: Path | None = None) -> None:
    """Refuse output paths we must not write to, before doing any work.

    An existing directory is replaced only when it is empty or a bundle: its manifest.json says so, and every
    file in it is one its SHA256SUMS lists (what emit-bundle writes). The current directory, a directory
    holding it, and a directory holding the model are never replaced; nor is a symbolic link followed.
    """
    _refuse_link(output)
    if output.exists() and not output.is_dir():
        raise StretchError("output-exists", "output path exists and is a file, not a bundle directory", file=str(output))
    resolved = output.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise StretchError("output-exists", "the output is the current directory or holds it; refusing to replace it", file=str(output))
    if model_path is not None and resolved in model_path.resolve().parents:
        raise StretchError("output-exists", f"the model {model_path} lies inside the output directory; refusing to replace it", file=str(output))
    if output.is_dir() and any(output.iterdir()):
        foreign = _not_bundle_file(output)
        if foreign is not None:
            raise StretchError(
                "output-exists", f"output directory exists and is not a bundle ({foreign}); refusing to replace it", file=str(output)
            )
    _check_parent_writable(output)


def _not_bundle_file(directory: Path) -> str | None:
    """Why `directory` is not a bundle stretchc may replace (a file it holds that no bundle has), or None."""
    try:
        manifest = safejson.loads((directory / MANIFEST_JSON).read_bytes()[: 16 << 20], max_depth=64)
        sums = (directory / SHA256SUMS).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return f"no readable {MANIFEST_JSON} and {SHA256SUMS}"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return f"its {MANIFEST_JSON} is not a stretchc manifest"
    listed = {line[66:] for line in sums.splitlines() if len(line) > 66} | {SHA256SUMS}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if (path.is_file() or path.is_symlink()) and rel not in listed:
            return f"it holds {rel}, which its {SHA256SUMS} does not list"
    return None


def _check_parent_writable(path: Path) -> None:
    """The nearest existing ancestor of `path` is a directory we can create entries in (tried for real)."""
    probe = path.resolve().parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise StretchError("write-failed", f"cannot write into {probe}", file=str(path))
    try:  # os.access says yes to root everywhere; /proc, read-only mounts etc. still refuse: try for real
        os.rmdir(tempfile.mkdtemp(prefix=f".{path.name}.probe-", dir=probe))
    except OSError as exc:
        raise StretchError("write-failed", f"cannot write into {probe}: {exc.strerror or exc}", file=str(path)) from None


def _refuse_link(path: Path) -> None:
    """No output is written through a symbolic link, dangling or not: the output would land where the link
    points (a dangling one: wherever its target names), not where the user looks for it."""
    if path.is_symlink():
        raise StretchError("output-exists", "the output is a symbolic link; refusing to write through it (give the path it should be)", file=str(path))


def check_output_dir(path: Path) -> None:
    """Refuse, before any work, a folder for dumps or data files that cannot be written (files are added to it;
    it is never replaced)."""
    _refuse_link(path)
    if path.exists() and not path.is_dir():
        raise StretchError("write-failed", "exists and is not a directory", file=str(path))
    _check_parent_writable(path)


def check_output_file(path: Path, *, ours: Callable[[Path], bool], what: str) -> None:
    """Refuse, before any work, a file output (a model, IR, report, depfile, data) that cannot be written or would
    replace a user's file.

    The rule of `-o DIR` (check_output_path) for one file: never through a symbolic link; an existing file is
    replaced only when it is `what` stretchc writes, which `ours` recognizes from its content as a bundle is
    recognized from its manifest and SHA256SUMS (so that a build can be repeated); anything else there,
    including a device or FIFO, is the user's and is left alone.
    """
    _refuse_link(path)
    if path.is_dir():
        raise StretchError("write-failed", "is a directory", file=str(path))
    if path.exists() and not (path.is_file() and _recognized(path, ours)):
        raise StretchError("output-exists", f"exists and is not {what} stretchc wrote; refusing to replace it", file=str(path))
    _check_parent_writable(path)


def _recognized(path: Path, ours: Callable[[Path], bool]) -> bool:
    """`ours(path)`, a file that cannot be read being the user's."""
    try:
        return ours(path)
    except (OSError, ValueError):
        return False


def check_outside_output(path: Path, output: Path, flag: str) -> None:
    """Refuse (`usage`, before any work) a side output at or inside the bundle directory `output`: installing the
    bundle replaces that directory whole (dumps written there are deleted), and a file written into it after
    that is one its SHA256SUMS does not list (the next compile refuses to replace the bundle)."""
    bundle = output.resolve()
    where = path.resolve()
    if where == bundle or bundle in where.parents:
        raise StretchError(
            "usage", f"{flag} lies inside the output bundle {output}, which is replaced whole on every compile; give a path beside it", file=str(path)
        )


def _install(staging: Path, output: Path) -> None:
    """Move the finished bundle into place, replacing an older bundle only once the new one is complete."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; a bundle follows the user's umask
    old = None
    if output.exists():
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        os.replace(output, old)
    os.replace(staging, output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _lower(model: Any, model_path: Path, options: CompileOptions) -> bytes:
    """The lowered TFLite bytes, from the lowering cache when it has them (see stretchc/cache.py)."""
    console = get_console()

    def build() -> bytes:
        with console.step("lowering ONNX to TFLite (onnx2tf)"):
            return lower_to_tflite(model, file=str(model_path))

    if not options.use_cache:
        return build()
    cache = LoweringCache()
    key = lowering_key(model.SerializeToString(deterministic=True))
    tflite, hit = cache.get_or_build(key, build)
    if hit:
        console.note("cache-hit", f"lowered model reused from the cache ({key[:12]})", file=str(cache.path(key)))
    return tflite


def instruments_for(options: CompileOptions, passes: list[Pass], *, prefix: list[Pass] | None = None) -> list[Instrument]:
    """The instruments the debugging options ask for (dumps, IR printing, pass timing), in that order."""
    instruments: list[Instrument] = []
    if options.dump_dir is not None:
        instruments.append(DumpIR(options.dump_dir, passes, prefix=prefix))
    if options.print_ir_before or options.print_ir_after or options.print_ir_after_change:
        instruments.append(PrintIR(before=options.print_ir_before, after=options.print_ir_after, after_change=options.print_ir_after_change))
    if options.time_passes:
        instruments.append(TimePasses())
    return instruments


@dataclass
class LoadedModel:
    """A model read, lowered and imported: the module the pipeline starts from, and what the context needs."""

    model: onnx.ModelProto  # as lowered: validated (input shapes set), then canonicalized
    module: Module
    place: dict[str, str]  # --place overrides over the placement recorded in the model (--place-from-model)
    source_sha256: str


def load_module(model_path: Path, options: CompileOptions) -> LoadedModel:
    """Read, validate and canonicalize the ONNX model, lower it (through the lowering cache), import it."""
    model = load_model(model_path, options.input_shapes, const_inputs=options.const_inputs)
    place = dict(options.place)
    if options.place_from_model:
        recorded = placement_from_model(model)
        if recorded is None:
            raise StretchError("bad-placement", "--place-from-model: the model records no placement (stretchc.placement metadata)", file=str(model_path))
        place = {**recorded, **place}
    check_model_limits(model, options.limits, file=str(model_path))
    source_sha256 = hashlib.sha256(model_path.read_bytes()).hexdigest()
    rewrite_ctx = RewriteContext(file=str(model_path), const_inputs=dict(options.const_inputs), const_input_files=dict(options.const_input_files))
    model = canonicalize(model, rewrite_ctx, dump_dir=options.dump_dir)
    check_lowerable(model, file=str(model_path))
    tflite = _lower(model, model_path, options)
    return LoadedModel(model, build_module(model, tflite, name=model_path.stem, file=str(model_path)), place, source_sha256)


def make_context(target: Target, loaded: LoadedModel, passes: list[Pass], options: CompileOptions, *, output_dir: Path | None) -> PassContext:
    """The context a compile of `loaded` runs `passes` in."""
    return PassContext(
        target=target,
        place=loaded.place,
        output_dir=output_dir,
        settings=options.settings.for_pipeline(passes),
        pipeline=list(passes),
        console=get_console(),
        source_sha256=loaded.source_sha256,
    )


def validate_staged(staging: Path) -> None:
    """The finished bundle passes the validator `run` uses; if not, stretchc wrote it wrong (internal error)."""
    try:
        load_manifest(staging)
    except StretchError as err:
        raise StretchError("internal", f"the compiled bundle fails validation, so it was not installed: {err.message}") from None


def remove_stale_staging(output: Path) -> None:
    """Remove staging folders of `output` (`.NAME.tmp-PID-*`) whose compile is no longer running: a process killed
    outright (SIGKILL, a crash) cannot remove its own."""
    prefix = f".{output.name}.tmp-"
    for p in sorted(output.parent.glob(glob.escape(prefix) + "*")):
        pid, dash, _ = p.name[len(prefix):].partition("-")
        if dash and pid.isdigit() and p.is_dir() and not p.is_symlink() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextmanager
def staged_bundle(output: Path) -> Iterator[Path]:
    """A private staging directory next to `output`, moved into place when the block succeeds and removed
    when it fails (an existing bundle at `output` is then left as it was)."""
    try:
        output.resolve().parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(output.resolve())
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-{os.getpid()}-", dir=output.resolve().parent))
    except OSError as exc:
        raise StretchError("write-failed", f"cannot write the bundle: {exc.strerror or exc}", file=str(output)) from None
    try:
        yield staging
        _install(staging, output.resolve())
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StretchError("write-failed", f"cannot write the bundle: {exc.strerror or exc}", file=str(output)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def compile_model(model_path: str | Path, output: str | Path, options: CompileOptions) -> CompileResult:
    """Compile `model_path` into the bundle directory `output` (see module docstring)."""
    model_path, output = Path(model_path), Path(output)
    check_output_path(output, model_path)
    if options.dump_dir is not None:
        check_outside_output(options.dump_dir, output, "--dump-dir")
    target: Target = load_target(options.target)
    passes = parse_pipeline(options.pipeline or default_pipeline())
    check_pipeline_order(passes)
    pipeline = print_pipeline(passes)
    loaded = load_module(model_path, options)
    manager = PassManager(passes, instruments_for(options, passes))
    with staged_bundle(output) as staging:
        ctx = make_context(target, loaded, passes, options, output_dir=staging)
        manager.run(loaded.module, ctx)
        check_arena(loaded.module.arena_size, options.limits, file=str(model_path))
        validate_staged(staging)
        if options.check_bundle is not None:
            options.check_bundle(staging, ctx.analyses)
    manifest = ctx.analyses.require(Manifest, by="the compile driver").document
    return CompileResult(output, loaded.module, manifest, pipeline, ctx.analyses, manager.timings)


def compute_network_workload(name: str, *, work_dir: Path) -> dict[str, Any]:
    """Build the cost model's stored NN-Stretch configuration `name` (stretchc/costmodel/networks/) as the
    prototype timed it (`as_timed`, 224 px, seed 0), lower it (through the lowering cache), run the passes before
    assign-delegates and return the record `workloads.json` keeps for it (`stretchc.costmodel.calibration`)."""
    cfg = as_timed(load_config(NETWORKS_DIR / f"{name}.yaml"))  # the layers the prototype timed
    model = build_model(cfg, image_size=NETWORK_IMAGE_SIZE, seed=NETWORK_SEED)
    onnx_path = work_dir / f"{name}.onnx"
    onnx.save(model, str(onnx_path))
    m = load_model(onnx_path, {})
    module = build_module(m, _lower(m, onnx_path, CompileOptions()), name=name, file=str(onnx_path))
    pipeline = placement_input_pipeline()
    PassManager(parse_pipeline(pipeline)).run(module, PassContext())
    return {
        "config_sha256": config_digest(name),
        "image_size": NETWORK_IMAGE_SIZE,
        "seed": NETWORK_SEED,
        "pipeline": pipeline,
        "placement": placement_from_model(model) or {},
        "workload": workload_of(module).to_json(),
    }
