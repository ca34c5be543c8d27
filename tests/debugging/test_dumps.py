"""Replayable dumps: constants in a content-addressed store, a reproducer header, the compile settings and the
typed analyses recorded field by field."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from stretchc import __version__
from stretchc.analyses import Analyses, Analysis, HeldOutInputs, Placement
from stretchc.compile_settings import CompileSettings
from stretchc.console import Console
from stretchc.driver import default_pipeline
from stretchc.errors import StretchError
from stretchc.irtext import ConstantStore, parse_module
from stretchc.passmanager import PassContext, parse_pipeline, print_pipeline
from stretchc.reproducer import Recorder, Reproducer, replay_context
from stretchc.targets import load_target

from tests.debugging.conftest import Dumped


def _quiet() -> Console:
    return Console(quiet=True, stream=sys.stderr)


def test_whole_pipeline_dumps_are_small_and_share_constants(example_dumps: Dumped) -> None:
    files = [p for p in example_dumps.dumps.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    texts = [p.read_text() for p in sorted(example_dumps.dumps.glob("*.ir"))]
    referenced = {d for t in texts for d in re.findall(r"= sha256:([0-9a-f]{16})$", t, re.M)}
    stored = {p.stem for p in (example_dumps.dumps / "constants").glob("*.bin")}
    assert referenced and referenced == stored  # every constant once, however many dumps print it
    assert sum(t.count("sha256:") for t in texts) > 3 * len(stored)


def test_constants_come_back_exactly(example_dumps: Dumped) -> None:
    from stretchc.cli import main

    last = sorted(example_dumps.dumps.glob("*-after-emit-bundle.ir"))[0]
    restored = parse_module(last.read_text(), constants=example_dumps.dumps / "constants")
    zeros = parse_module(last.read_text())
    big = [v for v in restored.graph.values() if v.data is not None and v.data.size > 16]
    assert big and all(np.any(v.data != 0) for v in big)
    assert all(not np.any(v.data) for v in zeros.graph.values() if v.data is not None and v.data.size > 16)
    assert main(["inspect", str(example_dumps.bundle), "-q"]) == 0  # the bundle those constants went into is sound


def test_a_corrupt_or_missing_constant_is_bad_ir(example_dumps: Dumped, tmp_path: Path) -> None:
    store = tmp_path / "constants"
    store.mkdir()
    for p in (example_dumps.dumps / "constants").iterdir():
        (store / p.name).write_bytes(p.read_bytes())
    text = (example_dumps.dumps / "00-input.ir").read_text()
    victim = sorted(store.glob("*.bin"))[0]
    victim.write_bytes(b"\0" + victim.read_bytes()[1:])
    with pytest.raises(StretchError) as exc:
        parse_module(text, constants=store)
    assert exc.value.code == "bad-ir" and "does not match its digest" in exc.value.message
    victim.unlink()
    with pytest.raises(StretchError) as exc:
        parse_module(text, constants=store)
    assert exc.value.code == "bad-ir" and "has no sha256:" in exc.value.message


def test_reproducer_header_records_pipeline_target_and_options(example_dumps: Dumped) -> None:
    passes = parse_pipeline(default_pipeline())
    text = (example_dumps.dumps / "02-after-find-branches.ir").read_text()
    assert text.startswith("# stretchc IR v1\n# stretchc ")
    rep = Reproducer.from_text(text)
    assert rep is not None and rep.failure is None and rep.version == __version__
    assert rep.done == print_pipeline(passes[:2]) and rep.remaining == print_pipeline(passes[2:])
    assert rep.target is not None and rep.target["spec"] == "pixel6" and len(rep.target["sha256"]) == 64
    assert rep.settings == CompileSettings().to_record() and rep.place == {} and len(rep.source_sha256 or "") == 64
    assert rep.analyses is None  # no pass recorded one yet
    assert "# replay the rest: stretchc opt 02-after-find-branches.ir --bundle OUT.stretch" in text
    after = Reproducer.from_text((example_dumps.dumps / "04-after-assign-delegates.ir").read_text())
    assert after is not None and after.analyses is not None  # assign-delegates recorded its placement report


@pytest.mark.slow  # sets up quantized_dumps: compiles calibrated with TFLite (about 3.5 s per case)
def test_quantized_dumps_record_the_calibration_source(quantized_dumps: Dumped) -> None:
    rep = Reproducer.from_text((quantized_dumps.dumps / "00-input.ir").read_text())
    assert rep is not None and rep.place == {"s1.b1": "dsp"} and rep.target is not None and rep.target["spec"] == "mi9"
    calib = rep.settings["calib"]
    if calib == "random":
        return
    assert calib["$path"].endswith("calib.npy") and len(calib["sha256"]) == 64
    assert rep.settings["calib_holdout"] == 2 and rep.settings["hold_out"] and rep.settings["min_sqnr"] == 10.0


def _record(tmp_path: Path, settings: CompileSettings, analyses: list[Analysis] | None = None) -> tuple[Reproducer, ConstantStore]:
    store = ConstantStore(tmp_path / "constants")
    passes = parse_pipeline("find-branches,assign-delegates")
    ctx = PassContext(
        target=load_target("pixel6"), place={"s1.b0": "gpu"}, settings=settings, console=_quiet(), source_sha256="ab" * 32, analyses=Analyses(analyses or [])
    )
    rep = Recorder(store).reproducer(ctx, done=passes[:1], remaining=passes[1:])
    return Reproducer.from_text(f"# stretchc IR v1\n{rep.line()}\nmodule \"m\"\n") or rep, store


def test_settings_and_analyses_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"png")
    array = np.arange(40, dtype=np.float32).reshape(2, 20)
    settings = CompileSettings(
        precision="int8", min_sqnr=31.5, calib=folder, hold_out=True, preprocess={"size": [8, 8], "mean": [0.5, 0.5, 0.5]},
        emit=("nnstretch-tflite",), backend_options={"dsp": {"dtype": "uint8"}},
    )
    analyses: list[Analysis] = [
        HeldOutInputs([{"input": array}]),
        Placement({"s1.b0": "gpu"}, ["s1.b0"], {}, {"predicted_latency_ms": 1.25, "nested": {"b": [1, 2.5, "x", True]}}),
    ]
    rep, store = _record(tmp_path, settings, analyses)
    ctx = replay_context(rep, store, passes=parse_pipeline("assign-delegates,outline-partitions"), console=_quiet())
    assert print_pipeline(ctx.pipeline) == "find-branches,assign-delegates{policy=critical-path,grouping=cost},outline-partitions"
    assert ctx.settings == settings
    held = ctx.analyses.get(HeldOutInputs)
    assert held is not None
    np.testing.assert_array_equal(held.feeds[0]["input"], array)
    placed = ctx.analyses.get(Placement)
    assert placed == analyses[1] and placed.predicted_latency_ms == 1.25
    assert ctx.source_sha256 == "ab" * 32 and ctx.place == {"s1.b0": "gpu"} and ctx.target.name == "pixel6"
    again, _ = _record(tmp_path, settings, analyses)
    assert again.line() == rep.line()  # deterministic


def test_replay_takes_data_again_and_checks_its_digest(tmp_path: Path) -> None:
    data = tmp_path / "calib.npy"
    np.save(data, np.zeros((2, 3), dtype=np.float32))
    rep, store = _record(tmp_path, CompileSettings(calib=data))
    passes = parse_pipeline("assign-delegates")
    moved = tmp_path / "moved.npy"
    moved.write_bytes(data.read_bytes())
    np.save(data, np.ones((2, 3), dtype=np.float32))
    with pytest.raises(StretchError) as exc:
        replay_context(rep, store, passes=passes, console=_quiet())
    assert exc.value.code == "replay-mismatch" and exc.value.exit_status == 3 and "option calib" in exc.value.message
    ctx = replay_context(rep, store, passes=passes, console=_quiet(), data={"calib": moved})
    assert ctx.settings.calib == moved
    data.unlink()
    console = _quiet()
    replay_context(rep, store, passes=passes, console=console)
    assert [d.code for d in console.diagnostics] == ["replay-data-missing"]
    with pytest.raises(StretchError) as exc:
        replay_context(rep, store, passes=passes, console=console, data={"nope": moved})
    assert exc.value.code == "usage"


def test_a_setting_dumps_cannot_record_is_named_on_replay(tmp_path: Path) -> None:
    rep, store = _record(tmp_path, CompileSettings(preprocess=object()))
    assert rep.settings["preprocess"]["$unrecorded"] == "builtins.object"
    console = _quiet()
    ctx = replay_context(rep, store, passes=parse_pipeline("assign-delegates"), console=console)
    assert ctx.settings.preprocess is None and [d.code for d in console.diagnostics] == ["replay-unrecorded"]
