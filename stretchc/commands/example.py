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

from stretchc import api
from stretchc.console import get_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("example", parents=[common], help="write an example model (branchy, stretchy, or the trained digits classifier)", description=__doc__)
    p.add_argument("name", nargs="?", choices=api.EXAMPLES, default="branchy", help="which example (default branchy)")
    p.add_argument("-o", "--output", type=Path, help="the ONNX file to write")
    p.add_argument("--data", type=Path, metavar="DIR", help="digits: write its labelled calibration and held-out data (calib.npz, heldout.npz) into DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = get_console()
    written = api.write_example(args.name, args.output, data=args.data, console=console)
    if written.accuracy is not None:
        console.out(f"digits: held-out top-1 accuracy {100 * written.accuracy:.2f}% (ONNX Runtime)")
    return 0
