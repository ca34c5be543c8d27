"""The CPU: TFLite's CPU kernels (XNNPACK in bundles; builtin kernels under the prototype's protocol), float32 and
int8, on every phone. The fallback of every other processor: a partition whose delegate is missing runs here,
and a region no other processor may take runs here.

Target section `cpu`: the clusters (core, count, clock, cpu ids, FP32 FLOP/cycle), the threads of a partition's
interpreter and the cores it is pinned to, and how many CPU partitions run at the same time (`lanes`, default 1:
each lane a runtime thread running its partitions in order, each partition on `threads` threads; a phone's CPU
runs one, the host target one per core). Cost model: families `cpu-{float,int8}-{builtin,xnnpack}` (protocol
key `cpu_kernels`); peak = FLOP/cycle x clock of the `threads` fastest affinity cores, x4 for int8 (SDOT dot
products, ARMv8.2: A55, A75 and later); the dispatch of a CPU partition is not fitted (nothing separates it).
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from stretchc.backends import register_backend
from stretchc.backends.base import Backend, Execution, ProtocolKey

# FP32 FMA FLOP/cycle/core (../shared/facts/tflite-delegates.md §8): X1/X2/X3 = 32, A7x = 16, A5x/A510 = 8.
_CORE_FLOPS = [(r"\bX[1-4]\b", 32), (r"A7\d|A71\d|Gold|Prime|Mongoose", 16), (r"A5\d|A510|Silver", 8)]
INT8_PEAK = 4.0  # int8 dot products do 4x the FP32 FMA work per cycle


def core_flop_per_cycle(cluster: Mapping[str, Any]) -> float:
    if "fp32_flop_per_cycle" in cluster:
        return float(cluster["fp32_flop_per_cycle"])
    for pattern, value in _CORE_FLOPS:
        if re.search(pattern, cluster["core"]):
            return float(value)
    return 8.0


def peak_gflops(section: Mapping[str, Any], threads: int, affinity: Iterable[int] | None = None) -> float:
    """FP32 peak of `threads` cores: the fastest of the affinity cores if given, else of the whole SoC."""
    cores: list[tuple[float, int]] = []  # (GFLOPS of one core, cpu id)
    for cl in section["clusters"]:
        per = core_flop_per_cycle(cl) * float(cl["fmax_ghz"])
        cores += [(per, c) for c in cl["cpus"]]
    aff = set(affinity or [])
    pick = [p for p, c in cores if c in aff] or [p for p, _ in cores]
    pick.sort(reverse=True)
    return sum(pick[:threads])


# FP32 FLOP/cycle/core (FMA = 2) of an x86-64 core by its widest vector extension; 8 for anything else.
_HOST_FLOPS = (("avx512f", 64), ("avx2", 32), ("avx", 16))


def host_clock_ghz(cpuinfo: Mapping[str, str]) -> float:
    """This machine's nominal core clock: cpufreq's maximum, else /proc/cpuinfo's current MHz, else BogoMIPS / 2
    (a boost clock is not stated anywhere; `stretchc calibrate` sets the clock its measurements show)."""
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e6
    except (OSError, ValueError):
        pass
    for key, scale in (("cpu MHz", 1e3), ("bogomips", 2e3)):
        try:
            return round(float(cpuinfo[key]) / scale, 3)
        except (KeyError, ValueError):
            continue
    return 2.0


def host_flop_per_cycle(cpuinfo: Mapping[str, str]) -> int:
    flags = set(cpuinfo.get("flags", "").split())
    return next((v for flag, v in _HOST_FLOPS if flag in flags and (flag != "avx2" or "fma" in flags)), 8)


class Cpu(Backend):
    name = "cpu"
    label = "CPU"
    delegate = "xnnpack"
    order = 0
    fallback = True
    PRECISIONS = ("float32", "int8")
    nnstretch_tag = "cpu"
    prototype_device = "cpu"
    colour = "#1f77b4"
    section_schema = {
        "type": "object",
        "required": ["clusters", "threads", "affinity"],
        "additionalProperties": False,
        "properties": {
            "clusters": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["core", "count", "fmax_ghz", "cpus"],
                    "additionalProperties": False,
                    "properties": {
                        "core": {"type": "string"},
                        "count": {"type": "integer", "minimum": 1},
                        "fmax_ghz": {"type": "number", "exclusiveMinimum": 0},
                        "cpus": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                        "fp32_flop_per_cycle": {
                            "type": "number", "exclusiveMinimum": 0, "description": "FP32 FLOP/cycle/core (FMA = 2); default from the core name",
                        },
                    },
                },
            },
            "threads": {"type": "integer", "minimum": 1, "description": "CPU threads for a CPU partition"},
            "affinity": {"type": "array", "items": {"type": "integer", "minimum": 0}, "description": "cores CPU partitions are pinned to"},
            "lanes": {
                "type": "integer", "minimum": 1,
                "description": "CPU partitions that run at the same time, each lane with its own threads (default 1)",
            },
        },
    }
    protocol_key = ProtocolKey(
        "cpu_kernels", ("builtin", "xnnpack"), "builtin",
        "TFLite's builtin kernels (--use_xnnpack=false) or XNNPACK; threads and affinity: cpu.threads, cpu.affinity",
    )
    kernel_priors = {
        "cpu-int8-builtin": {"conv": 0.3, "dwconv": 0.03, "mem": 0.25, "op_ms": 0.005},
        "cpu-int8-xnnpack": {"conv": 0.35, "dwconv": 0.05, "mem": 0.3, "op_ms": 0.004},
        "cpu-float-builtin": {"conv": 0.45, "dwconv": 0.15, "mem": 0.3, "op_ms": 0.004},
        "cpu-float-xnnpack": {"conv": 0.6, "dwconv": 0.2, "mem": 0.35, "op_ms": 0.003},
    }
    dispatch_ms = 0.02
    fit_dispatch = False

    def host_section(self, cpuinfo: Mapping[str, str]) -> Any:
        """One cluster of every core of this machine at its nominal clock and FP32 FLOP/cycle (`host_clock_ghz`,
        `host_flop_per_cycle`); one thread per partition, on any core, and as many lanes as cores."""
        core = re.sub(r"\s+", " ", cpuinfo.get("model name") or platform.processor() or platform.machine() or "unknown CPU")
        cpus = list(range(os.cpu_count() or 1))
        cluster = {"core": core, "count": len(cpus), "fmax_ghz": host_clock_ghz(cpuinfo), "cpus": cpus, "fp32_flop_per_cycle": host_flop_per_cycle(cpuinfo)}
        return {"clusters": [cluster], "threads": 1, "affinity": list(cpus), "lanes": len(cpus)}

    def describe(self, target: Any) -> str:
        cpu = target.raw[self.name]
        cores = " + ".join(f"{cl['count']}x {cl['core']} {cl['fmax_ghz']} GHz" for cl in cpu["clusters"])
        lanes = self.lanes(target)
        at_once = f"; {lanes} partitions at the same time" if lanes > 1 else ""
        return f"{cores}; partitions use {cpu['threads']} thread(s) on cores {', '.join(str(c) for c in cpu['affinity'])}{at_once}"

    def threads(self, target: Any) -> tuple[int, tuple[int, ...]]:
        cpu = target.raw[self.name]
        return int(cpu["threads"]), tuple(int(c) for c in cpu["affinity"])

    def lanes(self, target: Any) -> int:
        return 1 if target is None else int(target.raw[self.name].get("lanes", 1))

    def execution(self, dtype: str, protocol: Any) -> Execution:
        q = dtype in ("int8", "uint8")
        kernels = protocol.get(self.protocol_key.key)
        return Execution(f"cpu-{'int8' if q else 'float'}-{kernels}", "int8" if q else "float32", 1 if q else 4)

    def peak_gops(self, hw: Mapping[str, Any], precision: str, *, threads: int | None = None) -> float:
        cpu = hw[self.name]
        base = peak_gflops(cpu, int(threads or cpu["threads"]), cpu["affinity"])
        return base * (INT8_PEAK if precision == "int8" else 1.0)


register_backend(Cpu())
