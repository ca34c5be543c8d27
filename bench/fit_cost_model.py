"""Refit the cost model of every target in stretchc/targets/data/ and write the numbers into the files.

    .venv/bin/python bench/fit_cost_model.py [--check]

For each target file: fit `cost.efficiency` to its `calibration` points (procedure: stretchc/costmodel/fit.py —
relative-error least squares, non-negative, weak ridge towards priors), keep its `cost.dispatch_ms` and
`cost.transfer` (or set the defaults below), and rewrite the `cost:` block after the marker line. A target with
`cost.efficiency_from: OTHER` takes OTHER's fitted efficiencies for every (processor, dtype) it has no points for
(efficiencies are fractions of peak, so they carry over to a SoC of the same generation; its own peaks apply).
Prints each target's calibration table and the median absolute percentage error. `--check` fails (exit 1) when
the committed files differ from a refit, so CI can tell stale numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stretchc.costmodel import calibration_table  # noqa: E402
from stretchc.costmodel.fit import fit_target, mape  # noqa: E402
from stretchc.targets import DATA_DIR, load_target  # noqa: E402

MARKER = "# ---- cost model: written by bench/fit_cost_model.py (edit dispatch_ms/transfer, then rerun) ----"
# [derived] defaults (facts/tflite-delegates.md §9.1): CPU invoke ~20 us; GPU sync + command submission ~0.3 ms;
# Hexagon FastRPC "a few hundred us" up to ms per invoke; boundary copies at ~4 GB/s (CPU memcpy incl. layout change).
DEFAULT_DISPATCH = {"cpu": 0.02, "gpu": 0.3, "dsp": 0.6, "npu": 0.2}
DEFAULT_TRANSFER = {"gbps": 4.0, "sync_ms": 0.02}


def _split(text: str) -> tuple[str, str]:
    head, sep, _ = text.partition(MARKER)
    if not sep:  # first run: drop a hand-written trailing cost block, if any
        lines = text.splitlines(keepends=True)
        for i, line in enumerate(lines):
            if line.startswith("cost:"):
                j = i + 1
                while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                    j += 1
                lines = lines[:i] + lines[j:]
                break
        head = "".join(lines)
    return head.rstrip("\n") + "\n", MARKER


def fitted_cost(raw: dict, fitted_by_name: dict[str, dict]) -> dict:
    cost = dict(raw.get("cost") or {})
    eff = fit_target(raw)
    src = cost.get("efficiency_from")
    if src:
        for proc, per in fitted_by_name[src].items():
            for dtype, params in per.items():
                if proc in ("cpu", "gpu", "dsp"):
                    eff.setdefault(proc, {}).setdefault(dtype, params)
    out = {"dispatch_ms": {**DEFAULT_DISPATCH, **(cost.get("dispatch_ms") or {})}, "transfer": {**DEFAULT_TRANSFER, **(cost.get("transfer") or {})}}
    if src:
        out["efficiency_from"] = src
    out["efficiency"] = eff
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed file differs from the refit")
    args = ap.parse_args()
    files = sorted(DATA_DIR.glob("*.yaml"))
    raws = {p.stem: yaml.safe_load(p.read_text()) for p in files}
    order = sorted(files, key=lambda p: bool((raws[p.stem].get("cost") or {}).get("efficiency_from")))
    fitted: dict[str, dict] = {}
    stale = []
    for path in order:
        raw = raws[path.stem]
        cost = fitted_cost(raw, fitted)
        fitted[path.stem] = cost["efficiency"]
        head, marker = _split(path.read_text())
        block = yaml.safe_dump({"cost": cost}, sort_keys=True, default_flow_style=None, width=140)
        new = f"{head}{marker}\n{block}"
        if new != path.read_text():
            stale.append(path.name)
            if not args.check:
                path.write_text(new)
    all_rows = []
    for path in files:
        rows = calibration_table(load_target(path.stem))
        all_rows += rows
        if rows:
            print(f"\n{path.stem}: {len(rows)} calibration points, MdAPE {mape(rows):.1f}%")
            for r in rows:
                print(f"  {r['model']:<20} {r['dtype']:<8} {r['processor']:<4} measured {r['latency_ms']:8.2f} ms  predicted {r['predicted_ms']:8.2f} ms  {r['error_pct']:+6.1f}%")
    print(f"\nall targets: {len(all_rows)} points, median absolute percentage error {mape(all_rows):.1f}%")
    if args.check and stale:
        print(f"stale cost blocks: {', '.join(stale)} (run bench/fit_cost_model.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
