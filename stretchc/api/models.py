"""Models to compile: an NN-Stretch configuration built (`stretchc build-model`), the bundled examples
(`stretchc example`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from stretchc.api._common import check_choice, console_for, reporting
from stretchc.console import Console
from stretchc.costmodel.accuracy import accuracy
from stretchc.digits.data import data_files
from stretchc.digits.export import trained_model
from stretchc.driver import check_output_dir, check_output_file
from stretchc.errors import StretchError
from stretchc.examples import example_model, stretchy_model
from stretchc.fileio import write_atomically
from stretchc.modelbuild import as_timed, load_config, placement_regions
from stretchc.modelbuild import build_model as build_onnx_model
from stretchc.modelbuild.config import Config
from stretchc.modelbuild.onnx_builder import unbranched_placement_notes


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
    console = console_for(quiet, console)
    config_path = Path(config)
    with reporting(console):
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
    check_choice("example", name, EXAMPLES)
    if data is not None and name != "digits":
        raise StretchError("usage", "--data: only the digits example has data (stretchc example digits --data DIR)")
    if output is None and data is None:
        raise StretchError("usage", "stretchc example: give -o FILE.onnx" + (" and/or --data DIR" if name == "digits" else ""))
    console = console_for(quiet, console)
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
