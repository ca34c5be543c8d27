"""A bundle's manifest as readable text (`stretchc inspect`, `stretchc.Bundle.describe`)."""

from __future__ import annotations

from typing import Any

from stretchc.ir import lane_name


def describe(m: dict[str, Any], grouping: dict[str, str] | None = None) -> str:
    """Manifest `m` as text (`stretchc inspect`): the inputs and outputs, partitions (processor, precision, delegate, the
    regions each runs in one invoke and, from `grouping`, partition -> why its regions share it), sync points (dtype,
    scale, conversions), the buffer plan and the schedule."""
    grouping = grouping or {}
    rows = [
        f"bundle format {m['format_version']} by stretchc {m['compiler']['version']}: model {m['model']['name']}, "
        f"target {m['target']['name'] if m['target'] else '-'}",
        f"pipeline: {m['model']['pipeline']}",
        "inputs:",
    ]
    for io in m["inputs"]:
        rows.append(f"  {io['name']:<16} {io['dtype']}{io['shape']} layout {io['layout']} -> bundle {io['bundle_dtype']}{io['bundle_shape']} via {io['sync']}")
    rows.append("outputs:")
    for io in m["outputs"]:
        rows.append(f"  {io['name']:<16} {io['dtype']}{io['shape']} layout {io['layout']} <- bundle {io['bundle_dtype']}{io['bundle_shape']} via {io['sync']}")
    rows.append("partitions:")
    for p in m["partitions"]:
        fb = f", fallback {p['fallback']['processor']}" if p["fallback"] else ""
        rows.append(
            f"  {p['name']:<20} {p['processor']:<4} {p['precision']:<8} {p['delegate']:<8} threads {p['threads']} cores {p['affinity']}{fb}  {p['file']}"
        )
        rows.append(f"  {'':<20} regions {', '.join(p['regions'])} (one invoke)" + (f": {grouping[p['name']]}" if p["name"] in grouping else ""))
        rows.append(f"  {'':<20} reads {', '.join(b['sync'] for b in p['inputs']) or '-'}; writes {', '.join(b['sync'] for b in p['outputs'])}")
    rows.append("sync points:")
    slot_dtype = {sl["name"]: sl["dtype"] for sl in m["buffers"]["slots"]}
    for s in m["sync_points"]:
        q = s["quant"]
        scale = f" scale {q['scale'][0]:.6g} zero point {q['zero_point'][0]}" if q else ""
        carries = f"  ONNX {s['onnx_tensor']}" if "onnx_tensor" in s else ""
        rows.append(
            f"  {s['name']:<8} {s['kind']:<6} {slot_dtype[s['slot']]:<8} {s['producer']} -> {', '.join(s['consumers'])}  slot {s['slot']}{scale}{carries}"
        )
        for c in s["conversions"]:
            rows.append(f"  {'':<8} converted once: {c['op']} {c['from_dtype']} -> {c['to_dtype']} in partition {c['partition']}")
    b = m["buffers"]
    rows.append(f"buffer plan: arena {b['arena_size']} bytes, {b['alignment']}-byte aligned, {len(b['slots'])} slots")
    for s in b["slots"]:
        rows.append(f"  {s['name']:<8} offset {s['offset']:>10} size {s['size']:>10}  {s['dtype']}{s['shape']}")
    if b["aliases"]:
        rows.append("  shared bytes (never live at once): " + ", ".join("~".join(a) for a in b["aliases"]))
    rows.append("schedule:")
    for lane in m["schedule"]["lanes"]:
        rows.append(f"  lane {lane_name(lane['processor'], lane['index']):<4} {' -> '.join(lane['partitions'])}")
    rows.append("  steps: " + " -> ".join("[" + " | ".join(s) + "]" for s in m["schedule"]["steps"]))
    if m.get("predicted_latency_ms") is not None:
        rows.append(f"predicted latency: {m['predicted_latency_ms']:.2f} ms")
    return "\n".join(rows)
