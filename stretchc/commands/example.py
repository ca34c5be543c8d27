"""`stretchc example [stretchy|branchy|digits] -o FILE.onnx [--data DIR]`: write an example model.

stretchy: the README's first example (two stages of two deep branches; on a Pixel 6 they run on the CPU and the
GPU at the same time).

branchy (the default): the bundled synthetic example (a 2-stage, 2- and 3-branch network, seeded weights).
digits: the trained example: trains a small branched CNN on scikit-learn's handwritten digits (seeded, about
half a minute), checks its ONNX export against the trained network and prints its held-out accuracy;
`--data DIR` writes the labelled data (DIR/calib.npz, DIR/heldout.npz) for `--calib` and `verify --input-dir`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from stretchc.commands.build_model import is_stretchc_model, write_atomically
from stretchc.console import get_console
from stretchc.driver import check_output_dir, check_output_file
from stretchc.errors import StretchError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("example", parents=[common], help="write an example model (branchy, stretchy, or the trained digits classifier)", description=__doc__)
    p.add_argument("name", nargs="?", choices=("branchy", "stretchy", "digits"), default="branchy", help="which example (default branchy)")
    p.add_argument("-o", "--output", type=Path, help="the ONNX file to write")
    p.add_argument("--data", type=Path, metavar="DIR", help="digits: write its labelled calibration and held-out data (calib.npz, heldout.npz) into DIR")
    p.set_defaults(func=run)


def _holding(data: bytes) -> Callable[[Path], bool]:
    """Recognizes a file holding exactly `data`: the digits data is fixed (a seeded split of a bundled data set),
    so such a file is what an earlier `--data` wrote, and replacing it loses nothing."""
    return lambda path: path.stat().st_size == len(data) and path.read_bytes() == data


def run(args: argparse.Namespace) -> int:
    if args.data is not None and args.name != "digits":
        raise StretchError("usage", "--data: only the digits example has data (stretchc example digits --data DIR)")
    if args.output is None and args.data is None:
        raise StretchError("usage", "stretchc example: give -o FILE.onnx" + (" and/or --data DIR" if args.name == "digits" else ""))
    if args.output is not None:
        check_output_file(args.output, ours=is_stretchc_model, what="an ONNX model")
    files: dict[Path, bytes] = {}
    if args.data is not None:  # checked, like -o, before the training
        from stretchc.digits.data import data_files

        check_output_dir(args.data)
        files = {args.data / name: data for name, data in data_files().items()}
        for path, data in files.items():
            check_output_file(path, ours=_holding(data), what="the digits data")
    if args.name in ("branchy", "stretchy") and args.output is not None:
        from stretchc.examples import example_model, stretchy_model

        files[args.output] = (example_model() if args.name == "branchy" else stretchy_model()).SerializeToString()
    if args.name == "digits" and args.output is not None:
        from stretchc.digits.export import trained_model

        console = get_console()
        model, accuracy = trained_model(progress=lambda done, total: console.progress("training the digits classifier", done, total))
        files[args.output] = model.SerializeToString()
        console.out(f"digits: held-out top-1 accuracy {100 * accuracy:.2f}% (ONNX Runtime)")
    for path, data in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StretchError("write-failed", f"cannot create the folder: {exc.strerror or exc}", file=str(path.parent)) from None
        write_atomically(data, path)
    return 0
