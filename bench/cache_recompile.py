"""Benchmark: recompiling a >= 20 M-parameter model after changing only the placement reuses the lowering.

    PYTHONPATH=. .venv/bin/python bench/cache_recompile.py [--config ../shared/nnstretch-configs/mi/R-50-CD.yaml]

Builds the model with `stretchc build-model`, then times three `stretchc compile` processes sharing a fresh
cache directory: a cold compile (empty cache), a recompile with a different `--place` (warm cache), and,
for reference, the same recompile with `--no-cache`. Checks the warm bundle equals the no-cache bundle
byte for byte. Goal (issue 6): warm / cold <= 0.25.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STRETCHC = [sys.executable, "-m", "stretchc.cli"]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return elapsed


def same_tree(a: Path, b: Path) -> bool:
    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return fa == fb and all(filecmp.cmp(a / f, b / f, shallow=False) for f in fa)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(REPO.parent / "shared" / "nnstretch-configs" / "mi" / "R-50-CD.yaml"))
    ap.add_argument("--target", default="pixel6")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="stretchc-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "STRETCHC_CACHE_DIR": str(work / "cache"), "PYTHONPATH": str(REPO)}
        model = work / "model.onnx"
        subprocess.run([*STRETCHC, "build-model", args.config, "-o", str(model), "-q"], env=env, check=True)
        out = subprocess.run([*STRETCHC, "build-model", args.config, "--complexity", "-o", str(work / "m2.onnx")], env=env, capture_output=True, text=True).stdout
        params = next((ln.split(None, 1)[1] for ln in out.splitlines() if ln.startswith("params")), "?")
        base = [*STRETCHC, "compile", str(model), "-t", args.target, "-q"]
        cold = timed([*base, "-o", str(work / "a"), "--place", "s1.b1=gpu"], env)
        warm = timed([*base, "-o", str(work / "b"), "--place", "s1.b1=cpu,s2.b1=gpu"], env)
        nocache = timed([*base, "-o", str(work / "c"), "--place", "s1.b1=cpu,s2.b1=gpu", "--no-cache"], env)
        identical = same_tree(work / "b", work / "c")
        size = model.stat().st_size / 1e6
    print(f"model {Path(args.config).stem} ({params} params, {size:.1f} MB ONNX), target {args.target}")
    print(f"cold compile (empty cache)          {cold:7.1f} s")
    print(f"recompile, new placement (warm)     {warm:7.1f} s   ({warm / cold:.0%} of cold)")
    print(f"recompile, new placement --no-cache {nocache:7.1f} s")
    print(f"warm bundle == --no-cache bundle: {identical}")
    print(f"goal warm/cold <= 25%: {'met' if warm / cold <= 0.25 and identical else 'NOT met'}")


if __name__ == "__main__":
    main()
