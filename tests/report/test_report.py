"""The placement report: JSON and HTML from a compile, `stretchc explain`, and the HTML rendered in Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from stretchc.backends import backends
from stretchc.cli import main
from stretchc.examples import example_model


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):  # type: ignore[no-untyped-def]
    import onnx

    d = tmp_path_factory.mktemp("rep")
    onnx.save(example_model(), str(d / "ex.onnx"))
    rc = main(["compile", str(d / "ex.onnx"), "-t", "mi9", "-o", str(d / "b"), "--place", "s2.b1=gpu",
               "--report", str(d / "r.html"), "--report", str(d / "r.json")])
    assert rc == 0
    return d


def test_json_report_and_bundle_report(compiled) -> None:  # type: ignore[no-untyped-def]
    rep = json.loads((compiled / "r.json").read_text())
    assert rep["predicted_latency_ms"] > 0 and rep["best_single"]["processor"] in ("cpu", "gpu")
    assert {r["region"] for r in rep["regions"]} >= {"stem", "s1.b0", "s2.b1"}
    assert json.loads((compiled / "b" / "report.json").read_text()) == rep
    manifest = json.loads((compiled / "b" / "manifest.json").read_text())
    assert manifest["predicted_latency_ms"] == rep["predicted_latency_ms"]
    assert "report.json" in (compiled / "b" / "SHA256SUMS").read_text()


def test_explain(compiled, capsys) -> None:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert main(["explain", str(compiled / "b"), "s2.b1"]) == 0
    out = capsys.readouterr().out
    assert "s2.b1" in out and "override" in out and "dsp  not eligible" in out
    assert main(["explain", str(compiled / "b"), "s9.b9"]) != 0


def test_html_renders_in_chromium(compiled, tmp_path) -> None:  # type: ignore[no-untyped-def]
    html = (compiled / "r.html").read_text()
    assert "<svg id=\"timeline\"" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (scripts/test.sh installs the Debian `chromium` package)")
    png = tmp_path / "shot.png"
    res = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         f"--screenshot={png}", "--window-size=1000,900", (compiled / "r.html").as_uri()],
        capture_output=True, text=True, timeout=90,
    )
    assert png.is_file(), res.stderr[-2000:]
    console_errors = [l for l in res.stderr.splitlines() if "CONSOLE" in l and ("ERROR" in l.upper() or "Uncaught" in l)]
    assert not console_errors, console_errors
    from PIL import Image

    img = Image.open(png).convert("RGB")
    colours = {c for _, c in img.getcolors(maxcolors=1 << 24)}
    for proc in ("cpu", "gpu"):
        c = {b.name: b.colour for b in backends()}[proc].lstrip("#")
        rgb = tuple(int(c[i : i + 2], 16) for i in (0, 2, 4))
        assert rgb in colours, f"no {proc} lane colour in the screenshot"
