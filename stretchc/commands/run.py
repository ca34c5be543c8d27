"""`stretchc run BUNDLE --input NAME=FILE.npy ...`: execute a bundle on the host reference runtime.

`--output-dir DIR` writes every output as `DIR/NAME.npy` (`output_file_name`) and a record of the run,
`DIR/run.json`: the bundle, the inputs (files or seed), the file of each output, and `files`, every file of the
folder a run wrote, with the sha256 of what it wrote. A .npy carries nothing that says who wrote it, so the
record is how a later run recognizes its own files: it replaces a file only when run.json lists it with the
checksum it has now (the rule of stretchc/driver.py `check_output_file`: a file the user made, or changed since,
is theirs: `output-exists`, and nothing is written). A run.json stretchc did not write is refused the same way;
no output, the folder included, is written through a symbolic link. The folder is checked before the bundle
runs and again before anything is written (a run can take minutes). Files an earlier run wrote that this one does
not are kept in the record while they hold what was written, so runs of different bundles can share a folder.

Every file is written atomically (stretchc/fileio.py). The record is written first, listing the new checksums
and, under `replacing`, the old ones of the files about to be replaced, then the outputs, then the record
without `replacing`: a run stopped at any point leaves every file whole, old or new, and listed, so the next
run into the folder still recognizes all of them.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stretchc import safejson
from stretchc.api import Bundle, Profile
from stretchc.bundle.manifest import sha256_bytes
from stretchc.commands._inputs import input_files, non_negative_int, positive_float, read_inputs
from stretchc.console import get_console
from stretchc.driver import check_output_dir, check_output_file
from stretchc.errors import StretchError
from stretchc.fileio import write_atomically
from stretchc.runtime.host import DEFAULT_STALL_TIMEOUT

RUN_RECORD = "run.json"
RUN_FORMAT = "stretchc-run"
RECORD_MAX_BYTES = 16 << 20  # a larger run.json is not one a run wrote: it is the user's, and not read whole


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", parents=[common], help="run a bundle on the host reference runtime", description=__doc__)
    p.add_argument("bundle", type=Path)
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy", help="an input array in the ONNX layout")
    p.add_argument("--seed", type=non_negative_int, default=None, help="use seeded random inputs instead of --input")
    p.add_argument("--output-dir", type=Path, help="write every output as NAME.npy (ONNX layout; see output_file_name) and run.json, the record of what was written")
    p.add_argument("--profile", action="store_true", help="print per-partition and per-sync-point times")
    p.add_argument(
        "--stall-timeout", type=positive_float, default=DEFAULT_STALL_TIMEOUT, metavar="SECONDS",
        help=f"end the run (run-stalled) when no partition starts or finishes for this long (default {DEFAULT_STALL_TIMEOUT:.0f})",
    )
    p.set_defaults(func=run)


_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def output_file_name(name: str) -> str:
    """The file an output is written to: NAME.npy with every byte outside [A-Za-z0-9_.-] (and a leading '.')
    written %XX, so that distinct names (`a/b`, `a_b`, `a%2Fb`) never share a file and none leaves the folder."""
    out = []
    for i, ch in enumerate(name):
        if ch in _SAFE and not (i == 0 and ch == "."):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out) + ".npy"


@dataclass(frozen=True)
class RunRecord:
    """What a folder's run.json says: `files`, file name -> sha256 of what a run wrote there; `replacing`, the
    checksums files had before a run that was stopped began replacing them (such a file holds one or the other)."""

    files: dict[str, str]
    replacing: dict[str, str]

    def written(self, path: Path) -> str | None:
        """The sha256 of `path` (a regular file of the folder) when it holds what a run wrote there, so that
        replacing it loses nothing; None when it does not."""
        known = {self.files.get(path.name), self.replacing.get(path.name)} - {None}
        if not known:
            return None
        with path.open("rb") as f:
            sha = hashlib.file_digest(f, "sha256").hexdigest()
        return sha if sha in known else None


def _is_output_file(name: Any) -> bool:
    """A name `output_file_name` can give: a plain .npy name in the folder (a record naming anything else, a path
    outside the folder say, is not one a run wrote)."""
    return isinstance(name, str) and name.endswith(".npy") and not name.startswith(".") and set(name) <= _SAFE | {"%"}


def load_record(path: Path) -> RunRecord | None:
    """The run record at `path` (a regular file), or None when it is not one a run wrote; OSError or ValueError
    when it cannot be read or parsed."""
    if path.stat().st_size > RECORD_MAX_BYTES:
        return None
    data = safejson.loads(path.read_bytes(), max_depth=8)
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
        return None
    tables = [data.get("files"), data.get("replacing")]
    if not all(isinstance(t, dict) and all(_is_output_file(k) and isinstance(v, str) for k, v in t.items()) for t in tables):
        return None
    return RunRecord(*tables)


def check_output_folder(folder: Path, files: list[str]) -> RunRecord:
    """Refuse, as stretchc/driver.py refuses any output, a --output-dir that cannot take the output `files` (names
    in it) without writing through a symbolic link or replacing a file a run did not write (module docstring);
    the folder's record (empty when it has none)."""
    check_output_dir(folder)
    found: list[RunRecord] = []  # the record check_output_file recognized, so that it is read once

    def recognized(path: Path) -> bool:
        record = load_record(path)
        if record is not None:
            found.append(record)
        return record is not None

    check_output_file(folder / RUN_RECORD, ours=recognized, what="a run record")
    record = found[0] if found else RunRecord({}, {})
    for name in files:
        check_output_file(folder / name, ours=lambda path: record.written(path) is not None, what="a run output")
    return record


