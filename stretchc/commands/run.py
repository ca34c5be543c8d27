"""`stretchc run BUNDLE --input NAME=FILE.npy ...`: execute a bundle on the host reference runtime."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stretchc.commands._inputs import non_negative_int, positive_float, read_inputs
from stretchc.console import get_console
from stretchc.errors import StretchError
from stretchc.runtime.host import DEFAULT_STALL_TIMEOUT, HostRuntime, Profile
from stretchc.verify import seeded_inputs


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", parents=[common], help="run a bundle on the host reference runtime", description=__doc__)
    p.add_argument("bundle", type=Path)
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy", help="an input array in the ONNX layout")
    p.add_argument("--seed", type=non_negative_int, default=None, help="use seeded random inputs instead of --input")
    p.add_argument("--output-dir", type=Path, help="write every output as NAME.npy (ONNX layout; see output_file_name)")
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


def run(args: argparse.Namespace) -> int:
    if args.input and args.seed is not None:
        raise StretchError("usage", "give either --input or --seed, not both")
    given = read_inputs(args.input) if args.input or args.seed is None else None
    runtime = HostRuntime(args.bundle)
    inputs = given if given is not None else seeded_inputs(runtime.manifest, args.seed)
    profile = Profile() if args.profile else None
    outputs = runtime.run(inputs, profile=profile, stall_timeout=args.stall_timeout)
    console = get_console()
    if args.output_dir is not None:
        try:
            args.output_dir.mkdir(parents=True, exist_ok=True)
            for name, arr in sorted(outputs.items()):
                np.save(args.output_dir / output_file_name(name), arr)
        except OSError as exc:
            raise StretchError("write-failed", f"cannot write outputs: {exc.strerror or exc}", file=str(args.output_dir)) from None
    for name, arr in sorted(outputs.items()):
        flat = arr.reshape(-1)
        top = f", argmax {int(np.argmax(flat))}" if arr.ndim == 2 and arr.shape[0] == 1 else ""
        console.out(f"{name}: {arr.dtype}{list(arr.shape)} min {flat.min():.6g} max {flat.max():.6g}{top}")
    if profile is not None:
        console.out(profile.table())
    return 0
