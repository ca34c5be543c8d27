"""outline-partitions: cut the tagged regions into partitions with explicit boundary values.

Each region becomes one partition, named after it, except that a stage's join region and the head that
directly follows it merge when they share a processor and a precision (nothing runs between them, so a separate
partition would only add a synchronisation). A partition has its regions' processor and precision. A partition's inputs are the non-constant values its nodes read that
are produced elsewhere (or are model inputs); its outputs are the values it produces that are read
elsewhere (or are model outputs). Both lists are in first-use order, so names and files are stable.
"""

from __future__ import annotations

from dataclasses import dataclass

from stretchc.errors import StretchError
from stretchc.ir import Module, Partition
from stretchc.passmanager import Pass, PassContext, register_pass


def boundary(module: Module, partition: str) -> tuple[list[str], list[str]]:
    """(inputs, outputs) value names of `partition`, in first-use order."""
    nodes = [n for n in module.graph.nodes if n.partition == partition]
    produced = {id(v) for n in nodes for v in n.outputs}
    inputs: list[str] = []
    for n in nodes:
        for v in n.inputs:
            if v is not None and not v.is_const and id(v) not in produced and v.name not in inputs:
                inputs.append(v.name)
    graph_outputs = {id(v) for v in module.graph.outputs}
    outputs: list[str] = []
    for n in nodes:
        for v in n.outputs:
            used_outside = any(u.partition != partition for u, _ in v.uses)
            if (used_outside or id(v) in graph_outputs) and v.name not in outputs:
                outputs.append(v.name)
    return inputs, outputs


@register_pass
@dataclass(frozen=True)
class OutlinePartitions(Pass):
    """Groups nodes into partitions (one per region, join+head merged) with their boundary values."""

    name = "outline-partitions"
    summary = "cut regions into partitions with explicit boundary values"
    requires = ("assign-delegates",)

    def run(self, module: Module, ctx: PassContext) -> bool:
        nodes = module.graph.nodes
        if any(n.processor is None for n in nodes):
            raise StretchError("ir-invalid", "outline-partitions needs processors: run assign-delegates first")
        proc_of: dict[str | None, tuple[str | None, str]] = {}
        for n in nodes:
            if proc_of.setdefault(n.region, (n.processor, n.precision or "float32")) != (n.processor, n.precision or "float32"):
                raise StretchError("ir-invalid", f"region {n.region} mixes processors or precisions")
        names = [r.name for r in module.regions]
        part_of = {r: r for r in names}
        for r in module.regions:
            if r.kind == "head":
                last_join = next((x.name for x in reversed(module.regions) if x.kind == "join"), None)
                if last_join is not None and proc_of.get(last_join) == proc_of.get(r.name):
                    part_of[r.name] = last_join
        members: dict[str, list[str]] = {}
        for r in names:
            members.setdefault(part_of[r], []).append(r)
        partitions = [
            Partition(name="+".join(regs), processor=str(proc_of[regs[0]][0]), regions=regs, precision=proc_of[regs[0]][1]) for regs in members.values()
        ]
        label = {r: p.name for p in partitions for r in p.regions}
        for n in nodes:
            n.partition = label[n.region]  # type: ignore[index]
        for p in partitions:
            p.inputs, p.outputs = boundary(module, p.name)
        changed = module.partitions != partitions
        module.partitions = partitions
        return changed
