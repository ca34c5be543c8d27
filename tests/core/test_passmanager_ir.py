"""Pass manager (pipelines, dumps, instruments, `stretchc passes`) and the IR text format and verifier."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from stretchc.analyses import Analysis, Arena, Placement
from stretchc.backends import processors
from stretchc.cli import main
from stretchc.driver import default_pipeline
from stretchc.errors import StretchError
from stretchc.ir import IRError, Module, Value
from stretchc.irtext import parse_module, print_module
from stretchc.passmanager import Pass, PassContext, PassManager, parse_pipeline, print_pipeline, registry

from tests.core.conftest import VARIANTS, Compiled

PASSES = ["assign-delegates", "emit-bundle", "find-branches", "insert-sync-points", "outline-partitions"]


def test_registry_has_every_pass() -> None:
    assert set(PASSES) <= set(registry())
    assert {p.name for p in parse_pipeline(default_pipeline())} <= set(registry())


def test_default_pipeline_prints_in_full_and_round_trips() -> None:
    printed = print_pipeline(parse_pipeline(default_pipeline()))
    assert "assign-delegates{" in printed and "policy=" in printed
    assert print_pipeline(parse_pipeline(printed)) == printed
    assert [p.name for p in parse_pipeline(printed)] == [p.name for p in parse_pipeline(default_pipeline())]


@pytest.mark.parametrize(
    "text",
    ["find-branches", " find-branches , assign-delegates{policy=cpu} ", "find-branches,assign-delegates{ policy = cpu },outline-partitions"],
)
def test_pipeline_round_trip(text: str) -> None:
    printed = print_pipeline(parse_pipeline(text))
    assert print_pipeline(parse_pipeline(printed)) == printed
    if "policy" in text:
        assert "assign-delegates{policy=cpu" in printed


@pytest.mark.parametrize(
    "text, code, word",
    [
        ("nope", "unknown-pass", "nope"),
        ("assign-delegates{bogus=1}", "bad-pipeline", "unknown option"),
        ("assign-delegates{policy=sideways}", "bad-pipeline", "must be one of"),
        ("assign-delegates{policy=cpu,policy=cpu}", "bad-pipeline", "twice"),
        ("assign-delegates{policy=}", "bad-pipeline", "malformed"),
        ("assign-delegates{policy=cpu", "bad-pipeline", "unbalanced"),
        ("assign-delegates}", "bad-pipeline", "unbalanced"),
        ("find-branches{x=1}", "bad-pipeline", "unknown option"),
        ("find-branches,", "bad-pipeline", "empty"),
    ],
)
def test_pipeline_errors(text: str, code: str, word: str) -> None:
    with pytest.raises(StretchError) as exc:
        parse_pipeline(text)
    assert exc.value.code == code and word in exc.value.message


def test_dump_dir_names(compiled: dict[str, Compiled]) -> None:
    names = sorted(p.name for p in compiled["concat2"].dump_dir.iterdir())
    expected = ["00-input.ir"] + [f"{k:02d}-after-{p.name}.ir" for k, p in enumerate(parse_pipeline(default_pipeline()), start=1)]
    # No canonicalizing rewrite changes this model: the ONNX side is the input dump alone.
    assert names == expected + ["constants", "onnx-00-input.onnx"]
    assert "01-after-unshare-pads.ir" in names and "02-after-find-branches.ir" in names


def test_print_ir_after_and_time_passes(compiled: dict[str, Compiled], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    rc = main(
        ["compile", str(compiled["add2"].model_path), "-o", str(tmp_path / "b"), "--print-ir-after", "find-branches", "--time-passes"]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert out.count("// -----// IR after") == 1 and "// -----// IR after find-branches //----- //" in out
    assert "region=s1.b1" in out
    assert "pass timing:" in out
    for p in parse_pipeline(default_pipeline()):
        assert p.name in out.split("pass timing:")[1]


def test_passes_command_lists_every_pass(capsys) -> None:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert main(["passes"]) == 0
    out = capsys.readouterr().out
    for name in registry():
        assert f"{name}:" in out
    assert "policy" in out and "default pipeline:" in out


def _without_header(dump_text: str) -> str:
    """A dump's module text: its first line, then everything after the comments and the reproducer line."""
    first, *rest = dump_text.splitlines(keepends=True)
    return first + "".join(line for line in rest if not line.startswith(("#", "reproducer ")))


@pytest.mark.parametrize("name", ["concat2", "two_stages", "nested", "no_branches"])
def test_ir_text_round_trip(compiled: dict[str, Compiled], name: str) -> None:
    for dump in sorted(compiled[name].dump_dir.glob("*.ir")):
        text = dump.read_text()
        for constants in (None, dump.parent / "constants"):
            module = parse_module(text, constants=constants)
            assert print_module(module) == _without_header(text), dump.name
            module.verify()


