"""Models with several inputs and outputs, and outputs whose shape reads the same in both layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from stretchc.cli import main
from stretchc.driver import CompileOptions, compile_model
from stretchc.examples import GraphBuilder
from stretchc.runtime.host import HostRuntime
from stretchc.verify import verify_bundle

from tests.conftest import REPO


def _two_io_model() -> onnx.ModelProto:
    """Two inputs mixed by an add, a 2-branch stage, and two outputs: logits and the [1,16,16,16] features."""
    b = GraphBuilder(3)
    x = b.conv("stem", "img", 3, 8, stride=2)
    y = b.conv("aux", "aux_in", 4, 8, stride=2)
    mixed = b.op("Add", "mix", [x, y])
    p = b.conv("p0", mixed, 8, 8)
    q = b.conv("p1", mixed, 8, 8)
    feat = b.op("Concat", "feat", [p, q], axis=1)
    logits = b.head(feat, 16, 5)
    return b.model("two_io", [("img", [1, 3, 32, 32]), ("aux_in", [1, 4, 32, 32])], [(logits, [1, 5]), (feat, [1, 16, 16, 16])])


@pytest.fixture(scope="module")
def two_io(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("two_io")
    onnx.save(_two_io_model(), str(d / "two.onnx"))
    compile_model(d / "two.onnx", d / "b", CompileOptions(target="pixel6"))
    return d / "two.onnx", d / "b"


def test_square_output_gets_its_real_layout(two_io: tuple[Path, Path]) -> None:
    _, bundle = two_io
    feat = next(o for o in HostRuntime(bundle).manifest["outputs"] if o["name"] == "feat")
    assert feat["layout"] == "NCHW" and feat["perm"] == [0, 2, 3, 1]


def test_two_inputs_two_outputs_match_onnxruntime(two_io: tuple[Path, Path]) -> None:
    model, bundle = two_io
    report = verify_bundle(bundle, model, samples=2)
    assert report.ok, report.table()
    # feat is a Concat of two 8-channel branches: checked as a whole and part by part (stretchc/frontend/parts.py)
    assert {c.name for c in report.checks if c.kind == "output"} == {"logits", "feat", "feat[0:8]@1", "feat[8:16]@1"}


def test_run_refuses_wrong_dtype(two_io: tuple[Path, Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _, bundle = two_io
    np.save(tmp_path / "img.npy", np.zeros((1, 3, 32, 32), np.float32))
    np.save(tmp_path / "aux.npy", np.zeros((1, 4, 32, 32), np.float64))
    assert main(["run", str(bundle), "--input", f"img={tmp_path / 'img.npy'}", "--input", f"aux_in={tmp_path / 'aux.npy'}"]) == 3
    assert "dtype float64, expected float32" in capsys.readouterr().err


def test_verify_refuses_a_different_model(two_io: tuple[Path, Path], capsys) -> None:  # type: ignore[no-untyped-def]
    _, bundle = two_io
    assert main(["verify", str(bundle), str(REPO / "examples" / "branchy.onnx")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error[bad-input-data]" in err and "not the bundle's" in err
