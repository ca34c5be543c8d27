"""`stretchc verify BUNDLE MODEL.onnx`: compare a bundle with ONNX Runtime per output and per sync point."""

from __future__ import annotations

import argparse
from typing import Any
from pathlib import Path

from stretchc.cli import finite_float, non_negative_float
from stretchc.commands._inputs import non_negative_int, positive_int, read_inputs
from stretchc.console import get_console
from stretchc.quantize.calibration_data import check_calibration_options, parse_preprocess
from stretchc.verify import DEFAULT_SAMPLES, verify_bundle


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


def check_preprocess(args: argparse.Namespace) -> None:
    """`--preprocess`, before any work, as compile checks it (stretchc/quantize/calibration_data.py): parsed
    completely, and given only for --input-dir images. Without --input-dir the inputs are --input arrays or
    seeded random ones, fed as they are: preprocessing that would not happen is a usage error."""
    check_calibration_options(args.input_dir, args.preprocess)
    pre = parse_preprocess(args.preprocess)
    if pre.given and not args.input_dir:
        fed = "the --input arrays" if args.input else "seeded random inputs"
        raise pre.error(f"preprocessing applies to --input-dir images; {fed} are fed as they are (drop --preprocess, or give --input-dir)")


def run(args: argparse.Namespace) -> int:
    check_preprocess(args)
    inputs = [read_inputs(args.input)] if args.input else None
    labels = None
    bundle: Any = args.bundle
    if args.input_dir:
        from stretchc.bundle.manifest import compiled_shapes
        from stretchc.frontend.module import onnx_inputs
        from stretchc.frontend.validate import load_model
        from stretchc.quantize.calibration_data import load_calibration
        from stretchc.runtime.host import HostRuntime

        bundle = HostRuntime(args.bundle)  # read once: its input shapes here, its run in verify_bundle
        model = load_model(args.model, compiled_shapes=compiled_shapes(bundle.manifest))
        data = load_calibration(args.input_dir, onnx_inputs(model), preprocess=args.preprocess)
        inputs, labels = data.samples, data.labels
    report = verify_bundle(
        bundle, args.model, inputs=inputs, samples=args.samples, seed=args.seed, atol=args.atol, rtol=args.rtol, min_sqnr=args.min_sqnr,
        labels=labels, labels_source=args.input_dir or "",
        const_inputs=read_inputs(args.const_input, "--const-input"),
    )
    report.present(get_console())
    report.raise_if_failed()
    return 0
