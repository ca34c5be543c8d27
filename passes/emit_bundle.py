"""emit-bundle: write one TFLite file per partition and the manifest into `ctx.output_dir`.

The module is not changed. Files written: `partitions/<name>.tflite`, `manifest.json` (for people and
tools) and `manifest.bin` (the same manifest as a flatbuffer, for runtimes), then `SHA256SUMS` over all of
them, `report.json` (the placement report, when assign-delegates made one) and what the compile settings'
`emit` asks for. Output is byte-identical for identical inputs: no timestamps, no absolute paths, sorted JSON.
Records the `manifest` analysis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from stretchc.analyses import Manifest, Placement
from stretchc.bundle.binary import encode_manifest
from stretchc.bundle.format import MANIFEST_BIN, MANIFEST_JSON, SHA256SUMS
from stretchc.bundle.manifest import build_manifest, dumps, sha256_bytes
from stretchc.bundle.nnstretch import nnstretch_tflite
from stretchc.errors import StretchError
from stretchc.ir import Module
from stretchc.passmanager import Pass, PassContext, print_pipeline, register_pass
from stretchc.tflite_io import emit_model


def partition_files(module: Module) -> dict[str, bytes]:
    """Bundle-relative path -> TFLite bytes, one per partition."""
    values = module.graph.value_map()
    files: dict[str, bytes] = {}
    for p in module.partitions:
        nodes = [n for n in module.graph.nodes if n.partition == p.name]
        files[f"partitions/{p.name}.tflite"] = emit_model(
            nodes, [values[i] for i in p.inputs], [values[o] for o in p.outputs], description=f"stretchc partition {p.name}"
        )
    return files


@register_pass
@dataclass(frozen=True)
class EmitBundle(Pass):
    """Writes the partitions and the manifest (JSON and binary) to the output directory."""

    name = "emit-bundle"
    summary = "write partitions/*.tflite, manifest.json, manifest.bin and SHA256SUMS"
    requires = ("insert-sync-points",)
    uses = (Placement,)
    produces = (Manifest,)

    def run(self, module: Module, ctx: PassContext) -> bool:
        if not module.sync_points:
            raise StretchError("ir-invalid", "emit-bundle needs sync points: run insert-sync-points first")
        if ctx.output_dir is None:
            return False  # nothing to write to (e.g. a pipeline run for its dumps only)

        files = partition_files(module)
        placed = ctx.analyses.get(Placement)
        manifest = build_manifest(
            module,
            target=ctx.target,
            files=files,
            pipeline=print_pipeline(ctx.pipeline),
            source_sha256=ctx.source_sha256 or "0" * 64,
        )
        manifest["predicted_latency_ms"] = placed.predicted_latency_ms if placed is not None else None
        files[MANIFEST_JSON] = dumps(manifest)
        files[MANIFEST_BIN] = encode_manifest(manifest)
        if placed is not None and placed.report is not None:  # for `stretchc explain`: why each region runs where it runs
            files["report.json"] = (json.dumps(placed.report, sort_keys=True, indent=2) + "\n").encode()
        if "nnstretch-tflite" in ctx.settings.emit:  # the prototype's single tagged model
            files["nnstretch.tflite"] = nnstretch_tflite(module)
        files[SHA256SUMS] = "".join(f"{sha256_bytes(files[k])}  {k}\n" for k in sorted(files)).encode()
        for rel, data in sorted(files.items()):
            path = ctx.output_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        ctx.analyses.put(Manifest(manifest))
        return False