def test_print_is_deterministic(compiled: dict[str, Compiled]) -> None:
    m = compiled["two_stages"].result.module
    last = sorted(compiled["two_stages"].dump_dir.glob("*.ir"))[-1]
    assert print_module(m) == print_module(m) == _without_header(last.read_text())


def test_parse_errors_name_the_line() -> None:
    with pytest.raises(StretchError) as exc:
        parse_module("# stretchc IR v1\nmodule \"m\"\n%v1: f32[1] = tfl.RELU(%nope) {}\n")
    assert exc.value.code == "bad-ir" and "line 3" in exc.value.message and "%nope" in exc.value.message
    with pytest.raises(StretchError):
        parse_module("not an IR\n")


def _module(compiled: dict[str, Compiled], stage: str = "after-insert-sync-points.ir"):  # type: ignore[no-untyped-def]
    dump = next(p for p in sorted(compiled["concat2"].dump_dir.glob("*.ir")) if p.name.endswith(stage))
    return parse_module(dump.read_text())


def test_verify_catches_use_before_definition(compiled: dict[str, Compiled]) -> None:
    m = _module(compiled)
    nodes = m.graph.nodes
    nodes[0], nodes[-1] = nodes[-1], nodes[0]
    with pytest.raises(IRError, match="before it is defined"):
        m.verify()


def test_verify_catches_stale_use_record(compiled: dict[str, Compiled]) -> None:
    m = _module(compiled)
    node = next(n for n in m.graph.nodes if n.kind == "CONV_2D")
    node.inputs[0] = Value("intruder", (1,), "float32")  # bypasses set_input: no use record
    with pytest.raises(IRError):
        m.verify()


def test_verify_catches_duplicate_value_names(compiled: dict[str, Compiled]) -> None:
    m = _module(compiled, "input.ir")
    outs = [n.outputs[0] for n in m.graph.nodes[:2]]
    outs[1].name = outs[0].name
    with pytest.raises(IRError, match="two values are named"):
        m.verify()


def test_verify_catches_unknown_processor_and_missing_region(compiled: dict[str, Compiled]) -> None:
    m = _module(compiled, "after-assign-delegates.ir")
    m.graph.nodes[0].processor = "tpu"
    with pytest.raises(IRError, match="unknown processor"):
        m.verify(processors())
    m = _module(compiled, "after-assign-delegates.ir")
    m.graph.nodes[0].region = "nowhere"
    with pytest.raises(IRError, match="in no region"):
        m.verify()


def test_verify_catches_bad_buffer_plan(compiled: dict[str, Compiled]) -> None:
    m = _module(compiled)
    m.buffers[0].offset += 8
    with pytest.raises(IRError, match="aligned"):
        m.verify()
    m = _module(compiled)
    m.arena_size = 64
    with pytest.raises(IRError, match="exceeds the arena"):
        m.verify()


def test_verify_catches_unproduced_output(compiled: dict[str, Compiled]) -> None:
    m = _module(compiled, "input.ir")
    m.graph.outputs.append(Value("ghost", (1,), "float32"))
    with pytest.raises(IRError, match="never produced"):
        m.verify()


@dataclass(frozen=True)
class _ReadsPlacement(Pass):
    """Reads the placement without declaring it."""

    name: ClassVar[str] = "reads-placement"

    def run(self, module: Module, ctx: PassContext) -> bool:
        ctx.analyses.get(Placement)
        return False


@dataclass(frozen=True)
class _UsesPlacement(_ReadsPlacement):
    """Reads the placement, declaring it."""

    name: ClassVar[str] = "uses-placement"
    uses: ClassVar[tuple[type[Analysis], ...]] = (Placement,)


@dataclass(frozen=True)
class _RecordsArena(Pass):
    """Records an arena without declaring it in `produces`."""

    name: ClassVar[str] = "records-arena"

    def run(self, module: Module, ctx: PassContext) -> bool:
        ctx.analyses.put(Arena(0, 0))
        return False


def test_a_pass_reads_and_records_only_the_analyses_it_declares(compiled: dict[str, Compiled]) -> None:
    module = compiled["two_stages"].result.module
    PassManager([_UsesPlacement()]).run(module, PassContext())
    for undeclared, word in ((_ReadsPlacement(), "reads the placement analysis"), (_RecordsArena(), "records the arena analysis")):
        with pytest.raises(StretchError) as caught:
            PassManager([undeclared]).run(module, PassContext())
        assert caught.value.code == "internal" and word in caught.value.message and undeclared.name in caught.value.message
