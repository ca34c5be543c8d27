"""ONNX backend node tests of the CNN-op subset: stretchc compile + run vs bare onnx2tf + TFLite, one run.

    PYTHONPATH=. .venv/bin/python bench/onnx_conformance.py [--cases REGEX] [--no-bare]
        [--update-results bench/RESULTS.md]

The cases, the subset rule, the compile-time inputs and the comparison are those of the conformance test
tier (tests/conformance/onnx_node.py). Every case goes through
- stretchc: `stretchc compile` (weights and parameters given with --const-input) then `stretchc run`, in
  this process, with a fresh lowering cache;
- bare: onnx2tf with its defaults (every input fed at run time) and the TFLite interpreter, an output
  passing under any layout its lowered shape allows.
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

from _common import machine, table, update_results

from tests.conformance.onnx_node import FAMILIES, Case, Outcome, cases, run_bare, run_stretchc

SECTION = "## ONNX node-test conformance (issue 15)"


def run_all(names: list[str], runner: object, label: str) -> tuple[list[Outcome], float]:
    start = time.perf_counter()
    outcomes = []
    for k, name in enumerate(names, start=1):
        outcomes.append(runner(Case.load(name)))  # type: ignore[operator]
        print(f"\r{label}: {k}/{len(names)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return outcomes, time.perf_counter() - start


def report(names: list[str], ours: list[Outcome], bare: list[Outcome] | None, t_ours: float, t_bare: float | None) -> str:
    by_family: dict[str, list[int]] = {f: [0, 0, 0] for f in FAMILIES}
    for k, o in enumerate(ours):
        row = by_family[o.family]
        row[0] += 1
        row[1] += o.status == "pass"
        row[2] += bool(bare) and bare[k].status == "pass"  # type: ignore[index]
    rows = [[f, n, p, b if bare else "-"] for f, (n, p, b) in by_family.items() if n]
    total = [sum(r[1] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows) if bare else "-"]
    rows.append(["**total**", *total])
    classes = collections.Counter(f"{o.status}{' ' + o.code if o.code else ''}" for o in ours)
    lines = [
        f"{len(names)} cases; {machine()}.",
        "",
        table(["family", "cases", "stretchc compile + run", "bare onnx2tf + TFLite"], rows),  # type: ignore[list-item]
        "",
        f"stretchc outcomes: {', '.join(f'{v} {k}' for k, v in sorted(classes.items()))}; wall time {t_ours:.0f} s.",
    ]
    if bare is not None:
        bare_classes = collections.Counter(o.status for o in bare)
        lines.append(f"bare outcomes: {', '.join(f'{v} {k}' for k, v in sorted(bare_classes.items()))}; wall time {t_bare:.0f} s.")
        lost = [o.case for o, b in zip(ours, bare) if b.status == "pass" and o.status != "pass"]
        lines.append(f"cases bare onnx2tf passes and stretchc does not: {', '.join(lost) if lost else 'none'}.")
    failing = [[o.case.removeprefix("test_"), o.status, o.code, o.message.replace("|", "\\|")[:160]] for o in ours if o.status != "pass"]
    lines += ["", "Cases stretchc does not pass:", "", table(["case", "outcome", "code", "message"], failing)]  # type: ignore[arg-type]
    return "\n".join(lines)


PREAMBLE = """\
`PYTHONPATH=. .venv/bin/python bench/onnx_conformance.py --update-results bench/RESULTS.md`: the node tests of
the onnx 1.17.0 wheel in tests/data/onnx_node (the CNN-op subset: FAMILIES in tests/conformance/onnx_node.py)
through `stretchc compile` + `run` (weights and parameters given with `--const-input`), and through bare
onnx2tf 1.28.8 (its defaults, every input at run time) + the TFLite interpreter, in one run. Pass: same shape
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
    ours, t_ours = run_all(names, run_stretchc, "stretchc")
    bare, t_bare = (None, None) if args.no_bare else run_all(names, run_bare, "bare onnx2tf")
    body = report(names, ours, bare, t_ours, t_bare)
    print(body)
    if args.update_results:
        update_results(args.update_results, SECTION, PREAMBLE + "\n" + body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
