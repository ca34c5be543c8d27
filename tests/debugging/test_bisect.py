"""`stretchc bisect`: a numeric bug planted in one pass (through the registry) is named; a clean pipeline
has every row within tolerance; a pass whose model did not change is not run again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from stretchc import passmanager
from stretchc.cli import main
from stretchc.driver import default_pipeline
from stretchc.ir import Module
from stretchc.irtext import parse_module, print_module
from stretchc.passmanager import PassContext, parse_pipeline, registry

from tests.debugging.conftest import EXAMPLE, small_model


def _rows(out: str) -> list[list[str]]:
    """The table's rows: [mark, index, pass, IR, model, output, max|err|, SQNR, criterion..., result]."""
    rows = []
    for line in out.splitlines():
        words = line.split()
        if words and words[0] == ">>":
            rows.append(words)
        elif len(words) > 2 and words[0].isdigit():
            rows.append(["", *words])
    return rows


def test_clean_pipeline_is_within_tolerance_and_skips_unchanged_models(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["bisect", str(EXAMPLE), "-t", "pixel6"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert [r[2] for r in rows] == ["(lowered", *[p.name for p in parse_pipeline(default_pipeline())]]
    assert all(r[-1] == "ok" for r in rows) and "every row is within tolerance" in out
    runs = sum(1 for r in rows if r[4 if r[2] != "(lowered" else 5] == "run")
    assert 1 <= runs < len(rows) and f"({runs} model(s) run)" in out
    assert not (tmp_path / "branchy.bisect").exists()  # nothing written when nothing is wrong


@pytest.mark.slow  # calibrates with TFLite and bisects the pipeline (about 3.5 s)
def test_quantized_pipeline_is_within_tolerance(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = small_model(tmp_path)
    capsys.readouterr()
    assert main(["bisect", str(model), "-t", "mi9", "--place", "s1.b1=dsp", "--calib", "random", "--dump-dir", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "every row is within tolerance" in out and ">=20.0 dB" in out and "<=" in out  # float rows, then int8 rows


@pytest.mark.parametrize("position", [0.5, 1.0])
def test_planted_numeric_bug_is_named(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, position: float) -> None:  # type: ignore[no-untyped-def]
    passes = parse_pipeline(default_pipeline())
    index = min(int(len(passes) * position), len(passes) - 1)  # a pass of the pipeline bisect runs, by position
    name = passes[index].name
    original = registry()[name]

    @dataclass(frozen=True)
    class Buggy(original):  # type: ignore[valid-type, misc]
        """The real pass, then one weight scaled by 1.5: wrong numbers, valid IR."""

        def run(self, module: Module, ctx: PassContext) -> bool:
            super().run(module, ctx)
            weight = next(v for v in module.graph.values() if v.data is not None and v.data.size > 16 and v.dtype == "float32")
            weight.data = weight.data * np.float32(1.5)
            return True

    monkeypatch.setitem(passmanager._REGISTRY, name, Buggy)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["bisect", str(EXAMPLE), "-t", "pixel6"]) == 5
    captured = capsys.readouterr()
    marked = [r for r in _rows(captured.out) if r[0] == ">>"]
    assert len(marked) == 1 and marked[0][1] == str(index + 1) and marked[0][2] == name
    assert f"pass {name} is the first out of tolerance" in captured.err
    before = tmp_path / "branchy.bisect" / f"{index:02d}-{'input' if index == 0 else 'after-' + passes[index - 1].name}.ir"
    after = tmp_path / "branchy.bisect" / f"{index + 1:02d}-after-{name}.ir"
    assert before.is_file() and after.is_file() and f"replay it: stretchc opt {before.relative_to(tmp_path)} --pipeline={passes[index].spelled()}" in captured.out
    replayed = tmp_path / "replayed.ir"
    assert main(["opt", str(before), f"--pipeline={passes[index].spelled()}", "-o", str(replayed), "-q"]) == 0
    assert print_module(parse_module(replayed.read_text())) == print_module(parse_module(after.read_text()))


def test_a_pass_failing_during_bisect_leaves_a_reproducer(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    passes = parse_pipeline(default_pipeline())
    index = len(passes) // 2
    name = passes[index].name
    original = registry()[name]

    @dataclass(frozen=True)
    class Crashing(original):  # type: ignore[valid-type, misc]
        def run(self, module: Module, ctx: PassContext) -> bool:
            raise ZeroDivisionError("planted")

    monkeypatch.setitem(passmanager._REGISTRY, name, Crashing)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["bisect", str(EXAMPLE), "-t", "pixel6"]) == 70
    captured = capsys.readouterr()
    failed = Path("branchy.bisect") / f"{index + 1:02d}-failed-{name}.ir"
    assert f"Reproduce with: stretchc opt {failed} --pipeline={passes[index].spelled()}" in captured.err
    assert len(_rows(captured.out)) == index + 1  # the rows up to the failing pass
    assert main(["opt", str(failed), f"--pipeline={passes[index].spelled()}"]) == 70
    assert "ZeroDivisionError: planted" in capsys.readouterr().err


def test_given_inputs(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(5).random((1, 3, 160, 160), dtype=np.float32))
    capsys.readouterr()
    assert main(["bisect", str(EXAMPLE), "--input", f"input={data}", "--dump-dir", str(tmp_path / "d")]) == 0
    assert "on 1 input(s)" in capsys.readouterr().out
    np.save(data, np.zeros((1, 3, 8, 8), dtype=np.float32))
    assert main(["bisect", str(EXAMPLE), "--input", f"input={data}", "--dump-dir", str(tmp_path / "d")]) == 3
    assert "bad-input-data" in capsys.readouterr().err



def test_whole_model_of_a_deep_graph_with_sync_points() -> None:
    """The model bisect runs of an Inception-style graph (10 stages of 4 branches) after insert-sync-points: every
    sync node skipped, and it computes what the ONNX model computes."""
    import onnxruntime as ort

    from stretchc.examples import branched_model
    from stretchc.frontend.lower import lower_to_tflite
    from stretchc.frontend.module import build_module
    from stretchc.litert import load_interpreter
    from stretchc.targets import load_target
    from stretchc.whole_model import to_module_layout, to_onnx_layout, whole_model

    model = branched_model(branches=(4,) * 10, size=16, width=16, depth=2, name="deep")
    module = build_module(model, lower_to_tflite(model, file="deep"), name="deep", file="deep")
    from stretchc.compile_settings import CompileSettings

    passes = parse_pipeline("find-branches,assign-delegates{policy=round-robin},outline-partitions,insert-sync-points")
    passmanager.PassManager(passes).run(module, PassContext(target=load_target("mi9"), settings=CompileSettings(precision="float"), pipeline=passes))
    assert sum(n.op == "stretch.sync" for n in module.graph.nodes) > 40
    buf, outputs = whole_model(module)
    feed = {i.name: np.random.default_rng(0).standard_normal(i.shape).astype(np.float32) for i in module.inputs}
    it = load_interpreter(model_content=buf)
    for d in it.get_input_details():
        it.set_tensor(d["index"], to_module_layout(module, feed)[d["name"]])
    it.invoke()
    got = {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}[outputs[0]]
    want = ort.InferenceSession(model.SerializeToString()).run(None, feed)[0]
    assert np.allclose(to_onnx_layout(module.outputs[0], got), want, atol=1e-4)
