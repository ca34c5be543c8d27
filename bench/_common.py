"""Shared helpers of the benchmark scripts: machine description and markdown tables."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0, 0, 0)
    return f"nproc {os.cpu_count()}, {model}, {platform.system()} {platform.release()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def table(headers: list[str], rows: list[list[object]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def publish(body: str, results: Path | None, section: str, preamble: str = "") -> None:
    """Print `body`; with `results` (a bench's --update-results), also write `preamble` + `body` as `section` there."""
    print(body)
    if results:
        update_results(results, section, preamble + body)


def update_results(results: Path, section: str, body: str) -> None:
    """Replace (or append) the `section` heading's body in `results`, keeping every other section as it was."""
    text = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    block = f"{section}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    results.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
