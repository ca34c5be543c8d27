"""The prototype's 52 configurations on their phones with stretchc's own search: never predicted slower than the
best single processor, and split where splitting pays.

    .venv/bin/python bench/stretch_configs.py /work/shared/nnstretch-configs [--update-results bench/RESULTS.md]

Every configuration of `mi/` (Snapdragon 855: target mi9) and `pixel/` (target pixel6) is built at 224 px (seed 0,
`stretchc build-model`'s default wiring), lowered (through the lowering cache) and placed by
assign-delegates{policy=critical-path} with `--precision auto` (mi9: calibrated, so int8 and the DSP are
choices; the accuracy guard is not run here: no calibration data) — the placement, precision and grouping
search of a compile. Per configuration: the predicted latency, the best single processor, the speedup, the
partitions and processors, and the search's time. A row fails when the speedup is below 1.00; configurations
the prototype runs on more than one processor (name ends in two or more of C, G, D) are listed with whether
the search also splits them. Every number is a prediction of the cost model, not a phone measurement.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import machine, publish, table  # noqa: E402
from bench.predict_configs import config_module  # noqa: E402
from stretchc.costmodel.placement import plan  # noqa: E402
from stretchc.targets import load_target  # noqa: E402

SECTION = "## The prototype's configurations with stretchc's search (issue 19)"
PHONES = {"mi": "mi9", "pixel": "pixel6"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--only", help="regular expression over config names")
    ap.add_argument("--update-results", type=Path)
    args = ap.parse_args(argv)
    rows, failed, multi, split = [], 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for phone, target in PHONES.items():
            for cfg_path in sorted((args.folder / phone).glob("*.yaml")):
                if args.only and not re.search(args.only, cfg_path.stem):
                    continue
                _, _, configured, module = config_module(cfg_path, target, Path(tmp), timed=False)
                t0 = time.perf_counter()
                rep = plan(module, load_target(target), policy="auto", calibrated=target == "mi9")
                took = time.perf_counter() - t0
                procs = sorted({p["processor"] for p in rep["partitions"]})
                speed = rep["speedup_over_best_single"]
                ok = speed is not None and speed >= 1.0
                failed += not ok
                wants = len(set(configured.values())) > 1
                multi += wants
                split += wants and len(procs) > 1
                best = rep["best_single"]
                rows.append([
                    f"{phone}/{cfg_path.stem}", target, f"{rep['predicted_latency_ms']:.2f}", f"{best['processor']} {best['ms']:.2f}",
                    f"{speed:.2f}x", len(rep["partitions"]), ", ".join(procs), "/".join(sorted(set(configured.values()))),
                    f"{took:.1f} s", "ok" if ok else "FAIL",
                ])
                print(" | ".join(str(c) for c in rows[-1]), file=sys.stderr, flush=True)
    body = table(["config", "target", "predicted ms", "best single ms", "speedup", "partitions", "processors", "prototype's processors", "search time", "result"], rows)
    body += f"\n\n{failed} of {len(rows)} below 1.00x. Of the {multi} configurations the prototype runs on several processors, the search splits {split}."
    publish(body, args.update_results, SECTION, f"`bench/stretch_configs.py` on {machine()}.\n\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
