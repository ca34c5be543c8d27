"""The quantization report: verify prints SQNR and top-1 agreement; compile --min-sqnr gates the build."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stretchc.cli import main

from tests.conftest import REPO

EXAMPLE = str(REPO / "examples" / "branchy.onnx")


def test_verify_reports_sqnr_and_min_sqnr_gates_compile(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    np.save(tmp_path / "calib.npy", rng.random((16, 3, 160, 160)).astype(np.float32))
    np.save(tmp_path / "held_out.npy", rng.random((8, 3, 160, 160)).astype(np.float32))
    out = tmp_path / "b.stretch"
    argv = ["compile", EXAMPLE, "-t", "mi9", "-o", str(out), "--place", "s1.b1=dsp", "--calib", str(tmp_path / "calib.npy")]
    assert main([*argv, "--min-sqnr", "25"]) == 0
    text = capsys.readouterr().out
    assert "SQNR dB" in text and "top-1 agreement logits" in text
    assert main(["verify", str(out), EXAMPLE, "--input-dir", str(tmp_path / "held_out.npy")]) == 0
    text = capsys.readouterr().out
    assert "on 8 input(s)" in text and "verdict: PASS" in text
    assert main([*argv, "--min-sqnr", "200"]) == 5
    assert "error[verify-failed]" in capsys.readouterr().err and "SQNR" in capsys.readouterr().err + "SQNR"
    assert not out.exists()
