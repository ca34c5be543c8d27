"""Issue 23 items 12-15: bad bundles and bad numbers, refused the same way by every command.

Every command that reads a bundle (inspect, explain, run, verify) runs the one bundle check, so each refuses
every case of the hostile corpus (tests/bundle/hostile.py) with one `bad-bundle` line and leaves the files
alone; a partition's model is checked as a runtime loads it (another partition's model, a custom op, a
buffer outside its file); `verify` fails on NaN and infinities instead of passing them as equal; tolerances
that cannot mean anything are usage errors before any work.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stretchc.cli import build_parser
from stretchc.errors import StretchError
from stretchc.verify import ErrorStats, verify_bundle

from tests.bundle.hostile import Case, build_case, cases
from tests.core.test_user_errors import _cli, _one_line_error

PY_CASES = [c for c in cases() if "python" in c.readers]


def _reader_commands(bundle: Path, model: Path, out: Path) -> list[list[str]]:
    return [
        ["inspect", str(bundle)],
        ["explain", str(bundle)],
        ["run", str(bundle), "--seed", "0", "--output-dir", str(out)],
        ["verify", str(bundle), str(model), "--samples", "1"],
    ]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _model_of(example_bundle: Path) -> Path:
    return example_bundle.parent / "example.onnx"  # what the example_bundle fixture compiled


# ---- item 14 (and the corpus): one bundle check, as strict as run's, in every command --------------------


@pytest.mark.parametrize("case", PY_CASES, ids=lambda c: c.name)
def test_every_bundle_reader_refuses_every_hostile_case(example_bundle: Path, tmp_path: Path, capsys, case: Case) -> None:  # type: ignore[no-untyped-def]
    bundle = build_case(example_bundle, case, tmp_path / "b")
    before = _files(tmp_path)
    for args in _reader_commands(bundle, _model_of(example_bundle), tmp_path / "out"):
        rc, err = _cli(capsys, args)
        _one_line_error(rc, err, "bad-bundle")
        assert f"[{case.rule}] " in err, f"{args[0]}: {err}"
        assert _files(tmp_path) == before, f"{args[0]} changed the files"


@pytest.mark.parametrize("name, says", [
    ("partition-swapped", "partitions/s1.b0.tflite: its model's outputs are"),
    ("partition-custom-op", "LiteRT cannot load it: Encountered unresolved custom op: Evil."),
])
def test_inspect_and_explain_refuse_what_run_refuses(example_bundle: Path, tmp_path: Path, capsys, name: str, says: str) -> None:  # type: ignore[no-untyped-def]
    """Another partition's model, or a custom op, with checksums that vouch for them: inspect and explain
    accepted both (exit 0) while run refused them."""
    bundle = build_case(example_bundle, next(c for c in cases() if c.name == name), tmp_path / "b")
    for command in ("inspect", "explain"):
        rc, err = _cli(capsys, [command, str(bundle)])
        _one_line_error(rc, err, "bad-bundle")
        assert "[partition-tensors] partition " in err and says in err, err


# ---- item 15: a declared buffer outside its file is the bundle's fault, not the inputs' ------------------


@pytest.mark.parametrize("name, says", [
    ("buffer-outside-file", "buffer 2 declares bytes 1 to 1152921504606846977, outside the file"),
    ("buffer-offset-absurd", "Constant buffer 2 specified an out of range offset"),
    ("constant-without-data", "op 1 reads tensor 3 (c23), which holds no data"),
])
def test_a_buffer_outside_its_file_is_a_bad_bundle(example_bundle: Path, tmp_path: Path, capsys, name: str, says: str) -> None:  # type: ignore[no-untyped-def]
    """Run blamed the user's inputs (bad-input-data: "Input tensor 3 lacks data") for a partition whose
    constant lies 2^60 bytes past its file; inspect accepted it."""
    bundle = build_case(example_bundle, next(c for c in cases() if c.name == name), tmp_path / "b")
    for args in (["run", str(bundle), "--seed", "0"], ["inspect", str(bundle)]):
        rc, err = _cli(capsys, args)
        _one_line_error(rc, err, "bad-bundle")
        assert "[partition-tensors] partition stem: partitions/stem.tflite: " in err and says in err, err


# ---- item 13: NaN and infinities are never a pass --------------------------------------------------------


def test_verify_with_a_nan_input_never_passes(example_bundle: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Both sides computed NaN, and verify printed SQNR inf, 100 % agreement and PASS. Refused when the input
    is read (bad-input-data) or failed as not comparable (verify-failed): either way one line, never a pass."""
    x = np.random.default_rng(0).random((1, 3, 160, 160)).astype(np.float32)
    x[0, 1, 5, 7] = np.nan
    np.save(tmp_path / "x.npy", x)
    rc, err = _cli(capsys, ["verify", str(example_bundle), str(_model_of(example_bundle)), "--input", f"input={tmp_path / 'x.npy'}"])
    code = "bad-input-data" if rc == 3 else "verify-failed"
    _one_line_error(rc, err, code)
    assert "PASS" not in capsys.readouterr().out


