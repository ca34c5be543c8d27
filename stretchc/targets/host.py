"""The machine stretchc runs on as a target, described from what the operating system says of it, for `stretchc
calibrate -t host` to measure.

Each backend gives its section (`Backend.host_section`: the CPU its cores; the others that the machine has none
of them). The description is nominal: the CPU's clock and FLOP/cycle set the peak the cost model's
efficiencies are fractions of, and a measured large-copy bandwidth stands for the memory's; the calibration
replaces both by what its measurements show and fits the efficiencies to them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from stretchc.backends import backends, fallback

HOST_TARGET = "host"
# The first line of a target file `stretchc calibrate` wrote: such a file, and only such, it may replace.
MEASURED_HEADER = "# A host target measured by stretchc calibrate (stretchc/commands/calibrate.py); compile with -t THIS_FILE.\n"


def cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def last_level_cache_mb(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> float | None:
    """The size (MiB) of the first CPU's largest cache level, as sysfs lists it (None where it does not)."""
    best: tuple[int, float] | None = None
    for index in sorted(root.glob("index*")):
        try:
            level = int((index / "level").read_text())
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        units = {"K": 1 / 1024, "M": 1.0, "G": 1024.0}
        mb = float(size[:-1]) * units[size[-1]] if size[-1:] in units else float(size) / (1 << 20)
        if best is None or (level, mb) > best:
            best = (level, mb)
    return None if best is None else best[1]


def copy_bandwidth_gbps(megabytes: int = 256, repeats: int = 3) -> float:
    """Bytes read and written per second by the best of `repeats` copies of a `megabytes` buffer."""
    src = np.ones(megabytes << 18, dtype=np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return round(2 * src.nbytes / best / 1e9, 1)


def describe() -> dict[str, Any]:
    """This machine as a target file's contents, before its calibration (`calibration: host`, no `measured`)."""
    info = cpuinfo()
    sections = {b.name: b.host_section(info) for b in backends()}
    core = sections[fallback().name]["clusters"][0]
    n = core["count"]
    limits = {key: spec.default for b in backends() for key, spec in sorted(b.limit_keys.items())}
    return {
        "name": HOST_TARGET,
        "description": f"this machine: {core['core']}, {n} core(s), its CPU only",
        "soc": {"name": core["core"], "vendor": info.get("vendor_id", "unknown"), "soc_id": None},
        **{name: section for name, section in sections.items() if section is not None or next(b for b in backends() if b.name == name).section_required},
        "memory": {"type": "measured copy bandwidth", "peak_gbps": copy_bandwidth_gbps()},
        "delegate_limits": limits,
        "calibration": HOST_TARGET,
        "protocol": {
            **{b.protocol_key.key: b.protocol_key.default for b in backends() if b.protocol_key is not None},
            fallback().protocol_key.key: "xnnpack",  # type: ignore[union-attr]
            "statistic": "min",
            "source": "stretchc calibrate: LiteRT's XNNPACK CPU kernels, one thread, the minimum of repeated runs",
        },
    }
