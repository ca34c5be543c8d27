"""`stretchc opt`: replaying dumps gives the compile's bundle byte for byte; IR printing instruments;
failure dumps reproduce their failure."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from stretchc import api, passmanager
from stretchc.cli import main
from stretchc.driver import default_pipeline
from stretchc.ir import Module
from stretchc.irtext import parse_module, print_module
from stretchc.passmanager import PassContext, parse_pipeline, print_pipeline, registry
from stretchc.reproducer import Reproducer

from tests.core.conftest import tree_bytes
from tests.debugging.conftest import EXAMPLE, Dumped

REST_AFTER_FIND_BRANCHES = print_pipeline(parse_pipeline(default_pipeline())[2:])


def _opt(dumped: Dumped, dump: str, tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "replayed.stretch"
    assert main(["opt", str(dumped.dumps / dump), "--bundle", str(out), "-q", *extra]) == 0
    return out


def test_example_replayed_after_find_branches_is_byte_identical(example_dumps: Dumped, tmp_path: Path) -> None:
    out = _opt(example_dumps, "02-after-find-branches.ir", tmp_path, f"--pipeline={REST_AFTER_FIND_BRANCHES}")
    assert tree_bytes(out) == tree_bytes(example_dumps.bundle)


@pytest.mark.slow  # shares quantized_dumps (compiles calibrated with TFLite) and replays it (about 3.5 s per case)
def test_quantized_mi9_replayed_after_find_branches_is_byte_identical(quantized_dumps: Dumped, tmp_path: Path) -> None:
    # --min-sqnr sets quantize-partitions' accuracy bound: replay the pipeline the bundle records
    compiled = __import__("json").loads((quantized_dumps.bundle / "manifest.json").read_text())["model"]["pipeline"]
    out = _opt(quantized_dumps, "02-after-find-branches.ir", tmp_path, f"--pipeline={print_pipeline(parse_pipeline(compiled)[2:])}")
    assert tree_bytes(out) == tree_bytes(quantized_dumps.bundle)
    assert any(p["processor"] == "dsp" for p in __import__("json").loads((out / "manifest.json").read_text())["partitions"])


@pytest.mark.slow  # shares quantized_dumps (compiles calibrated with TFLite)
def test_a_pass_replayed_alone_does_what_it_did_in_the_compile(quantized_dumps: Dumped) -> None:
    """assign-delegates plans int8 partitions because the compile quantizes later (CompileSettings.quantize, which
    the dump records), not because quantize-partitions follows it in the pipeline being run: replayed alone, it
    tags the DSP branch int8 as in the compile."""
    replayed = api.opt(quantized_dumps.dumps / "03-after-padv2-to-pad.ir", pipeline="assign-delegates")
    compiled = quantized_dumps.dumps / "04-after-assign-delegates.ir"
    expected = parse_module(compiled.read_text(), file=str(compiled), constants=quantized_dumps.dumps / "constants")
    assert replayed.ir() == print_module(expected)
    assert {n.precision for n in replayed.module.graph.nodes if n.processor == "dsp"} == {"int8"}


@pytest.mark.parametrize("dump", ["00-input.ir", "04-after-assign-delegates.ir", "08-after-insert-sync-points.ir"])
def test_replaying_the_rest_from_any_dump_is_byte_identical(example_dumps: Dumped, tmp_path: Path, dump: str) -> None:
    assert tree_bytes(_opt(example_dumps, dump, tmp_path)) == tree_bytes(example_dumps.bundle)


def test_opt_prints_or_writes_the_result(example_dumps: Dumped, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    dumps = example_dumps.dumps
    capsys.readouterr()
    assert main(["opt", str(dumps / "02-after-find-branches.ir"), "--pipeline=padv2-to-pad"]) == 0
    expected = parse_module((dumps / "03-after-padv2-to-pad.ir").read_text())
    assert capsys.readouterr().out == print_module(expected)
    out = tmp_path / "ir" / "after.ir"  # its folder is made, with the constants it needs
    assert main(["opt", str(dumps / "02-after-find-branches.ir"), "--pipeline=padv2-to-pad,assign-delegates", "-o", str(out), "-q"]) == 0
    rep = Reproducer.from_text(out.read_text())
    assert rep is not None and rep.remaining == "" and rep.done.endswith("padv2-to-pad,assign-delegates{policy=critical-path,grouping=cost}")
    assert rep.done.startswith("unshare-pads,find-branches,")
    written = parse_module(out.read_text(), constants=out.parent / "constants")
    assert print_module(written) == print_module(parse_module((dumps / "04-after-assign-delegates.ir").read_text()))
    replayed = tmp_path / "from-written.stretch"
    assert main(["opt", str(out), f"--pipeline={print_pipeline(parse_pipeline(default_pipeline())[4:])}", "--bundle", str(replayed), "-q"]) == 0
    assert tree_bytes(replayed) == tree_bytes(example_dumps.bundle)


def test_print_ir_before_and_after_change(example_dumps: Dumped, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    dumps = sorted(example_dumps.dumps.glob("*.ir"))
    bodies = [print_module(parse_module(p.read_text())) for p in dumps]
    changed = [p.name.split("-after-")[1][:-3] for p, prev, cur in zip(dumps[1:], bodies, bodies[1:]) if prev != cur]
    capsys.readouterr()
    args = ["--print-ir-after-change", "--print-ir-before", "outline-partitions", "--print-ir-after", "quantize-partitions"]
    assert main(["compile", str(EXAMPLE), "-o", str(tmp_path / "b.stretch"), *args]) == 0
    out = capsys.readouterr().out
    shown = [line.split(" ")[4] for line in out.splitlines() if line.startswith("// -----// IR after ")]
    assert shown == [p for p in [d.name.split("-after-")[1][:-3] for d in dumps[1:]] if p in changed or p == "quantize-partitions"]
    assert out.count("// -----// IR before outline-partitions //----- //") == 1
    assert changed and "unshare-pads" not in changed  # the example has no shared pads
    capsys.readouterr()
    assert main(["opt", str(example_dumps.dumps / "05-after-ungroup-convs.ir"), "--pipeline=outline-partitions", "--print-ir-before=outline-partitions"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("// -----// IR before outline-partitions //----- //\n" + bodies[5])


def test_unknown_pass_in_print_ir_before(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["compile", str(EXAMPLE), "-o", str(tmp_path / "b"), "--print-ir-before", "nope"]) == 2
    assert "unknown-pass" in capsys.readouterr().err and not (tmp_path / "b").exists()


def _plant(monkeypatch: pytest.MonkeyPatch, name: str, how: str) -> None:
    """Replace pass `name` in the registry by a copy that fails: its IR does not verify, or it raises."""
    original = registry()[name]

    @dataclass(frozen=True)
    class Failing(original):  # type: ignore[valid-type, misc]
        def run(self, module: Module, ctx: PassContext) -> bool:
            super().run(module, ctx)
            if how == "verifier":
                module.graph.nodes[0].region = "nowhere"
                return True
            raise ZeroDivisionError("planted")

    monkeypatch.setitem(passmanager._REGISTRY, name, Failing)


@pytest.mark.parametrize("how, status, message", [("verifier", 70, "is in no region"), ("exception", 70, "ZeroDivisionError: planted")])
def test_failure_dump_reproduces_the_failure(example_dumps: Dumped, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, how: str, status: int, message: str) -> None:  # type: ignore[no-untyped-def]
    passes = parse_pipeline(default_pipeline())
    index = len(passes) // 2
    name = passes[index].name
    _plant(monkeypatch, name, how)
    dumps = tmp_path / "dumps"
    capsys.readouterr()
    assert main(["compile", str(EXAMPLE), "-o", str(tmp_path / "b.stretch"), "--dump-dir", str(dumps)]) == status
    err = capsys.readouterr().err
    failed = dumps / f"{index + 1:02d}-failed-{name}.ir"
    assert message in err and f"Reproduce with: stretchc opt {failed} --pipeline={passes[index].spelled()}" in err
    text = failed.read_text()
    previous = sorted(dumps.glob(f"{index:02d}-after-*.ir"))[0]
    assert print_module(parse_module(text)) == print_module(parse_module(previous.read_text()))  # the failing pass's input
    rep = Reproducer.from_text(text)
    assert rep is not None and rep.failure is not None and rep.failure["pass"] == name and message in rep.failure["message"]
    command = next(line for line in text.splitlines() if line.startswith("# reproduce: "))[len("# reproduce: ") :]
    words = shlex.split(command)
    assert words[:2] == ["stretchc", "opt"]
    assert main(["opt", str(dumps / words[2]), *words[3:]]) == status
    assert message in capsys.readouterr().err


def test_opt_refusals(example_dumps: Dumped, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    dump = example_dumps.dumps / "02-after-find-branches.ir"
    assert main(["opt", str(dump), "--pipeline=padv2-to-pad", "--bundle", str(tmp_path / "b")]) == 2
    assert "no emit-bundle" in capsys.readouterr().err
    lonely = tmp_path / "lonely.ir"
    lonely.write_text(dump.read_text())
    assert main(["opt", str(lonely), "--bundle", str(tmp_path / "b")]) == 3
    assert "error[bad-ir]" in capsys.readouterr().err and not (tmp_path / "b").exists()
    assert main(["opt", str(lonely), "--pipeline=padv2-to-pad", "-q"]) == 0
    assert "warning[no-constants]" in capsys.readouterr().err
    assert main(["opt", str(tmp_path / "missing.ir")]) == 3
    golden = Path(__file__).parents[1] / "passes" / "find_branches" / "input.ir"
    assert main(["opt", str(golden)]) == 2  # no reproducer: the pipeline must be given
    assert "give --pipeline" in capsys.readouterr().err


def test_opt_never_installs_an_invalid_bundle(example_dumps: Dumped, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """As compile: the replayed bundle is validated before it is installed (here emit-bundle's manifest is spoiled)."""
    from stretchc.passes.emit_bundle import EmitBundle

    emit = EmitBundle.run

    def spoiled(self: EmitBundle, module, ctx) -> bool:  # type: ignore[no-untyped-def]
        changed = emit(self, module, ctx)
        manifest = ctx.output_dir / "manifest.json"
        manifest.write_text(manifest.read_text().replace('"format_version": 3', '"format_version": 4'))
        return changed

    monkeypatch.setattr(EmitBundle, "run", spoiled)
    dump = sorted(example_dumps.dumps.glob("*-after-find-branches.ir"))[0]
    assert main(["opt", str(dump), "--bundle", str(tmp_path / "b"), "-q"]) == 70
    assert "fails validation, so it was not installed" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.tmp-*"))