def write_outputs(folder: Path, outputs: dict[str, np.ndarray], about: dict[str, Any]) -> None:
    """Write every output as `folder/NAME.npy`, and the record (`about` plus the checksums), in the order the
    module docstring gives; the folder is checked again first (`check_output_folder`)."""
    data = {output_file_name(name): _npy_bytes(arr) for name, arr in outputs.items()}
    record = check_output_folder(folder, list(data))
    files: dict[str, str] = {}
    for name in sorted(record.files.keys() - data.keys()):  # an earlier run's files, kept while they hold what it wrote
        path = folder / name
        sha = record.written(path) if path.is_file() and not path.is_symlink() else None
        if sha is not None:
            files[name] = sha
    files.update({name: sha256_bytes(content) for name, content in data.items()})
    replacing: dict[str, str] = {}
    for name in data:
        old = record.written(folder / name) if (folder / name).exists() else None  # checked: there, it is a run's
        if old is not None and old != files[name]:
            replacing[name] = old
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StretchError("write-failed", f"cannot make the output folder: {exc.strerror or exc}", file=str(folder)) from None
    about = {**about, "format": RUN_FORMAT, "outputs": {name: output_file_name(name) for name in sorted(outputs)}}
    write_atomically(_json({**about, "files": files, "replacing": replacing}), folder / RUN_RECORD)
    for name, content in data.items():
        write_atomically(content, folder / name)
    if replacing:
        write_atomically(_json({**about, "files": files, "replacing": {}}), folder / RUN_RECORD)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _json(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, indent=2) + "\n").encode("utf-8")


def run(args: argparse.Namespace) -> int:
    if args.input and args.seed is not None:
        raise StretchError("usage", "give either --input or --seed, not both")
    given = read_inputs(args.input) if args.input or args.seed is None else None
    console = get_console()
    bundle = Bundle(args.bundle, console=console)
    if args.output_dir is not None:  # the output names are the bundle's: checked before it runs
        check_output_folder(args.output_dir, [output_file_name(name) for name in bundle.outputs])
    inputs = given if given is not None else bundle.random_inputs(args.seed)
    profile = Profile() if args.profile else None
    outputs = bundle.run(inputs, profile=profile, stall_timeout=args.stall_timeout)
    if args.output_dir is not None:
        about = {
            "bundle": str(args.bundle.absolute()),
            "inputs": {name: str(Path(path).absolute()) for name, path in input_files(args.input).items()},
            "seed": args.seed,
        }
        write_outputs(args.output_dir, outputs, about)
    for name, arr in sorted(outputs.items()):
        flat = arr.reshape(-1)
        top = f", argmax {int(np.argmax(flat))}" if arr.ndim == 2 and arr.shape[0] == 1 else ""
        console.out(f"{name}: {arr.dtype}{list(arr.shape)} min {flat.min():.6g} max {flat.max():.6g}{top}")
    if profile is not None:
        console.out(profile.table())
    return 0
