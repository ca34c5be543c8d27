"""An import-linter contract type, `no_cycles`: no module of `package` reaches itself again through imports.

import-linter's own `acyclic_siblings` contract finds the cycles between the modules and subpackages of each
package, but not a cycle through a package's `__init__` and its own modules (`p` imports `p.a`, which imports
`p`); this contract follows every import between the package's modules, function-level ones included, so it
finds any cycle. It reports one shortest cycle per import that closes one. Configured in pyproject.toml
(`contract_types`); it imports nothing of stretchc, so that the graph is of the package as the contract sees it.
"""

from __future__ import annotations

import grimp
from importlinter import Contract, ContractCheck, fields, output


class NoCyclesContract(Contract):
    type_name = "no_cycles"

    package = fields.StringField()

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        root = str(self.package)
        modules = graph.find_descendants(root) | {root}
        cycles: dict[frozenset[str], tuple[str, ...]] = {}
        for importer in sorted(modules):
            for imported in sorted(graph.find_modules_directly_imported_by(importer) & modules):
                back = graph.find_shortest_chain(importer=imported, imported=importer)
                if back is not None:
                    cycles.setdefault(frozenset(back), (importer, *back))
        return ContractCheck(kept=not cycles, metadata={"cycles": sorted(cycles.values())})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(" -> ".join(cycle))
            output.new_line()
