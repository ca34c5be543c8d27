"""The placement report: JSON (the `placement_report` dict, deterministic) and one self-contained HTML file
(inline CSS and SVG, no scripts, no external resources): per region its processor and precision, why, predicted
time and the alternatives (each processor at each precision it may take); a predicted timeline with one lane per
processor (SVG Gantt chart); the stage/branch graph coloured by processor; the predicted speedup over the best
single processor; the target limits that bound the placement (`limits`: which limit, the regions it moved, what
it cost; each such region's `limit`); with `--precision auto`, the SQNR each output keeps and what was demoted to float (the
`accuracy_guard` section); with labelled `--calib` data, top-1 accuracy of the float model and the bundle (the
`accuracy` section, stretchc/top1.py)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from stretchc import safejson
from stretchc.backends import backends
from stretchc.errors import StretchError
from stretchc.fileio import write_atomically
from stretchc.ir import lane_name

REPORT_MAX_DEPTH = 32  # nesting a report.json may have when read back


def _colours() -> dict[str, str]:
    """Processor -> its colour, in backend order (the timeline's lanes: each processor's, in lane order)."""
    return {b.name: b.colour for b in backends()}


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, sort_keys=True, indent=2) + "\n"


_NUMBER = {"type": "number"}
_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}


def _records(**fields: dict[str, Any]) -> dict[str, Any]:
    """The schema of a list of objects that each have every one of `fields` (name -> its schema)."""
    return {"type": "array", "items": {"type": "object", "required": list(fields), "properties": fields}}


# The part of the placement report that `explain` and the API's `Report` read; anything else in report.json is left alone.
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["target", "regions", "partitions", "timeline", "predicted_latency_ms", "method", "best_single", "speedup_over_best_single"],
    "properties": {
        "target": {"type": "string"},
        "predicted_latency_ms": _NUMBER,
        "method": {"type": "string"},
        "best_single": {
            "oneOf": [{"type": "null"}, {"type": "object", "required": ["processor", "ms"], "properties": {"processor": {"type": "string"}, "ms": _NUMBER}}],
        },
        "speedup_over_best_single": {"type": ["number", "null"]},
        "partitions": _records(name=_STRING, processor=_STRING, precision=_STRING, regions=_STRINGS, predicted_ms=_NUMBER, why=_STRING),
        "timeline": _records(partition=_STRING, processor=_STRING, precision=_STRING, regions=_STRINGS, start_ms=_NUMBER, end_ms=_NUMBER),
        "regions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["region", "kind", "ops", "processor", "precision", "why", "precision_why", "predicted_ms", "override", "limit", "alternatives"],
                "properties": {
                    "region": {"type": "string"},
                    "kind": {"type": "string"},
                    "ops": {"type": "integer"},
                    "processor": {"type": "string"},
                    "precision": {"type": "string"},
                    "why": {"type": "string"},
                    "precision_why": {"type": "string"},
                    "predicted_ms": _NUMBER,
                    "override": {"type": "boolean"},
                    "limit": {"type": ["string", "null"]},
                    "alternatives": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["eligible"],
                            "properties": {
                                "eligible": {"type": "boolean"},
                                "reason": {"type": ["string", "null"]},
                                "precisions": {
                                    "type": "object",
                                    "additionalProperties": {"type": "object", "required": ["region_ms", "total_ms"], "properties": {"region_ms": _NUMBER, "total_ms": _NUMBER}},
                                },
                            },
                            "if": {"properties": {"eligible": {"const": True}}},
                            "then": {"required": ["precisions"]},
                            "else": {"required": ["reason"], "properties": {"reason": {"type": "string"}}},
                        },
                    },
                },
            },
        },
    },
}


def read_report(path: Path) -> dict[str, Any]:
    """The placement report a bundle holds at `path` (report.json), checked against `REPORT_SCHEMA`, or
    StretchError("bad-bundle") naming what is wrong with it."""
    import jsonschema  # lazy: 0.1 s to import; only reading a report back needs it

    if not path.is_file():
        raise StretchError("bad-bundle", "the bundle has no report.json (compiled without a placement report?)", file=str(path))
    try:
        report = safejson.loads(path.read_bytes(), max_depth=REPORT_MAX_DEPTH)
    except (OSError, ValueError) as exc:
        raise StretchError("bad-bundle", f"cannot read report.json: {exc}", file=str(path)) from None
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(REPORT_SCHEMA).iter_errors(report))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise StretchError("bad-bundle", f"report.json field {where}: {error.message[:200]}", file=str(path))
    return report  # type: ignore[no-any-return]


def explain(report: dict[str, Any], region: str) -> str:
    """Why `region` runs where it runs, as a few lines of text."""
    rows = {r["region"]: r for r in report["regions"]}
    if region not in rows:
        raise StretchError("unknown-branch", f"no region {region!r}; the bundle's regions are {', '.join(rows)}")
    r = rows[region]
    part = next((p for p in report.get("partitions") or [] if region in p["regions"]), None)
    out = [
        f"{region} ({r['kind']}, {r['ops']} ops) runs on {r['processor']}: {r['why']}",
        f"  precision {r['precision']}: {r['precision_why']}",
        *([f"  partition {part['name']} ({', '.join(part['regions'])}): {part['why']}"] if part else []),
        *(f"  rejected {x['processor']} {x['precision']}: {x['why']}" for x in report.get("rejected") or [] if x["region"] == region),
        f"  predicted region time {r['predicted_ms']:.3f} ms; model {report['predicted_latency_ms']:.3f} ms ({report['method']})",
    ]
    for p, a in r["alternatives"].items():
        if a.get("eligible"):
            for q, t in a["precisions"].items():
                out.append(f"  {p:<4} {q:<8} eligible  region {t['region_ms']:.3f} ms  -> model {t['total_ms']:.3f} ms")
        else:
            out.append(f"  {p:<4} not eligible: {a['reason']}")
    return "\n".join(out)


def _gantt(report: dict[str, Any]) -> str:
    tl = report["timeline"]
    colours = _colours()
    order = list(colours)
    lanes = sorted({(t["processor"], t.get("lane", 0)) for t in tl}, key=lambda pl: (order.index(pl[0]), pl[1]))
    total = max([t["end_ms"] for t in tl] + [1e-9])
    W, left, lane_h = 900, 60, 34
    H = 30 + lane_h * len(lanes)
    scale = (W - left - 20) / total
    parts = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">']
    for i, (p, k) in enumerate(lanes):
        y = 10 + i * lane_h
        parts.append(f'<text x="5" y="{y + 20}" font-size="13">{lane_name(p, k)}</text>')
        parts.append(f'<line x1="{left}" y1="{y + lane_h - 2}" x2="{W - 10}" y2="{y + lane_h - 2}" stroke="#ccc"/>')
        for t in tl:
            if (t["processor"], t.get("lane", 0)) != (p, k):
                continue
            x = left + t["start_ms"] * scale
            w = max((t["end_ms"] - t["start_ms"]) * scale, 2.0)
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{lane_h - 8}" fill="{colours[p]}" stroke="#fff">'
                f'<title>{html.escape(t["partition"])} ({html.escape(", ".join(t["regions"]))}): {t["start_ms"]:.3f}-{t["end_ms"]:.3f} ms</title></rect>'
            )
            if w > 40:
                parts.append(f'<text x="{x + 3:.1f}" y="{y + 20}" font-size="11" fill="#fff">{html.escape(t["partition"])}</text>')
    parts.append(f'<text x="{left}" y="{H - 2}" font-size="11">0 ms</text><text x="{W - 80}" y="{H - 2}" font-size="11">{total:.2f} ms</text>')
    parts.append("</svg>")
    return "".join(parts)


def _graph(report: dict[str, Any]) -> str:
    regions = report["regions"]
    cols: list[list[dict[str, Any]]] = []
    for r in regions:
        if r["kind"] == "branch" and cols and cols[-1][0]["kind"] == "branch" and r["region"].split(".")[0] == cols[-1][0]["region"].split(".")[0]:
            cols[-1].append(r)
        else:
            cols.append([r])
    bw, bh, gx, gy = 110, 30, 40, 12
    H = max(len(c) for c in cols) * (bh + gy) + 20
    W = len(cols) * (bw + gx) + 20
    pos = {}
    parts = [f'<svg id="graph" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">']
    for i, col in enumerate(cols):
        x = 10 + i * (bw + gx)
        y0 = (H - len(col) * (bh + gy)) / 2
        for j, r in enumerate(col):
            pos[r["region"]] = (x, y0 + j * (bh + gy))
    for e in report["edges"]:
        if e["from"] in pos and e["to"] in pos:
            (x1, y1), (x2, y2) = pos[e["from"]], pos[e["to"]]
            parts.append(f'<line x1="{x1 + bw}" y1="{y1 + bh / 2}" x2="{x2}" y2="{y2 + bh / 2}" stroke="#888"/>')
    colours = _colours()
    for r in regions:
        x, y = pos[r["region"]]
        parts.append(f'<rect x="{x}" y="{y}" width="{bw}" height="{bh}" rx="5" fill="{colours[r["processor"]]}"/>')
        parts.append(f'<text x="{x + 6}" y="{y + 19}" font-size="12" fill="#fff">{html.escape(r["region"])} · {r["processor"]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _accuracy(report: dict[str, Any]) -> str:
    acc = report.get("accuracy")
    if not acc:
        return ""
    seen = "held out of calibration" if acc["held_out"] else "calibration has seen them"
    rows = "".join(
        f"<tr><td>{html.escape(o['output'])}</td><td>{o['classes']}</td><td>{100 * o['float_top1']:.2f}%</td><td>{100 * o['bundle_top1']:.2f}%</td>"
        f"<td>{100 * (o['bundle_top1'] - o['float_top1']):+.2f}</td><td>{100 * o['agreement']:.2f}%</td></tr>"
        for o in acc["outputs"]
    )
    return (
        f"<h2>Accuracy</h2>\n<p>Top-1 on {acc['samples']} labelled <code>--calib</code> samples of {html.escape(acc['source'])} ({seen}): "
        "the float model in ONNX Runtime and the bundle on the host runtime.</p>\n"
        "<table id='accuracy'><tr><th>output</th><th>classes</th><th>float top-1</th><th>bundle top-1</th><th>change (points)</th><th>agreement</th></tr>"
        f"{rows}</table>\n"
    )


def to_html(report: dict[str, Any], *, title: str = "stretchc placement report") -> str:
    best = report.get("best_single")
    speed = report.get("speedup_over_best_single")
    colours = _colours()
    rows = []
    for r in report["regions"]:
        alts = "; ".join(
            ", ".join(f"{p} {q}: {t['region_ms']:.3f} ms (model {t['total_ms']:.3f} ms)" for q, t in a["precisions"].items())
            if a.get("eligible") else f"{p}: not eligible — {html.escape(str(a['reason']))}"
            for p, a in r["alternatives"].items()
        )
        rows.append(
            f"<tr><td>{html.escape(r['region'])}</td><td>{r['kind']}</td><td style='color:{colours[r['processor']]}'><b>{r['processor']}</b>"
            f"{' (override)' if r['override'] else ''}</td><td>{r['precision']}</td><td>{r['predicted_ms']:.3f}</td>"
            f"<td>{html.escape(r['why'])}<br>{html.escape(r['precision_why'])}</td><td>{alts}</td></tr>"
        )
    legend = " ".join(f"<span style='background:{c};color:#fff;padding:2px 6px'>{p}</span>" for p, c in colours.items())
    bound = "".join(
        f"<li><b>{html.escape(b['limit'])}</b>: {html.escape(b['message'])}; moved {html.escape(', '.join(b['regions']))} off the "
        f"{html.escape(b['processor'])}; cost {b['cost_ms']:.3f} ms</li>"
        for b in report.get("limits") or []
    )
    limits = f"<p>Target limits that bound the placement:</p><ul>{bound}</ul>" if bound else ""
    singles = ", ".join(f"{p} {t:.2f} ms" for p, t in report.get("single_processor_ms", {}).items())
    partitions = "".join(
        f"<tr><td>{html.escape(p['name'])}</td><td style='color:{colours[p['processor']]}'><b>{p['processor']}</b></td><td>{p['precision']}</td>"
        f"<td>{html.escape(', '.join(p['regions']))}</td><td>{p['predicted_ms']:.3f}</td><td>{html.escape(p['why'])}</td></tr>"
        for p in report.get("partitions") or []
    )
    rejected = "".join(
        f"<li>{html.escape(x['region'])}: {x['processor']} {x['precision']} — {html.escape(x['why'])}</li>" for x in report.get("rejected") or []
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:20px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:top}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>Target <b>{html.escape(report['target'])}</b>; policy {html.escape(str(report.get('policy', '')))}; precision {html.escape(str(report.get('precision_policy', '')))}; search: {html.escape(report['method'])}.</p>{_accuracy_guard(report)}
<p>Predicted latency <b>{report['predicted_latency_ms']:.3f} ms</b>. Best single processor: {f"{best['processor']} {best['ms']:.3f} ms" if best else "n/a"} ({singles});
predicted speedup <b>{f"{speed:.2f}x" if speed else "n/a"}</b>.</p>
{limits}
<p>{legend}</p>
<h2>Predicted timeline</h2>
{_gantt(report)}
<h2>Stage / branch graph</h2>
{_graph(report)}
{_accuracy(report)}<h2>Partitions</h2>
<table id='partitions'><tr><th>partition</th><th>processor</th><th>precision</th><th>regions</th><th>predicted ms</th><th>why these regions share it</th></tr>
{partitions}
</table>
{f"<p>Choices the accuracy guard rejected:</p><ul>{rejected}</ul>" if rejected else ""}
<h2>Regions</h2>
<table><tr><th>region</th><th>kind</th><th>processor</th><th>precision</th><th>predicted ms</th><th>why</th><th>alternatives</th></tr>
{''.join(rows)}
</table>
</body></html>
"""


