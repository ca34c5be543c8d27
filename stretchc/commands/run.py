"""`stretchc run BUNDLE --input NAME=FILE.npy ...`: execute a bundle on the host reference runtime."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stretchc.commands._inputs import read_inputs
from stretchc.console import get_console
from stretchc.errors import StretchError
from stretchc.runtime.host import HostRuntime, Profile
from stretchc.verify import seeded_inputs


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", parents=[common], help="run a bundle on the host reference runtime", description=__doc__)
    p.add_argument("bundle", type=Path)
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy", help="an input array in the ONNX layout")
    p.add_argument("--seed", type=int, default=None, help="use seeded random inputs instead of --input")
    p.add_argument("--output-dir", type=Path, help="write every output as NAME.npy (ONNX layout)")
    p.add_argument("--profile", action="store_true", help="print per-partition and per-sync-point times")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    runtime = HostRuntime(args.bundle)
    if args.input and args.seed is not None:
        raise StretchError("usage", "give either --input or --seed, not both")
    inputs = read_inputs(args.input) if args.input or args.seed is None else seeded_inputs(runtime.manifest, args.seed)
    profile = Profile() if args.profile else None
    outputs = runtime.run(inputs, profile=profile)
    console = get_console()
    if args.output_dir is not None:
        try:
            args.output_dir.mkdir(parents=True, exist_ok=True)
            for name, arr in sorted(outputs.items()):
                np.save(args.output_dir / f"{name.replace('/', '_')}.npy", arr)
        except OSError as exc:
            raise StretchError("write-failed", f"cannot write outputs: {exc.strerror or exc}", file=str(args.output_dir)) from None
    for name, arr in sorted(outputs.items()):
        flat = arr.reshape(-1)
        top = f", argmax {int(np.argmax(flat))}" if arr.ndim == 2 and arr.shape[0] == 1 else ""
        console.out(f"{name}: {arr.dtype}{list(arr.shape)} min {flat.min():.6g} max {flat.max():.6g}{top}")
    if profile is not None:
        console.out(profile.table())
    return 0
