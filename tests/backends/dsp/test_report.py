"""The quantization report: verify prints SQNR and top-1 agreement; compile --min-sqnr gates the build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stretchc.cli import main

from tests.conftest import REPO

EXAMPLE = str(REPO / "examples" / "branchy.onnx")

# slow (not in `scripts/test.sh --fast`): compiles with TFLite calibration and verifies, several times per test (about 19 s)
pytestmark = pytest.mark.slow


def test_verify_reports_sqnr_and_min_sqnr_gates_compile(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    np.save(tmp_path / "calib.npy", rng.random((16, 3, 160, 160)).astype(np.float32))
    np.save(tmp_path / "held_out.npy", rng.random((8, 3, 160, 160)).astype(np.float32))
    out = tmp_path / "b.stretch"
    argv = ["compile", EXAMPLE, "-t", "mi9", "-o", str(out), "--place", "s1.b1=dsp", "--calib", str(tmp_path / "calib.npy")]
    assert main([*argv, "--min-sqnr", "25"]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "SQNR dB" in text and "top-1 agreement logits" in text
    # 20% of the 16 samples (3) are held out of calibration and measured on
    assert "on 3 input(s)" in text and "3 calibration sample(s) held out" in captured.err
    manifest = (out / "manifest.json").read_bytes()
    assert main(["verify", str(out), EXAMPLE, "--input-dir", str(tmp_path / "held_out.npy")]) == 0
    text = capsys.readouterr().out
    assert "on 8 input(s)" in text and "verdict: PASS" in text
    assert main([*argv, "--min-sqnr", "200"]) == 5
    assert "error[verify-failed]" in capsys.readouterr().err
    # checked before installing: the refused bundle never replaces the previous one, and no staging is left behind
    assert (out / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.stretch", "calib.npy", "held_out.npy"]
    out2 = tmp_path / "fresh.stretch"
    assert main([*argv[:5], str(out2), *argv[6:], "--min-sqnr", "200"]) == 5
    assert not out2.exists() and not any(p.name.startswith(".fresh.stretch") for p in tmp_path.iterdir())


def test_min_sqnr_holdout_options(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).random((4, 3, 160, 160)).astype(np.float32))
    base = ["compile", EXAMPLE, "-t", "mi9", "--place", "s1.b1=dsp"]
    calib = ["--calib", str(tmp_path / "calib.npy")]
    assert main([*base, "-o", str(tmp_path / "a.stretch"), *calib, "--min-sqnr", "10", "--calib-holdout", "2"]) == 0
    captured = capsys.readouterr()
    assert "on 2 input(s)" in captured.out and "2 calibration sample(s) held out" in captured.err
    assert main([*base, "-o", str(tmp_path / "b.stretch"), *calib, "--min-sqnr", "10", "--calib-holdout", "4"]) != 0
    assert "leaves none to calibrate" in capsys.readouterr().err and not (tmp_path / "b.stretch").exists()
    assert main([*base, "-o", str(tmp_path / "c.stretch"), *calib, "--calib-holdout", "1", "--precision", "int8"]) != 0
    assert "only matters with --min-sqnr or --precision auto" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "d.stretch"), "--calib", "random", "--min-sqnr", "10"]) == 0
    captured = capsys.readouterr()
    assert "seeded uniform-random inputs" in captured.err and "on 20 input(s)" in captured.out