def _accuracy_guard(report: dict[str, Any]) -> str:
    acc = report.get("accuracy_guard")
    if not acc:
        return ""
    outs = ", ".join(f"{html.escape(k)} {'inf' if v is None else f'{v:.1f}'} dB" for k, v in acc["sqnr_db"].items())
    demoted = "".join(f"<li>{html.escape(d['partition'])} ({d['from']} &rarr; float32): {html.escape(d['why'])}</li>" for d in acc["demoted"])
    return (
        f"<p>Accuracy against the float model on {acc['inputs']} {html.escape(acc['measured_on'])}: {outs} (bound {acc['min_sqnr']:g} dB).</p>"
        + (f"<p>Demoted to float32:</p><ul>{demoted}</ul>" if demoted else "")
    )


def write_report(report: dict[str, Any], path: Path, *, title: str = "stretchc placement report") -> None:
    """Write `report` to `path`, HTML for a .html/.htm name and JSON otherwise, atomically (stretchc/fileio.py):
    a failed or interrupted write leaves an earlier report whole. Raises OSError when the folder cannot be
    made, StretchError("write-failed") when the file cannot be written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = to_html(report, title=title) if path.suffix.lower() in (".html", ".htm") else to_json(report)
    write_atomically(text.encode("utf-8"), path)
