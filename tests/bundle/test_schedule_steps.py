"""The schedule's steps keep every lane in step order, also when a lane's later partition reads less deeply
than an earlier one (a YOLOv8 head for galaxy-s21 once gave an `internal` schedule-order error)."""

from __future__ import annotations

from stretchc.bundle.manifest import _steps
from stretchc.ir import Graph, Module, Node, Partition, SyncPoint, Value


def _module(chain: list[tuple[str, str, str | None]]) -> Module:
    """Partitions (name, processor, the partition it reads from or None), each reading through one sync point."""
    nodes, syncs, parts = [], [], []
    for name, processor, reads in chain:
        inputs = []
        if reads is not None:
            value = Value(f"{name}.in", (1,), "float32")
            sync = f"sync.{name}"
            nodes.append(Node("stretch.sync", [Value(f"{reads}.out", (1,), "float32")], [value], {"sync": sync}))
            syncs.append(SyncPoint(sync, f"{reads}.out", reads, [name], "slot0", "edge"))
            inputs.append(value.name)
        parts.append(Partition(name, processor, [name], inputs=inputs, outputs=[f"{name}.out"]))
    module = Module(Graph())
    module.graph.nodes = nodes
    module.partitions, module.sync_points = parts, syncs
    return module


def test_a_lane_runs_in_step_order() -> None:
    # a (cpu) -> b (gpu) -> c (gpu, merged deep partition); d (gpu) reads only a: data depth 1, but after c on the gpu lane
    module = _module([("a", "cpu", None), ("b", "gpu", "a"), ("c", "gpu", "b"), ("d", "gpu", "a")])
    steps = _steps(module)
    step = {p: k for k, s in enumerate(steps) for p in s}
    assert step["a"] < step["b"] < step["c"] < step["d"]


def test_independent_lanes_still_share_a_step() -> None:
    module = _module([("a", "cpu", None), ("b", "gpu", "a"), ("c", "cpu", "a")])
    assert _steps(module) == [["a"], ["b", "c"]]
