"""insert-sync-points: give every value that crosses a partition boundary a sync point and an arena slot.

For a value produced in one partition (or a model input) and read by others, a `stretch.sync` node is
inserted after its producer and the other partitions read the sync node's result, so the dump shows
every synchronisation explicitly. Model outputs get a sync point whose consumer is `host`.

Buffer plan (zero-copy): every sync point owns one slot of a shared arena, in the dtype of its value (int8
where producer and consumers are int8: quantize-partitions runs first); the producer writes into the
slot and every consumer reads the same bytes, so nothing is copied at a sync point. Slots are 64-byte
aligned. Two slots may share arena bytes only when one's lifetime ends before the other's begins in
every possible interleaving of the concurrent schedule: all consumers of the first are ancestors of the
second's producer in the partition graph. Placement is first-fit, largest first, deterministic.
The `arena` analysis records the arena's bytes and those of the same plan with every slot float32.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Callable

from stretchc.analyses import Arena
from stretchc.errors import StretchError
from stretchc.ir import DTYPE_SIZES, HOST, BufferSlot, Module, Node, SyncPoint, Value, boundary
from stretchc.passmanager import Pass, PassContext, register_pass
from stretchc.precision import QUANTIZED

ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def partition_ancestors(module: Module) -> dict[str, set[str]]:
    """For every partition, the partitions it (transitively) waits for."""
    producer_of: dict[str, str] = {}
    for n in module.graph.nodes:
        if n.op == "stretch.sync":
            src = n.inputs[0]
            producer_of[n.outputs[0].name] = src.producer.partition if src is not None and src.producer else HOST  # type: ignore[assignment]
    anc: dict[str, set[str]] = {}
    for p in module.partitions:  # partitions are in topological order
        direct = {producer_of[i] for i in p.inputs if i in producer_of} - {HOST}
        anc[p.name] = set(direct)
        for d in direct:
            anc[p.name] |= anc[d]
    return anc


def _happens_before(a: SyncPoint, b: SyncPoint, anc: dict[str, set[str]]) -> bool:
    """Every consumer of `a` has finished before `b`'s producer starts."""
    if HOST in a.consumers:
        return False
    if b.producer == HOST:
        return False
    return all(c in anc[b.producer] for c in a.consumers)


@register_pass
@dataclass(frozen=True)
class InsertSyncPoints(Pass):
    """Inserts stretch.sync nodes and plans the shared arena."""

    name = "insert-sync-points"
    summary = "sync point and zero-copy arena slot for every value crossing a partition boundary"
    requires = ("outline-partitions",)
    produces = (Arena,)

    def run(self, module: Module, ctx: PassContext) -> bool:
        if not module.partitions:
            raise StretchError("ir-invalid", "insert-sync-points needs partitions: run outline-partitions first")
        if any(n.op == "stretch.sync" for n in module.graph.nodes):
            return False
        g = module.graph
        sync_points: list[SyncPoint] = []
        crossing: list[Value] = list(g.inputs)
        for n in g.nodes:
            crossing += [v for v in n.outputs if any(u.partition != n.partition for u, _ in v.uses)]
        outputs = {id(v) for v in g.outputs}
        for k, v in enumerate(crossing):
            name = f"sync{k}"
            producer = v.producer.partition if v.producer is not None else HOST
            consumer_nodes = [u for u, _ in v.uses if u.partition != producer]
            consumers = sorted({u.partition for u in consumer_nodes}, key=[p.name for p in module.partitions].index)  # type: ignore[arg-type]
            if id(v) in outputs:
                consumers.append(HOST)
            if consumer_nodes:
                synced = Value(f"{v.name}.sync", v.shape, v.dtype, quant=v.quant)
                node = Node("stretch.sync", [v], [synced], {"sync": name})
                for user, idx in list(v.uses):
                    if user is not node and user.partition != producer:
                        user.set_input(idx, synced)
                if v.producer is None:
                    g.nodes.insert(0, node)
                else:
                    g.insert_after(v.producer, node)
            sync_points.append(SyncPoint(name=name, value=v.name, producer=producer, consumers=consumers, slot=f"slot{k}", kind=""))
        for v in g.outputs:
            if not any(s.value == v.name for s in sync_points):
                k = len(sync_points)
                sync_points.append(SyncPoint(f"sync{k}", v.name, v.producer.partition if v.producer else HOST, [HOST], f"slot{k}", ""))  # type: ignore[arg-type]
        for p in module.partitions:
            p.inputs, p.outputs = boundary(module, p.name)
        producers_into: dict[str, set[str]] = {}
        for s in sync_points:
            for c in s.consumers:
                producers_into.setdefault(c, set()).add(s.producer)
        for s in sync_points:
            if s.producer == HOST:
                s.kind = "input"
            elif s.consumers == [HOST]:
                s.kind = "output"
            elif len(s.consumers) > 1:
                s.kind = "fork"
            elif len(producers_into[s.consumers[0]]) > 1:
                s.kind = "join"
            else:
                s.kind = "edge"
        module.sync_points = sync_points
        module.buffers, module.arena_size = plan_buffers(module, lambda v: v.nbytes)
        _, float_arena = plan_buffers(module, lambda v: v.nbytes // DTYPE_SIZES[v.dtype] * 4 if v.dtype in QUANTIZED else v.nbytes)
        ctx.analyses.put(Arena(module.arena_size, float_arena))
        return True


def plan_buffers(module: Module, size_of: Callable[[Value], int]) -> tuple[list[BufferSlot], int]:
    """The slots of the module's sync points (in sync point order) and the arena size, each slot `size_of` its
    value's bytes (see the module docstring)."""
    values = module.graph.value_map()
    anc = partition_ancestors(module)
    placed: list[tuple[SyncPoint, int, int]] = []  # (sync point, offset, size)
    slots: dict[str, BufferSlot] = {}
    order = sorted(module.sync_points, key=lambda s: (-size_of(values[s.value]), s.name))
    for s in order:
        v = values[s.value]
        size = _align(size_of(v))
        conflicts = sorted(
            (off, sz) for other, off, sz in placed if not (_happens_before(other, s, anc) or _happens_before(s, other, anc))
        )
        offset = 0
        for off, sz in conflicts:
            if offset + size <= off:
                break
            offset = max(offset, _align(off + sz))
        placed.append((s, offset, size))
        slots[s.name] = BufferSlot(name=s.slot, offset=offset, size=size, dtype=v.dtype, shape=v.shape)
    buffers = [slots[s.name] for s in module.sync_points]
    return buffers, max((b.offset + b.size for b in buffers), default=0)
