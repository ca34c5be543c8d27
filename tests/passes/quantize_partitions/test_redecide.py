"""The accuracy guard inside the decision: a precision measured below the bound is taken out of its regions'
choices and the plan is decided again (not merely demoted in place), and the report lists what was rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stretchc.cli import main

from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "branchy.onnx"

# slow (not in `scripts/test.sh --fast`): compiles with TFLite calibration and the accuracy guard (about 5 s)
pytestmark = pytest.mark.slow


def test_rejected_precisions_are_decided_again(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Random calibration keeps int8 near 43 dB on this model: a 60 dB bound rejects every int8 choice the plan
    # tries, and the plan is decided again among the rest each time.
    report = tmp_path / "r.json"
    args = ["compile", str(EXAMPLE), "-t", "mi9", "--calib", "random", "--min-sqnr", "60", "-o", str(tmp_path / "b.stretch"), "--report", str(report)]
    assert main(args) == 0
    out = capsys.readouterr()
    rep = json.loads(report.read_text())
    rejected = {(x["processor"], x["precision"]) for x in rep["rejected"]}
    assert rejected and all(q == "int8" for _, q in rejected), rep["rejected"]
    assert all("dB < --min-sqnr" in x["why"] for x in rep["rejected"])
    assert set(rep["precision"].values()) <= {"float32", "float16"}
    guard = rep["accuracy_guard"]
    assert min(v for v in guard["sqnr_db"].values() if v is not None) >= 60
    assert guard["rejected"] and not guard["demoted"]  # decided again, nothing demoted in place
    assert all("moved to" not in r["why"] for r in rep["regions"])
    # never slower than the best single processor among the choices that keep the bound
    assert rep["speedup_over_best_single"] >= 1.0
    assert "rejected, then decided again without" in out.out
    manifest = json.loads((tmp_path / "b.stretch" / "manifest.json").read_text())
    assert {(p["processor"], p["precision"]) for p in manifest["partitions"]} == {(rep["placement"][r], rep["precision"][r]) for r in rep["placement"]}
