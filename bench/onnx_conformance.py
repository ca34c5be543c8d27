"""ONNX backend node tests of the CNN-op subset: stretchc compile + run vs bare onnx2tf + TFLite, one run.

    PYTHONPATH=. .venv/bin/python bench/onnx_conformance.py [--cases REGEX] [--no-bare]
        [--update-results bench/RESULTS.md]

The cases, the subset rule, the compile-time inputs and the comparison are those of the conformance test
tier (tests/conformance/onnx_node.py). Every case goes through
- stretchc: `stretchc compile` (weights and parameters given with --const-input) then `stretchc run`, in
  this process, with a fresh lowering cache;
- bare: onnx2tf with its defaults (every input fed at run time) and the TFLite interpreter, an output
  passing under any layout its lowered shape allows;
- bare, constants folded: the same, on the model whose compile-time inputs were made initializers first
  (what --const-input does), to separate what folding gives from what the rest of the front door gives.
Prints the pass count per op family for both, the outcome classes, the wall time of each path, and every
case stretchc does not pass with its error. With --update-results, writes that into the section
`## ONNX node-test conformance (issue 15)` of the file.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from _common import machine, publish, table

from tests.conformance.onnx_node import FAMILIES, Case, Outcome, cases, run_bare, run_stretchc

SECTION = "## ONNX node-test conformance (issue 15)"


def run_all(names: list[str], runner: Callable[[Case], Outcome], label: str) -> tuple[list[Outcome], float]:
    start = time.perf_counter()
    outcomes = []
    for k, name in enumerate(names, start=1):
        outcomes.append(runner(Case.load(name)))
        print(f"\r{label}: {k}/{len(names)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return outcomes, time.perf_counter() - start


def report(names: list[str], runs: dict[str, tuple[list[Outcome], float]]) -> str:
    """The Markdown section: pass counts per family for every run, outcome classes, failing cases."""
    ours = runs["stretchc compile + run"][0]
    families = {f: [o for o in ours if o.family == f] for f in FAMILIES}
    rows: list[list[object]] = []
    for f, members in families.items():
        if members:
            index = [ours.index(o) for o in members]
            rows.append([f, len(members), *(sum(outcomes[k].status == "pass" for k in index) for outcomes, _ in runs.values())])
    rows.append(["**total**", len(ours), *(sum(o.status == "pass" for o in outcomes) for outcomes, _ in runs.values())])
    lines = [f"{len(names)} cases; {machine()}.", "", table(["family", "cases", *runs], rows), ""]  # type: ignore[arg-type]
    for label, (outcomes, seconds) in runs.items():
        classes = collections.Counter(f"{o.status}{' ' + o.code if o.code and label.startswith('stretchc') else ''}" for o in outcomes)
        lines.append(f"- {label}: {', '.join(f'{v} {k}' for k, v in sorted(classes.items()))}; wall time {seconds:.0f} s.")
    for label, (outcomes, _) in runs.items():
        if not label.startswith("stretchc"):
            lost = [o.case.removeprefix("test_") for o, b in zip(ours, outcomes) if b.status == "pass" and o.status != "pass"]
            lines.append(f"- cases {label} passes and stretchc does not: {', '.join(lost) if lost else 'none'}.")
    failing = [[o.case.removeprefix("test_"), o.status, o.code, o.message.replace("|", "\\|")[:160]] for o in ours if o.status != "pass"]
    lines += ["", "Cases stretchc does not pass:", "", table(["case", "outcome", "code", "message"], failing)]  # type: ignore[arg-type]
    return "\n".join(lines)


PREAMBLE = """\
`PYTHONPATH=. .venv/bin/python bench/onnx_conformance.py --update-results bench/RESULTS.md`: the node tests of
the onnx 1.17.0 wheel in tests/data/onnx_node (the CNN-op subset: FAMILIES in tests/conformance/onnx_node.py)
through `stretchc compile` + `run` (weights and parameters given with `--const-input`), and through bare
onnx2tf 1.28.8 (its defaults) + the TFLite interpreter, in one run: once with every input fed at run time (the
model as shipped), once with the same inputs folded into initializers first (what `--const-input` does). Pass: same shape
and dtype, values within rtol 1e-3 / atol 1e-7 of the expected outputs. The pass counts do not depend on the
machine; the wall times do.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="", help="only the cases whose name matches this regular expression")
    ap.add_argument("--no-bare", action="store_true", help="skip the bare onnx2tf path")
    ap.add_argument("--update-results", type=Path, metavar="FILE")
    args = ap.parse_args(argv)
    os.environ["STRETCHC_CACHE_DIR"] = tempfile.mkdtemp(prefix="stretchc-bench-cache-")  # cold lowering
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # onnxsim for bare onnx2tf
    names = [n for n in cases() if re.search(args.cases, n)]
    runs = {"stretchc compile + run": run_all(names, run_stretchc, "stretchc")}
    if not args.no_bare:
        runs["bare onnx2tf + TFLite"] = run_all(names, run_bare, "bare onnx2tf")
        runs["bare, constants folded"] = run_all(names, lambda case: run_bare(case, fold_constants=True), "bare onnx2tf, constants folded")
    body = report(names, runs)
    publish(body, args.update_results, SECTION, PREAMBLE + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
