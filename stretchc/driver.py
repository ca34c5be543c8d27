"""The compile driver: ONNX file + target + options -> bundle directory, all or nothing.

Order of work: check everything cheap first (output path, target, pipeline, placement syntax), then read
and validate the model, lower it, import it, run the pipeline into a private staging directory next to
the output, and only then move the finished bundle into place. On any failure the staging directory is
removed and an existing bundle at the output path is left as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from stretchc.bundle.manifest import MANIFEST_JSON
from stretchc.console import get_console
from stretchc.errors import StretchError
from stretchc.frontend.lower import lower_to_tflite
from stretchc.frontend.module import build_module
from stretchc.frontend.validate import load_model
from stretchc.ir import Module
from stretchc.passmanager import Instruments, PassContext, PassManager, parse_pipeline, print_pipeline, registry
from stretchc.targets import Target, load_target


def default_pipeline() -> str:
    registry()
    from stretchc.passes import DEFAULT_PIPELINE

    return DEFAULT_PIPELINE


@dataclass
class CompileOptions:
    """Everything `stretchc compile` can be told, with the CLI's defaults."""

    target: str = "pixel6"
    pipeline: str | None = None
    place: dict[str, str] = field(default_factory=dict)
    place_from_model: bool = False
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    dump_dir: Path | None = None
    print_ir_after: frozenset[str] = frozenset()
    time_passes: bool = False
    use_cache: bool = True  # the lowering cache (stretchc/cache.py); --no-cache turns it off
    extra: dict[str, Any] = field(default_factory=dict)
    # Called with the finished staging directory and the passes' report before the bundle is installed;
    # raising refuses the bundle (e.g. --min-sqnr, which measures on inputs quantize-hexagon held out).
    check_bundle: Callable[[Path, dict[str, Any]], None] | None = None


@dataclass
class CompileResult:
    output: Path
    module: Module
    manifest: dict[str, Any]
    pipeline: str
    report: dict[str, Any]
    timings: list[tuple[str, float, bool]]


def check_output_path(output: Path) -> None:
    """Refuse output paths we must not write to, before doing any work."""
    if output.exists() and not output.is_dir():
        raise StretchError("output-exists", "output path exists and is a file, not a bundle directory", file=str(output))
    if output.is_dir() and any(output.iterdir()) and not (output / MANIFEST_JSON).is_file():
        raise StretchError("output-exists", "output directory exists, is not empty and is not a bundle; refusing to replace it", file=str(output))
    _check_parent_writable(output)


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


def check_side_output(path: Path, *, directory: bool) -> None:
    """Refuse, before any work, a path for a dump folder, report or depfile that cannot be written."""
    if directory and path.exists() and not path.is_dir():
        raise StretchError("write-failed", "exists and is not a directory", file=str(path))
    if not directory and path.is_dir():
        raise StretchError("write-failed", "is a directory", file=str(path))
    _check_parent_writable(path)


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
    from stretchc.cache import LoweringCache, lowering_key

    cache = LoweringCache()
    key = lowering_key(model.SerializeToString(deterministic=True))
    tflite, hit = cache.get_or_build(key, build)
    if hit:
        console.note("cache-hit", f"lowered model reused from the cache ({key[:12]})", file=str(cache.path(key)))
    return tflite


def compile_model(model_path: str | Path, output: str | Path, options: CompileOptions) -> CompileResult:
    """Compile `model_path` into the bundle directory `output` (see module docstring)."""
    console = get_console()
    model_path, output = Path(model_path), Path(output)
    check_output_path(output)
    target: Target = load_target(options.target)
    passes = parse_pipeline(options.pipeline or default_pipeline())
    pipeline = print_pipeline(passes)
    model = load_model(model_path, options.input_shapes)
    place = dict(options.place)
    if options.place_from_model:
        from stretchc.modelbuild import placement_from_model

        recorded = placement_from_model(model)
        if recorded is None:
            raise StretchError("bad-placement", "--place-from-model: the model records no placement (stretchc.placement metadata)", file=str(model_path))
        place = {**recorded, **place}
    source_sha256 = hashlib.sha256(model_path.read_bytes()).hexdigest()
    tflite = _lower(model, model_path, options)
    module = build_module(model, tflite, name=model_path.stem, file=str(model_path))
    try:
        output.resolve().parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.resolve().parent))
    except OSError as exc:
        raise StretchError("write-failed", f"cannot write the bundle: {exc.strerror or exc}", file=str(output)) from None
    ctx = PassContext(
        target=target,
        place=place,
        output_dir=staging,
        options={"pipeline": pipeline, "source_sha256": source_sha256, **options.extra},
        console=console,
    )
    instruments = Instruments(dump_dir=options.dump_dir, print_ir_after=options.print_ir_after, time_passes=options.time_passes)
    try:
        PassManager(passes, instruments).run(module, ctx)
        if "manifest" not in ctx.report:
            raise StretchError("bad-pipeline", "the pipeline wrote no bundle: it must end with emit-bundle")
        if options.check_bundle is not None:
            options.check_bundle(staging, ctx.report)
        _install(staging, output)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StretchError("write-failed", f"cannot write the bundle: {exc.strerror or exc}", file=str(output)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return CompileResult(output, module, ctx.report["manifest"], pipeline, ctx.report, instruments.timings)
