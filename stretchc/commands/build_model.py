"""`stretchc build-model CONFIG.yaml -o model.onnx [--image-size 224] [--seed 0] [--complexity] [--strict] [--timed]`.

Writes the ONNX model of an NN-Stretch configuration (seeded random weights, placement in the metadata), as the
prototype's Keras builder built it: every inconsistency it tolerates is built its way and reported as a
`lenient-config` warning; `--strict` refuses the configuration instead.
The file is written atomically with the user's umask (stretchc/fileio.py), so a failure leaves nothing behind
and an existing file is either fully replaced or untouched. An existing file is replaced
only when it is an ONNX model stretchc wrote (a user's file is refused, `output-exists`), and never the
configuration itself. `--complexity` prints flops/params/acts as pycls counts them.
"""

from __future__ import annotations

import argparse

from stretchc import api
from stretchc.console import get_console
from stretchc.modelbuild import complexity
from stretchc.modelbuild.config import Config


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "build-model",
        parents=[common],
        help="build the ONNX model of an NN-Stretch (mbanynet) configuration, with random weights",
        description=(
            "Build the ONNX model (opset 13, input 'input' 1x3xHxW, output 'logits') of an NN-Stretch YAML "
            "configuration with seeded random weights. The configuration's placement (DEVICES, STEM_DEVICE, "
            "MERGE_DEVICE, HEAD_DEVICE) is recorded in the model's metadata for `stretchc compile "
            "--place-from-model`."
        ),
    )
    p.add_argument("config", metavar="CONFIG.yaml", help="the NN-Stretch configuration (pycls/yacs YAML)")
    p.add_argument("-o", "--output", metavar="MODEL.onnx", help="output model (default: ./<config stem>.onnx)")
    p.add_argument("--image-size", type=int, default=224, metavar="N", help="input height and width (default 224)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    p.add_argument(
        "--complexity", action="store_true", help="print flops, params and activations (counted as pycls does)"
    )
    p.add_argument(
        "--strict", action="store_true",
        help="refuse a configuration the prototype's builder only tolerates (lists of different lengths, "
        "ORIGINAL_WIDTHS that are not the stage's width) instead of building it with a warning",
    )
    p.add_argument(
        "--timed", action="store_true",
        help="build the layers of the prototype's Keras model, the one its latencies were measured on (no "
        "squeeze-excite, ReLU in CPU layers) instead of the trained PyTorch model's",
    )
    p.set_defaults(func=run)


def _format_complexity(cfg: Config, image_size: int) -> str:
    cx = complexity(cfg, image_size)
    rows = [
        ("config", cfg.name),
        ("image size", str(image_size)),
        ("flops", f"{cx['flops']:,} ({cx['flops'] / 1e9:.3f} G)"),
        ("params", f"{cx['params']:,} ({cx['params'] / 1e6:.3f} M)"),
        ("acts", f"{cx['acts']:,} ({cx['acts'] / 1e6:.3f} M)"),
    ]
    return "\n".join(f"{k:<11}{v}" for k, v in rows)


def run(args: argparse.Namespace) -> int:
    console = get_console()
    built = api.build_model(
        args.config, args.output, image_size=args.image_size, seed=args.seed, strict=args.strict, timed=args.timed, console=console
    )
    if args.complexity:
        console.out(_format_complexity(built.config, args.image_size))
    return 0
