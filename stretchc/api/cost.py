"""The cost model: measuring this machine as a target (`stretchc calibrate`) and how well the model predicts
(`stretchc cost-model`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml

from stretchc.api._common import console_for, reporting
from stretchc.console import Console
from stretchc.costmodel.accuracy import TargetAccuracy, accuracy
from stretchc.costmodel.microbench import KERNELS, measure, target_data
from stretchc.driver import check_output_file
from stretchc.errors import StretchError
from stretchc.fileio import write_atomically
from stretchc.targets import known_targets, load_target
from stretchc.targets.host import HOST_TARGET, MEASURED_HEADER, last_level_cache_mb
from stretchc.targets.host import describe as describe_host


def _measured_target(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(MEASURED_HEADER)) == MEASURED_HEADER.encode()


def calibrate(
    output: str | Path, *, target: str = HOST_TARGET, runs: int = 50, warmup: int = 5, quiet: bool = True, console: Console | None = None
) -> dict[str, Any]:
    """Measure this machine's CPU kernels and write them as a target file at `output` (.yaml), as `stretchc calibrate`
    does: the kernel micro-benchmarks (stretchc/costmodel/microbench.py) timed at float32 and int8, `runs` timed runs
    after `warmup` untimed ones, the minimum counting; the cost model's CPU parameters fitted to them. Returns the
    target file's contents (compile with `target=output`). Only `target="host"` can be measured. An existing file is
    replaced only when this function wrote it."""
    if target != HOST_TARGET:
        raise StretchError("usage", f"calibrate measures the machine it runs on: -t {HOST_TARGET} (measuring {target} would need its kernels run on it through adb, which stretchc does not do yet)")
    output = Path(output)
    if output.suffix not in (".yaml", ".yml"):
        raise StretchError("usage", "the target file must end in .yaml or .yml (compile reads -t PATH as a file by that suffix)", file=str(output))
    if runs < 1 or warmup < 0:
        raise StretchError("usage", "--runs must be >= 1 and --warmup >= 0")
    check_output_file(output, ours=_measured_target, what="a target file")
    console = console_for(quiet, console)
    with reporting(console):
        with console.step("describing this machine"):
            raw = describe_host()
        with console.step(f"timing {2 * len(KERNELS)} kernel micro-benchmarks ({runs} runs each, one thread)"):
            measurements = measure(KERNELS, runs=runs, warmup=warmup, progress=lambda i, n, what: console.progress(what, i, n))
        data = target_data(raw, measurements, runs, warmup, last_level_cache_mb())
        write_atomically((MEASURED_HEADER + yaml.safe_dump(data, sort_keys=False, width=140)).encode(), output)
    return data


def cost_model_accuracy(targets: Sequence[str] = (), *, loo: bool = True) -> list[TargetAccuracy]:
    """How well the latency cost model predicts each of `targets` (names or target files; default every known one),
    as `stretchc cost-model --report` prints it: per target its calibration points measured against predicted, with
    their leave-one-out errors when `loo` (each point predicted by a fit without it), and per processor and dtype
    the parameters it is priced with and whether they are prior-dominated."""
    return accuracy([load_target(t) for t in (targets or known_targets())], loo=loo)
