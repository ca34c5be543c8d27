"""outline-partitions: cut the tagged regions into partitions with explicit boundary values.

assign-delegates tags every node with its partition (the placement's grouping of regions: a convex set of
regions on one processor lane at one precision, stretchc.costmodel.grouping); this pass cuts along those tags. A
partition has its regions' processor, lane and precision; partitions are listed in a topological order (a lane's
partitions run in that order). A partition's inputs are the non-constant values its nodes read that are
produced elsewhere (or are model inputs); its outputs are the values it produces that are read elsewhere (or
are model outputs). Both lists are in first-use order, so names and files are stable.
"""

from __future__ import annotations

from dataclasses import dataclass

from stretchc.costmodel.grouping import Dag
from stretchc.errors import StretchError
from stretchc.ir import Module, Partition, boundary
from stretchc.passmanager import Pass, PassContext, register_pass


def outline(module: Module) -> bool:
    """Cut `module` into the partitions its nodes are tagged with; whether the partitions changed. Raises
    StretchError("ir-invalid") when a tag is missing, a partition mixes processors or precisions, or the
    partitions are not convex."""
    nodes = module.graph.nodes
    if any(n.processor is None or n.partition is None for n in nodes):
        raise StretchError("ir-invalid", "outline-partitions needs processors and partition tags: run assign-delegates first")
    tags: dict[str, tuple[str, str, str, int]] = {}
    for n in nodes:
        tag = (str(n.partition), str(n.processor), n.precision or "float32", n.lane or 0)
        if tags.setdefault(str(n.region), tag) != tag:
            raise StretchError("ir-invalid", f"region {n.region} mixes partitions, processors, precisions or lanes")
    members: dict[str, list[str]] = {}
    for r in module.regions:
        members.setdefault(tags[r.name][0], []).append(r.name)
    for name, regs in members.items():
        if len({tags[r][1:] for r in regs}) > 1:
            raise StretchError("ir-invalid", f"partition {name} mixes processors, precisions or lanes")
    pairs = {(v.producer.region, n.region) for n in nodes for v in n.inputs if v is not None and v.producer is not None and v.producer.region != n.region}
    dag = Dag([r.name for r in module.regions], pairs)  # type: ignore[arg-type]
    for name, regs in members.items():
        if not dag.convex(regs):
            raise StretchError("ir-invalid", f"partition {name} is not convex: a path leaves it and comes back")
    order = dag.ordered(members.values())
    partitions = [Partition(name=tags[g[0]][0], processor=tags[g[0]][1], regions=list(g), precision=tags[g[0]][2], lane=tags[g[0]][3]) for g in order]
    for p in partitions:
        p.inputs, p.outputs = boundary(module, p.name)
    changed = module.partitions != partitions
    module.partitions = partitions
    return changed


@register_pass
@dataclass(frozen=True)
class OutlinePartitions(Pass):
    """Cuts the graph into the partitions assign-delegates tagged, with their boundary values."""

    name = "outline-partitions"
    summary = "cut the tagged partitions out of the graph, with explicit boundary values"
    requires = ("assign-delegates",)

    def run(self, module: Module, ctx: PassContext) -> bool:
        return outline(module)
