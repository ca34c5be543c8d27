"""`stretchc verify BUNDLE MODEL.onnx`: compare a bundle with ONNX Runtime per output and per sync point."""

from __future__ import annotations

import argparse
from pathlib import Path

from stretchc.api import Bundle, check_verify_data
from stretchc.cli import finite_float, non_negative_float
from stretchc.commands._inputs import input_files, non_negative_int, positive_int, read_inputs
from stretchc.console import get_console
from stretchc.verify import DEFAULT_SAMPLES


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("verify", parents=[common], help="compare a bundle with ONNX Runtime", description=__doc__)
    p.add_argument("bundle", type=Path)
    p.add_argument("model", type=Path)
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy", help="inputs (default: seeded random)")
    p.add_argument("--const-input", action="append", default=[], metavar="NAME=FILE.npy", help="an input's compile-time value (as given to compile --const-input)")
    p.add_argument("--input-dir", metavar="PATH", help="inputs as calibration-style data: a folder of images, a .npy or a .npz (N samples; a .npz with `labels` also reports top-1 accuracy)")
    p.add_argument("--preprocess", metavar="size=S,mean=M:M:M,std=S:S:S", help="--input-dir images: preprocessing (as for compile --calib)")
    p.add_argument("--min-sqnr", type=finite_float, default=None, metavar="DB", help="pass on SQNR >= DB instead of max|err| (default 20 dB for bundles with DSP partitions)")
    p.add_argument("--samples", type=positive_int, default=DEFAULT_SAMPLES, help=f"number of seeded random inputs (default {DEFAULT_SAMPLES})")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--atol", type=non_negative_float, default=None, help="absolute tolerance (default 1e-4 x max|reference|, at least 1e-6)")
    p.add_argument("--rtol", type=non_negative_float, default=0.0, help="relative tolerance, times max|reference|")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_verify_data(args.input_dir, args.preprocess, arrays=bool(args.input))  # before any work; Bundle.verify checks it too
    inputs = [read_inputs(args.input)] if args.input else None
    const_inputs = input_files(args.const_input, "--const-input")
    console = get_console()
    report = Bundle(args.bundle, console=console).verify(
        args.model, inputs=inputs, data=args.input_dir, preprocess=args.preprocess, samples=args.samples, seed=args.seed,
        atol=args.atol, rtol=args.rtol, min_sqnr=args.min_sqnr, const_inputs=const_inputs,
    )
    report.present(console)
    report.raise_if_failed()
    return 0
