"""The bundled example: the committed file matches its generator, and it compiles, runs and verifies."""

from __future__ import annotations

from pathlib import Path

from stretchc.cli import main
from stretchc.examples import example_model, stretchy_model

from tests.conftest import REPO


def test_committed_example_matches_generator() -> None:
    assert (REPO / "examples" / "branchy.onnx").read_bytes() == example_model().SerializeToString()


def test_committed_stretchy_example_matches_generator() -> None:
    assert (REPO / "examples" / "stretchy.onnx").read_bytes() == stretchy_model().SerializeToString()


def test_readme_first_command_places_on_two_processors_and_pays(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The README's first command: compile the stretchy example for pixel6 with --verify, then run it."""
    bundle = tmp_path / "stretchy.stretch"
    assert main(["compile", str(REPO / "examples" / "stretchy.onnx"), "-t", "pixel6", "-o", str(bundle), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "verdict: PASS" in out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["partition", "processor"])
    rows = [line.split() for line in lines[head + 1 :] if line.startswith("  ") and not line.strip().startswith("schedule:")]
    rows = rows[: next(i for i, r in enumerate(rows) if r[0] in ("schedule:", "arena:"))]
    assert {r[1] for r in rows} == {"cpu", "gpu"}, out
    speedup = float(out.split("speedup ")[1].split("x")[0])
    assert speedup > 1.0, out
    assert main(["run", str(bundle), "--seed", "0", "--profile"]) == 0


def test_example_compiles_runs_and_verifies(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bundle = tmp_path / "b.stretch"
    assert main(["compile", str(REPO / "examples" / "branchy.onnx"), "-t", "pixel6", "-o", str(bundle), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "stem-head" in out and "predicted latency" in out
    assert "stretching does not pay for this model on this phone: one partition on the cpu" in out
    assert "verdict: PASS" in out
    assert main(["run", str(bundle), "--seed", "1", "--profile"]) == 0
    assert "stem-head" in capsys.readouterr().out


def test_emit_nnstretch_tflite_is_part_of_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "b.stretch"
    args = ["compile", str(REPO / "examples" / "branchy.onnx"), "-o", str(bundle), "--emit", "nnstretch-tflite", "-q"]
    assert main(args) == 0
    assert (bundle / "nnstretch.tflite").stat().st_size > 0
    assert "  nnstretch.tflite\n" in (bundle / "SHA256SUMS").read_text()
