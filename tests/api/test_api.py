"""The API's typed placement report, and the command line as a layer over the API: `stretchc compile` hands its
options to `stretchc.api.compile`, and both make the same checks with the same errors (none of these lowers)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stretchc import api
from stretchc.cli import main
from stretchc.console import get_console
from stretchc.errors import StretchError
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "branchy.onnx"


def _record() -> dict[str, Any]:
    """A placement report as costmodel/placement.py writes it (the keys `Report` reads, and one it does not)."""
    priced = {"float32": {"region_ms": 1.5, "total_ms": 4.0}, "int8": {"region_ms": 0.5, "total_ms": 3.0}}
    return {
        "target": "mi9",
        "predicted_latency_ms": 3.0,
        "best_single": {"processor": "cpu", "ms": 4.5},
        "speedup_over_best_single": 1.5,
        "partitions": [{"name": "main", "processor": "cpu", "precision": "int8", "regions": ["main"], "predicted_ms": 0.5, "why": "the only region"}],
        "regions": [{
            "region": "main", "kind": "main", "processor": "cpu", "precision": "int8", "override": True, "why": "override: --place main=cpu",
            "precision_why": "auto: int8", "predicted_ms": 0.5, "ops": 7, "limit": None,
            "alternatives": {
                # the processor `--place` chose, although a rule excludes it: priced, and ineligible
                "cpu": {"eligible": False, "reason": "rule R1", "precision": "int8", **priced["int8"], "precisions": priced},
                "gpu": {"eligible": True, "reason": None, "precision": "float32", "region_ms": 2.0, "total_ms": 4.5,
                        "precisions": {"float32": {"region_ms": 2.0, "total_ms": 4.5}}},
                "dsp": {"eligible": False, "reason": "op CUMSUM: no Hexagon kernel"},
            },
        }],
        "timeline": [{"partition": "main", "processor": "cpu", "precision": "int8", "regions": ["main"], "start_ms": 0.0, "end_ms": 3.0}],
        "edges": [],
    }


def test_report_reads_regions_alternatives_and_timeline() -> None:
    report = api.Report.from_record(_record())
    (region,) = report.regions
    assert (region.name, region.kind, region.processor, region.precision, region.ops, region.override, region.limit) == ("main", "main", "cpu", "int8", 7, True, None)
    assert region.alternatives == (
        api.Alternative("cpu", "float32", 1.5, 4.0), api.Alternative("cpu", "int8", 0.5, 3.0), api.Alternative("gpu", "float32", 2.0, 4.5),
    )
    assert region.ineligible == {"cpu": "rule R1", "dsp": "op CUMSUM: no Hexagon kernel"}
    assert report.timeline == (api.TimelineEntry("main", "cpu", "int8", ("main",), 0.0, 3.0),)
    assert report.partitions == (api.PartitionInfo("main", "cpu", "int8", ("main",), 0.5, "the only region"),)
    assert report.placement == {"main": "cpu"} and report.best_single == ("cpu", 4.5) and report.data["edges"] == []
    with pytest.raises(FrozenInstanceError):
        region.processor = "gpu"  # type: ignore[misc]


# ---- one check, two ways in --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, changes, code",
    [
        (["--precision", "int8"], {"precision": "int8"}, "bad-calibration"),
        (["--io-dtype", "uint8"], {"io_dtype": "uint8"}, "bad-calibration"),
        (["--precision", "float", "--calib", "random", "--calib-holdout", "2"], {"precision": "float", "calib": "random", "calib_holdout": 2}, "usage"),
        (["--calib", "random", "--calib-holdout", "2"], {"calib": "random", "calib_holdout": 2}, "usage"),
        (["--calib", "{x}", "--preprocess", "size=8"], {"calib": "{x}", "preprocess": "size=8"}, "usage"),
        (["--calib", "{missing}"], {"calib": "{missing}"}, "bad-calibration"),
        (["--const-input", "input={missing}"], {"const_inputs": {"input": "{missing}"}}, "file-not-found"),
        (["--const-input", "input={nan}"], {"const_inputs": {"input": "{nan}"}}, "bad-input-data"),
        (["--print-ir-after", "no-such-pass"], {"debug": api.Debug(print_ir_after=frozenset({"no-such-pass"}))}, "unknown-pass"),
    ],
    ids=["int8", "io-dtype", "holdout-unused", "holdout-random", "preprocess-array", "calib-missing", "const-missing", "const-nan", "unknown-pass"],
)
def test_the_command_line_and_the_api_refuse_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], flags: list[str], changes: dict[str, Any], code: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no stretchc.toml
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    np.save(tmp_path / "nan.npy", _with_nan())
    paths = {"x": str(tmp_path / "x.npy"), "missing": str(tmp_path / "missing.npy"), "nan": str(tmp_path / "nan.npy")}

    def fill(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        return v.format(**paths) if isinstance(v, str) else v

    capsys.readouterr()
    rc = main(["compile", str(EXAMPLE), "-o", "b.stretch", *(fill(f) for f in flags)])
    cli_line = capsys.readouterr().err.splitlines()[-1]
    with pytest.raises(StretchError) as caught:
        api.compile(EXAMPLE, tmp_path / "b.stretch", **{k: fill(v) for k, v in changes.items()})
    err = caught.value
    assert (err.code, int(err.exit_status), err.one_line()) == (code, rc, cli_line)
    assert not (tmp_path / "b.stretch").exists()


def _with_nan() -> np.ndarray:
    arr = np.zeros((1, 3, 32, 32), np.float32)
    arr[0, 1, 2, 3] = np.nan
    return arr


def test_a_const_input_array_is_checked_as_its_file_would_be(tmp_path: Path) -> None:
    with pytest.raises(StretchError) as caught:
        api.compile(EXAMPLE, tmp_path / "b.stretch", const_inputs={"input": _with_nan()})
    assert caught.value.code == "bad-input-data" and caught.value.message.startswith("--const-input input: nan at (0, 1, 2, 3)")
    assert caught.value.location.file is None  # no file to name


def test_options_the_command_line_could_not_parse_are_usage_errors(tmp_path: Path) -> None:
    for changes in ({"precision": "int4"}, {"io_dtype": "float16"}, {"on_ineligible": "gpu"}, {"emit": ("onnx",)}):
        with pytest.raises(StretchError) as caught:
            api.compile(EXAMPLE, tmp_path / "b.stretch", **changes)
        assert caught.value.code == "usage", changes
    with pytest.raises(TypeError):
        api.compile(EXAMPLE, tmp_path / "b.stretch", precison="float")  # a misspelled option is a programming error


def test_compile_hands_its_options_to_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line parses and merges stretchc.toml; the API gets typed options, the debug instruments and
    the command line's console, and does the rest."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stretchc.toml").write_text('target = "mi9"\ntime-passes = true\n')
    seen: dict[str, Any] = {}

    def spy(model: str, output: str, options: api.Options, **kw: Any) -> None:
        seen.update(model=model, output=output, options=options, console_is_the_cli_s=kw.pop("console") is get_console(), **kw)
        raise StretchError("usage", "stop here")

    monkeypatch.setattr(api, "compile", spy)
    argv = ["compile", str(EXAMPLE), "-o", "b.stretch", "--precision", "float", "--place", "s1.b0=gpu", "--input-shape", "input=1,3,32,32",
            "--limit", "tensor-bytes=1M", "--emit", "nnstretch-tflite", "--verify", "--atol", "0.5", "--print-ir-after", "find-branches"]
    assert main(argv) == 2
    options = seen["options"]
    assert (seen["model"], seen["output"], seen["console_is_the_cli_s"]) == (str(EXAMPLE), "b.stretch", True)
    assert (options.target, options.precision, dict(options.place), dict(options.input_shapes)) == ("mi9", "float", {"s1.b0": "gpu"}, {"input": [1, 3, 32, 32]})
    assert (options.limits.tensor_bytes, options.emit, options.config) == (1 << 20, ("nnstretch-tflite",), tmp_path / "stretchc.toml")
    assert (seen["verify"], seen["atol"], seen["rtol"]) == (True, 0.5, 0.0)
    assert seen["debug"] == api.Debug(print_ir_after=frozenset({"find-branches"}), time_passes=True)


def test_targets_show_what_the_api_gives(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets"]) == 0
    listed = capsys.readouterr().out.splitlines()[1:]
    assert [line.split()[0] for line in listed] == [t.name for t in api.list_targets()]
    mi9 = api.get_target("mi9")
    dsp, npu = (next(b for b in mi9.backends if b.name == name) for name in ("dsp", "npu"))
    assert dsp.description is not None and dsp.unavailable is None and npu.description is None and npu.unavailable
    assert main(["targets", "show", "mi9"]) == 0
    shown = capsys.readouterr().out
    assert f"yes: {dsp.description}" in shown and f"no: mi9 {npu.unavailable}" in shown


def test_verify_takes_arrays_or_data_not_both(example_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = example_bundle.parent / "example.onnx"
    x = np.zeros((1, 3, 32, 32), np.float32)
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(StretchError) as caught:
        api.Bundle(example_bundle).verify(model, inputs=[{"input": x}], data=tmp_path / "x.npy")
    assert caught.value.code == "usage" and "not both" in caught.value.message
    capsys.readouterr()
    rc = main(["verify", str(example_bundle), str(model), "--input", f"input={tmp_path / 'x.npy'}", "--input-dir", str(tmp_path / "x.npy")])
    assert (rc, capsys.readouterr().err.splitlines()[-1]) == (int(caught.value.exit_status), caught.value.one_line())


@pytest.mark.parametrize(
    "argv, owner, function",
    [
        (["explain", "{bundle}", "s1.b0"], "Bundle", "explain"),
        (["inspect", "{bundle}"], "Bundle", "describe"),
        (["opt", "{tmp}/x.ir", "--pipeline", "find-branches"], "api", "opt"),
        (["bisect", str(EXAMPLE)], "api", "bisect_passes"),
        (["calibrate", "-t", "host", "-o", "{tmp}/host.yaml"], "api", "calibrate"),
        (["build-model", str(REPO / "tests" / "data" / "none.yaml")], "api", "build_model"),
        (["example", "stretchy", "-o", "{tmp}/s.onnx"], "api", "write_example"),
        (["passes"], "api", "list_passes"),
        (["cost-model", "--report", "--no-loo"], "api", "cost_model_accuracy"),
    ],
)
def test_every_command_does_its_work_through_the_api(
    argv: list[str], owner: str, function: str, example_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each command hands its work to the API function of the same job (the command line is a layer over the API):
    with that function replaced by one that stops, the command stops there, before doing any of the work itself."""
    reached: list[str] = []

    def stop(*args: Any, **kwargs: Any) -> None:
        reached.append(function)
        raise StretchError("usage", "stopped at the API")

    monkeypatch.setattr(api.Bundle if owner == "Bundle" else api, function, stop)
    assert main([a.format(bundle=example_bundle, tmp=tmp_path) for a in argv]) == 2
    assert reached == [function] and "stopped at the API" in capsys.readouterr().err
    assert not (tmp_path / "host.yaml").exists() and not (tmp_path / "s.onnx").exists()
