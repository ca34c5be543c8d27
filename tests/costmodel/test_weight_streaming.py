"""Weights beyond the last-level cache: a network's weights are read from memory every run, a micro-benchmark's
stay in cache; a measured target prices the difference (`Group.weight_gbps`, `CostModel.stream_weights`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from stretchc.costmodel import CostModel, OpProfile
from stretchc.costmodel.microbench import PROCESSOR
from stretchc.targets.host import describe, last_level_cache_mb

MiB = 1 << 20


@lru_cache(maxsize=1)
def _host() -> dict:  # type: ignore[type-arg]
    return describe()  # once: it measures the memory's copy bandwidth, which varies from call to call


def _target(cache_mb: float, weight_gbps: float | None) -> CostModel:
    raw = _host()
    kind = CostModel(raw).execution(PROCESSOR, "float32").kind
    params = {"conv": 0.5, "dwconv": 0.2, "mem": 0.5, "op_ms": 0.001, **({"weight_gbps": weight_gbps} if weight_gbps else {})}
    measured = {"kinds": {kind: params}, "dispatch_ms": {PROCESSOR: 0.0}, "cache_mb": cache_mb}
    return CostModel({**raw, "calibration": "host", "measured": measured})


def test_weights_beyond_the_cache_are_read_at_the_measured_bandwidth_every_run() -> None:
    op = OpProfile("conv", 1e6, 1e5, 1, "", 4 * MiB)  # 16 MiB of float32 weights
    plain = _target(8.0, None)
    cm = _target(8.0, 40.0)
    base = plain.ops_ms([op], PROCESSOR, "float32")
    assert cm.ops_ms([op], PROCESSOR, "float32") == pytest.approx(base)  # the model's weights not given: none streamed
    cm.stream_weights(8 * MiB)  # the model: 32 MiB of weights, 8 of them stay in the cache
    assert cm.streamed(PROCESSOR, "float32") == pytest.approx(0.75)
    assert cm.ops_ms([op], PROCESSOR, "float32") - base == pytest.approx(0.75 * 16 * MiB / 40e6)
    cm.stream_weights(MiB)  # 4 MiB in all: they stay in the cache
    assert cm.ops_ms([op], PROCESSOR, "float32") == pytest.approx(base)
    plain.stream_weights(8 * MiB)  # no bandwidth measured (every phone): nothing added
    assert plain.ops_ms([op], PROCESSOR, "float32") == pytest.approx(base)


def test_the_last_level_cache_is_the_largest_level_sysfs_lists(tmp_path: Path) -> None:
    for index, level, size in (("index0", 1, "48K"), ("index2", 2, "1024K"), ("index3", 3, "32768K")):
        (tmp_path / index).mkdir()
        (tmp_path / index / "level").write_text(f"{level}\n")
        (tmp_path / index / "size").write_text(f"{size}\n")
    assert last_level_cache_mb(tmp_path) == 32.0
    assert last_level_cache_mb(tmp_path / "missing") is None
