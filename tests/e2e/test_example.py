"""The bundled example: the committed file matches its generator, and it compiles, runs and verifies."""

from __future__ import annotations

from pathlib import Path

from stretchc.cli import main
from stretchc.examples import example_model

from tests.conftest import REPO


def test_committed_example_matches_generator() -> None:
    assert (REPO / "examples" / "branchy.onnx").read_bytes() == example_model().SerializeToString()


def test_example_compiles_runs_and_verifies(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bundle = tmp_path / "b.stretch"
    assert main(["compile", str(REPO / "examples" / "branchy.onnx"), "-t", "pixel6", "-o", str(bundle), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "s1.b1" in out and "predicted latency" in out
    assert "verdict: PASS" in out
    assert main(["run", str(bundle), "--seed", "1", "--profile"]) == 0
    assert "s2.join+head" in capsys.readouterr().out


def test_emit_nnstretch_tflite_is_part_of_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "b.stretch"
    args = ["compile", str(REPO / "examples" / "branchy.onnx"), "-o", str(bundle), "--emit", "nnstretch-tflite", "-q"]
    assert main(args) == 0
    assert (bundle / "nnstretch.tflite").stat().st_size > 0
    assert "  nnstretch.tflite\n" in (bundle / "SHA256SUMS").read_text()