def test_verify_fails_where_both_sides_are_nan(example_bundle: Path) -> None:
    """verify itself, whatever screens the inputs before it: agreeing NaNs are not comparable, so every check
    fails, naming the side, the position and the input; top-1 agreement is not claimed on them."""
    x = np.random.default_rng(0).random((1, 3, 160, 160)).astype(np.float32)
    x[0, 1, 5, 7] = np.nan
    report = verify_bundle(example_bundle, _model_of(example_bundle), inputs=[{"input": x}])
    assert not report.ok and all(c.nonfinite is not None and not c.ok for c in report.checks), report.table()
    (out,) = [c for c in report.checks if c.kind == "output"]
    assert out.nonfinite == "the bundle gives nan at [0, 0] on input 1", out.nonfinite
    assert "verdict: FAIL" in report.table() and report.table().count("FAIL, not comparable: ") == len(report.checks)
    assert report.top1_agreement == {}
    with pytest.raises(StretchError, match="not comparable") as info:
        report.raise_if_failed()
    assert info.value.code == "verify-failed"


@pytest.mark.parametrize("got, ref, side", [
    ([1.0, np.nan], [1.0, np.nan], "the bundle gives nan at [1]"),
    ([1.0, np.inf], [1.0, np.inf], "the bundle gives inf at [1]"),
    ([1.0, 2.0], [-np.inf, 2.0], "ONNX Runtime gives -inf at [0]"),
])
def test_non_finite_values_on_either_side_fail_the_check(got: list[float], ref: list[float], side: str) -> None:
    stats = ErrorStats()
    stats.add(np.array([0.5, 0.5], np.float32), np.array([0.5, 0.5], np.float32))
    stats.add(np.array(got, np.float32), np.array(ref, np.float32))
    check = stats.check("output", "y", "y", None, 0.0, None)
    assert not check.ok and check.nonfinite == f"{side} on input 2"
    assert check.failure() == f"output y: not comparable: {side} on input 2 (verify compares finite values only)"
    assert stats.check("output", "y", "y", None, 0.0, 20.0).ok is False  # an SQNR criterion does not pass it either


# ---- item 12: tolerances and bounds that cannot mean anything are usage errors, before any work ----------


@pytest.mark.parametrize("command, option, value", [
    ("verify", "--atol", "nan"), ("verify", "--atol", "inf"), ("verify", "--atol", "-1e-3"),
    ("verify", "--rtol", "nan"), ("verify", "--rtol", "-0.5"), ("verify", "--rtol", "1e400"),
    ("verify", "--min-sqnr", "nan"), ("verify", "--min-sqnr", "inf"),
    ("compile", "--min-sqnr", "nan"), ("compile", "--min-sqnr", "-inf"),
    ("compile", "--atol", "nan"), ("compile", "--rtol", "-1"),
])
def test_meaningless_tolerances_are_usage_errors(example_bundle: Path, tmp_path: Path, capsys, command: str, option: str, value: str) -> None:  # type: ignore[no-untyped-def]
    model = _model_of(example_bundle)
    head = ["verify", str(example_bundle), str(model)] if command == "verify" else ["compile", str(model), "-o", str(tmp_path / "b"), "--verify"]
    rc, err = _cli(capsys, [*head, f"{option}={value}"])
    _one_line_error(rc, err, "usage")
    assert f"error[usage]: stretchc {command}: argument {option}: '{value}' is " in err, err  # refused when parsed
    assert not (tmp_path / "b").exists()


def test_meaningful_tolerances_are_kept() -> None:
    args = build_parser().parse_args(["verify", "b", "m.onnx", "--atol", "0", "--rtol", "1e-3", "--min-sqnr", "-3.5"])
    assert (args.atol, args.rtol, args.min_sqnr) == (0.0, 1e-3, -3.5)
    assert build_parser().parse_args(["compile", "m.onnx", "--min-sqnr", "25"]).min_sqnr == 25.0
