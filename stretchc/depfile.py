"""`stretchc compile --depfile FILE`: the bundle's dependencies as one Make/Ninja rule.

    /abs/build/model.stretch/manifest.json: /abs/model.onnx /abs/model.onnx.data /abs/calib/a.npy ...

The rule's target is the bundle's `manifest.json` (the path under `-o`, made absolute): a build system
declares that file as the command's output (CMake `OUTPUT`, Ninja `build ...: ` with `depfile =` and
`deps = gcc`). Prerequisites, all absolute and sorted: the model, its external-data files, the calibration
data (a directory is listed file by file, sorted), the `--const-input` arrays, the target YAML (the packaged file for a known phone),
and the configuration file (stretchc.toml) if one was used. Spaces are escaped with `\\`, `$` as `$$`,
`#` as `\\#`. The file is written atomically (temp file + rename), and only when the compile succeeded.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

import onnx
from google.protobuf.message import DecodeError

from stretchc.bundle.format import MANIFEST_JSON
from stretchc.errors import StretchError


def model_files(model_path: Path) -> list[Path]:
    """The model file and the external-data files its initializers name.

    A model that cannot be read here (changed or removed since the compile read it) is an error: a depfile
    without its external-data files would let a build system skip rebuilds it needs.
    """
    files = [model_path]
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except OSError as exc:
        raise StretchError("file-not-found", f"cannot read the model for the depfile: {exc.strerror or exc}", file=str(model_path)) from None
    except (DecodeError, ValueError, RuntimeWarning) as exc:
        raise StretchError("not-onnx", f"the model changed during the compile and no longer parses ({type(exc).__name__})", file=str(model_path)) from None
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                tensors.append(attr.t)
    for t in tensors:
        if t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL:
            for entry in t.external_data:
                if entry.key == "location":
                    files.append(model_path.parent / entry.value)
    return files


def expand(path: Path) -> list[Path]:
    """A file, or every file under a directory (sorted, hidden files skipped)."""
    if path.is_dir():
        return sorted(
            p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    return [path]


def bundle_dependencies(
    model_path: Path, *, target_path: Path | None, config_path: Path | None, calib: str | Path | None, extra: Iterable[Path] = ()
) -> list[Path]:
    """Every file the bundle depends on (`extra`: further inputs, like --const-input files), absolute and sorted."""
    deps: list[Path] = [*model_files(model_path), *extra]
    if calib:
        deps.extend(expand(Path(calib)))
    if target_path is not None:
        deps.append(target_path)
    if config_path is not None:
        deps.append(config_path)
    return sorted({Path(os.path.abspath(p)) for p in deps})


def escape(path: str) -> str:
    out = []
    for ch in path:
        if ch == "$":
            out.append("$$")
        elif ch in " #":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def render(target: Path, deps: Iterable[Path]) -> str:
    lines = [escape(str(target)) + ":"]
    for d in deps:
        lines.append(" " + escape(str(d)))
    return " \\\n".join(lines) + "\n"


def write_depfile(depfile: Path, output: Path, deps: Iterable[Path]) -> None:
    """Write the rule `output/manifest.json: deps...` to `depfile` atomically."""
    target = Path(os.path.abspath(output)) / MANIFEST_JSON
    text = render(target, deps)
    depfile = Path(depfile)
    parent = depfile.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{depfile.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, depfile)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
