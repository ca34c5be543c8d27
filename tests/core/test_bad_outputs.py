"""Issue 23, outputs and messages: what stretchc writes never lands in, through or over what it must not, and
its errors quote no file contents.

Items 6 and 7 (--dump-dir, --report, --depfile inside the output bundle), 16 (every command that writes a file
refuses to replace a user's file, as `compile -o` does), 18 (symbolic links as outputs), 10 (target-file
errors quote no file contents) and 11 (opt and bisect pipelines lacking a required pass are `bad-pipeline`);
item 16 for `run --output-dir` (run.json records what a run wrote); files written atomically with the user's
umask; `verify --preprocess` checked as compile checks it; the `calibration-capped` note given once.
Each refusal is one error line with its documented exit status; the user's files are left as they were and
nothing is left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from stretchc import fileio
from stretchc.cli import main
from stretchc.commands import run as run_command
from stretchc.costmodel.placement_report import write_report
from stretchc.driver import CompileOptions, compile_model
from stretchc.errors import StretchError
from stretchc.passmanager import PassContext, PassManager, parse_pipeline
from stretchc.reproducer import LINE_KIND

from tests.conftest import REPO
from tests.core.test_user_errors import _cli, _one_line_error

EXAMPLE = REPO / "examples" / "branchy.onnx"
DIGITS = REPO / "examples" / "digits.onnx"
CONFIG = REPO / "tests" / "modelbuild" / "configs" / "prototype" / "mi_EN-B5-C.yaml"
SECRET = "s3cret-Do-Not-Echo"


def _listing(root: Path) -> dict[str, object]:
    """Everything under `root`: each file's bytes, each link's target, each folder (hidden entries included)."""
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = ("link", os.readlink(p)) if p.is_symlink() else ("dir",) if p.is_dir() else p.read_bytes()
    return out


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example compiled for pixel6 with --dump-dir: its dump folder (shared, never modified)."""
    root = tmp_path_factory.mktemp("bad-outputs")
    compile_model(EXAMPLE, root / "b.stretch", CompileOptions(target="pixel6", dump_dir=root / "dumps"))
    return root / "dumps"


# ---- items 6 and 7: no side output inside the output bundle ------------------------------------------


@pytest.mark.parametrize(
    "option, where",
    [
        ("--dump-dir", "b.stretch"),  # item 6: was exit 0 with the dumps deleted by the install
        ("--dump-dir", "b.stretch/dumps"),
        ("--report", "b.stretch/r.json"),  # item 7: was an unlisted file that made every later compile fail
        ("--report", "b.stretch/sub/../r.html"),
        ("--depfile", "b.stretch/b.d"),  # the same, written after the install
    ],
)
@pytest.mark.parametrize("existing", [False, True], ids=["new", "over-a-bundle"])
def test_side_output_inside_the_bundle_is_refused(
    example_bundle: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, option: str, where: str, existing: bool  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.chdir(tmp_path)
    if existing:
        shutil.copytree(example_bundle, tmp_path / "b.stretch")
    before = _listing(tmp_path)
    rc, err = _cli(capsys, ["compile", str(EXAMPLE), "-o", "b.stretch", option, where])
    _one_line_error(rc, err, "usage")
    assert f"{option} lies inside the output bundle b.stretch" in err
    assert _listing(tmp_path) == before


def test_opt_side_outputs_inside_its_bundle_are_refused(dumps: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    for option, where in (("--dump-dir", tmp_path / "b" / "d"), ("-o", tmp_path / "b" / "out.ir")):
        rc, err = _cli(capsys, ["opt", str(dumps / "02-after-find-branches.ir"), "--bundle", str(tmp_path / "b"), option, str(where)])
        _one_line_error(rc, err, "usage")
    assert _listing(tmp_path) == {}


def test_reports_and_depfiles_beside_the_bundle_are_rewritten_by_the_next_compile(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    args = ["compile", str(EXAMPLE), "-o", str(tmp_path / "b.stretch"), "--report", str(tmp_path / "r.json")]
    args += ["--report", str(tmp_path / "r.html"), "--depfile", str(tmp_path / "b.d"), "-q"]
    for _ in range(2):  # a build repeats: its own earlier outputs are replaced
        rc, err = _cli(capsys, args)
        assert rc == 0, err
    assert json.loads((tmp_path / "r.json").read_text())["placement"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.d", "b.stretch", "r.html", "r.json"]


# ---- item 16: no command replaces a user's file -------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["example", "-o", "{mine}"],
        ["example", "stretchy", "-o", "{mine}"],
        ["build-model", str(CONFIG), "-o", "{mine}", "--image-size", "32"],
        ["opt", "{dumps}/02-after-find-branches.ir", "--pipeline=padv2-to-pad", "-o", "{mine}"],
        ["compile", str(EXAMPLE), "-o", "{tmp}/b.stretch", "--report", "{mine}"],
        ["compile", str(EXAMPLE), "-o", "{tmp}/b.stretch", "--report", "{mine}.html"],
        ["compile", str(EXAMPLE), "-o", "{tmp}/b.stretch", "--depfile", "{mine}"],
    ],
    ids=["example", "example-stretchy", "build-model", "opt", "report-json", "report-html", "depfile"],
)
@pytest.mark.parametrize("content", [b"my notes\n", b"", b"\x08\x08\x12\x04user"], ids=["text", "empty", "other-onnx"])
def test_a_users_file_is_never_replaced(dumps: Path, tmp_path: Path, capsys, args: list[str], content: bytes) -> None:  # type: ignore[no-untyped-def]
    mine = tmp_path / "mine"
    argv = [a.format(mine=mine, dumps=dumps, tmp=tmp_path) for a in args]
    target = Path(next(a for a in argv if a.startswith(str(mine))))
    target.write_bytes(content)
    before = _listing(tmp_path)
    rc, err = _cli(capsys, argv)
    _one_line_error(rc, err, "output-exists")
    assert "refusing to replace it" in err
    assert _listing(tmp_path) == before


def test_example_data_never_replaces_a_users_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "calib.npz").write_bytes(b"my own calibration set")
    before = _listing(tmp_path)
    rc, err = _cli(capsys, ["example", "digits", "--data", str(tmp_path / "d")])
    _one_line_error(rc, err, "output-exists")
    assert _listing(tmp_path) == before


def test_example_replaces_its_own_earlier_output(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    for args in (["example", "-o", str(tmp_path / "m.onnx")], ["example", "stretchy", "-o", str(tmp_path / "m.onnx")]):
        rc, err = _cli(capsys, [*args, "-q"])
        assert rc == 0, err
    from stretchc.examples import stretchy_model

    assert (tmp_path / "m.onnx").read_bytes() == stretchy_model().SerializeToString()
    for _ in range(2):
        rc, err = _cli(capsys, ["example", "digits", "--data", str(tmp_path / "d"), "-q"])
        assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "m.onnx"]


def test_opt_never_writes_over_the_dump_it_replays(dumps: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    shutil.copytree(dumps, tmp_path / "d")
    before = _listing(tmp_path)
    dump = tmp_path / "d" / "02-after-find-branches.ir"
    rc, err = _cli(capsys, ["opt", str(dump), "--pipeline=padv2-to-pad", "-o", str(dump)])
    _one_line_error(rc, err, "usage")
    assert _listing(tmp_path) == before


# ---- item 18: no output through a symbolic link --------------------------------------------------------


@pytest.mark.parametrize(
    "args, link",
    [
        (["compile", str(EXAMPLE), "-o", "{link}"], "nowhere/b.stretch"),  # was: the bundle written at nowhere/b.stretch
        (["compile", str(EXAMPLE), "-o", "{link}"], "real"),
        (["compile", str(EXAMPLE), "-o", "{tmp}/b.stretch", "--report", "{link}"], "nowhere/r.json"),
        (["compile", str(EXAMPLE), "-o", "{tmp}/b.stretch", "--dump-dir", "{link}"], "real"),
        (["example", "-o", "{link}"], "nowhere/m.onnx"),
        (["build-model", str(CONFIG), "-o", "{link}", "--image-size", "32"], "nowhere/m.onnx"),
        (["opt", "{dumps}/02-after-find-branches.ir", "--bundle", "{link}"], "nowhere/b.stretch"),
        (["bisect", str(EXAMPLE), "--dump-dir", "{link}"], "nowhere/d"),
    ],
)
def test_outputs_are_never_written_through_a_symlink(dumps: Path, tmp_path: Path, capsys, args: list[str], link: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(link)
    before = _listing(tmp_path)
    rc, err = _cli(capsys, [a.format(link=tmp_path / "link", tmp=tmp_path, dumps=dumps) for a in args])
    _one_line_error(rc, err, "output-exists")
    assert "symbolic link" in err
    assert _listing(tmp_path) == before


# ---- item 10: errors about target files quote nothing of the file --------------------------------------


PASSWD = "".join(f"user{i}:x:{1000 + i}:{1000 + i}:{SECRET} {i}:/home/user{i}:/bin/bash\n" for i in range(40))


@pytest.mark.parametrize(
    "text",
    [
        PASSWD,  # was: 1.4 KB of it in the message
        f"a: !{SECRET} 1\n",  # PyYAML quotes the tag
        f"name: [{SECRET}\n",
        f"{SECRET}: 1\nname: x\n",  # a mapping, but no target file
        (REPO / "stretchc" / "targets" / "data" / "pixel6.yaml").read_text().replace("calibration: tensor-g1", f"calibration: {SECRET.lower()}"),
        (REPO / "stretchc" / "targets" / "data" / "pixel6.yaml").read_text().replace("statistic: mean", f"statistic: {SECRET}"),
        (REPO / "stretchc" / "targets" / "data" / "pixel6.yaml").read_text() + f"{SECRET}: 1\n",
        f"name: {SECRET}\x00\n",  # a character YAML refuses
    ],
    ids=["passwd", "tag", "flow", "mapping", "calibration", "enum", "extra-field", "nul"],
)
def test_target_file_errors_quote_no_contents(tmp_path: Path, capsys, text: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "t.yaml"
    path.write_text(text)
    rc, err = _cli(capsys, ["targets", "show", str(path)])
    _one_line_error(rc, err, "bad-target-file")
    assert SECRET not in err and SECRET.lower() not in err and len(err) < 400, err
    assert str(path) in err


def test_target_file_errors_from_a_config_and_a_reproducer_quote_no_contents(dumps: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "t.yaml"
    secret.write_text(PASSWD)
    (tmp_path / "stretchc.toml").write_text(f'target = "{secret}"\n')
    before = _listing(tmp_path)
    rc, err = _cli(capsys, ["compile", str(EXAMPLE), "-o", str(tmp_path / "b"), "--config", str(tmp_path / "stretchc.toml")])
    _one_line_error(rc, err, "bad-target-file")
    assert SECRET not in err and _listing(tmp_path) == before
    lines = (dumps / "02-after-find-branches.ir").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(LINE_KIND + " "))
    rep = json.loads(lines[at][len(LINE_KIND) + 1 :])
    rep["target"] = {"spec": str(secret), "sha256": "0" * 64}
    lines[at] = f"{LINE_KIND} {json.dumps(rep)}"
    (tmp_path / "d.ir").write_text("\n".join(lines) + "\n")
    rc, err = _cli(capsys, ["opt", str(tmp_path / "d.ir"), "--constants", str(dumps / "constants"), "--pipeline=padv2-to-pad"])
    _one_line_error(rc, err, "bad-target-file")
    assert SECRET not in err


# ---- item 11: opt and bisect check what each pass needs, as compile does ---------------------------------


@pytest.mark.parametrize(
    "dump, pipeline",
    [
        ("00-input.ir", "outline-partitions"),  # was: exit 70 ir-invalid from the pass
        ("00-input.ir", "quantize-partitions"),
        ("02-after-find-branches.ir", "padv2-to-pad,outline-partitions"),
        ("04-after-assign-delegates.ir", "insert-sync-points"),
    ],
)
def test_opt_pipeline_lacking_a_required_pass(dumps: Path, tmp_path: Path, capsys, dump: str, pipeline: str) -> None:  # type: ignore[no-untyped-def]
    rc, err = _cli(capsys, ["opt", str(dumps / dump), f"--pipeline={pipeline}", "-o", str(tmp_path / "out.ir")])
    _one_line_error(rc, err, "bad-pipeline")
    assert "earlier in the pipeline" in err and _listing(tmp_path) == {}


@pytest.mark.parametrize(
    "dump, pipeline, why",
    [
        ("08-after-insert-sync-points.ir", "quantize-partitions", "cannot run after insert-sync-points"),  # was: exit 70 ir-invalid
        ("06-after-outline-partitions.ir", "quantize-partitions,quantize-partitions", "cannot run after quantize-partitions (it runs once)"),
    ],
)
def test_opt_pipeline_running_a_pass_after_what_it_cannot_follow(dumps: Path, tmp_path: Path, capsys, dump: str, pipeline: str, why: str) -> None:  # type: ignore[no-untyped-def]
    rc, err = _cli(capsys, ["opt", str(dumps / dump), f"--pipeline={pipeline}", "-o", str(tmp_path / "out.ir")])
    _one_line_error(rc, err, "bad-pipeline")
    assert f"pass quantize-partitions {why}" in err and _listing(tmp_path) == {}


def test_opt_bundle_pipeline_lacking_a_required_pass_installs_nothing(dumps: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, err = _cli(capsys, ["opt", str(dumps / "02-after-find-branches.ir"), "--pipeline=emit-bundle", "--bundle", str(tmp_path / "b")])
    _one_line_error(rc, err, "bad-pipeline")
    assert "pass emit-bundle needs insert-sync-points" in err and _listing(tmp_path) == {}


def test_bisect_pipeline_lacking_a_required_pass(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    rc, err = _cli(capsys, ["bisect", str(EXAMPLE), "--pipeline=find-branches,outline-partitions"])
    _one_line_error(rc, err, "bad-pipeline")
    assert "pass outline-partitions needs assign-delegates" in err and _listing(tmp_path) == {}


def test_the_pass_manager_checks_requirements_against_the_run_it_is_part_of(dumps: Path) -> None:
    """Any runner gets the check: the context's pipeline says what was done before these passes."""
    from stretchc.irtext import parse_module

    module = parse_module((dumps / "00-input.ir").read_text(), constants=dumps / "constants")
    passes = parse_pipeline("find-branches,outline-partitions")
    with pytest.raises(StretchError) as info:
        PassManager(passes).run(module, PassContext(pipeline=passes))
    assert info.value.code == "bad-pipeline" and "outline-partitions needs assign-delegates" in info.value.message
    done = parse_pipeline("unshare-pads,find-branches")
    later = parse_pipeline("padv2-to-pad")
    PassManager(later).run(module, PassContext(pipeline=[*done, *later]))  # requirements met by what was done


# ---- item 16 for `run --output-dir`: run.json says which files a run wrote -----------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(bundle: Path, out: Path, seed: int) -> list[str]:
    return ["run", str(bundle), "--seed", str(seed), "--output-dir", str(out), "-q"]


def test_run_output_dir_can_be_written_again(example_bundle: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    for seed in (0, 1, 1):  # seed 1 gives other outputs: the first repeat replaces logits.npy, the second rewrites it
        rc, err = _cli(capsys, _run(example_bundle, out, seed))
        assert rc == 0, err
    record = json.loads((out / "run.json").read_text())
    assert (record["format"], record["bundle"], record["seed"], record["inputs"]) == ("stretchc-run", str(example_bundle.absolute()), 1, {})
    assert record["outputs"] == {"logits": "logits.npy"} and record["replacing"] == {}
    assert record["files"] == {"logits.npy": _sha256(out / "logits.npy")}
    assert sorted(p.name for p in out.iterdir()) == ["logits.npy", "run.json"]


def _user_array(path: Path) -> None:
    np.save(path, np.arange(10, dtype=np.float32))


@pytest.mark.parametrize(
    "case",
    [
        "users-npy",  # was: silently replaced
        "changed-since",  # run.json lists the file, but with the checksum of what the run wrote
        "record-removed",  # nothing says the file is a run's
        "foreign-record",
        "link-npy",  # was: written through the link, into the file it points to
        "dangling-link-npy",
        "link-record",
        "link-folder",
    ],
)
def test_run_never_replaces_a_users_file(example_bundle: Path, tmp_path: Path, capsys, case: str) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    out.mkdir()
    _user_array(tmp_path / "mine.npy")
    if case in ("changed-since", "record-removed"):
        assert main(_run(example_bundle, out, 0)) == 0
    if case in ("users-npy", "changed-since"):
        _user_array(out / "logits.npy")
    elif case == "record-removed":
        (out / "run.json").unlink()
    elif case == "foreign-record":
        (out / "run.json").write_text('{"files": {"logits.npy": "mine"}}\n')
        _user_array(out / "logits.npy")
    elif case == "link-npy":
        (out / "logits.npy").symlink_to(tmp_path / "mine.npy")
    elif case == "dangling-link-npy":
        (out / "logits.npy").symlink_to(tmp_path / "nowhere.npy")
    elif case == "link-record":
        (out / "run.json").symlink_to(tmp_path / "mine.npy")
    else:
        out.rmdir()
        (tmp_path / "real").mkdir()
        out.symlink_to(tmp_path / "real")
    before = _listing(tmp_path)
    rc, err = _cli(capsys, _run(example_bundle, out, 1))
    _one_line_error(rc, err, "output-exists")
    assert "symbolic link" in err if "link" in case else "refusing to replace it" in err
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("stop_at", [2, 3], ids=["before-the-outputs", "before-the-final-record"])
def test_a_stopped_run_leaves_a_folder_the_next_run_accepts(
    example_bundle: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, stop_at: int  # type: ignore[no-untyped-def]
) -> None:
    """The record is written first (new checksums, old ones under `replacing`), then the outputs, then the record
    again: a run stopped between any two writes leaves every file whole and listed."""
    out = tmp_path / "o"
    assert main(_run(example_bundle, out, 0)) == 0
    writes: list[Path] = []

    def stopping(data: bytes, path: Path) -> None:
        writes.append(path)
        if len(writes) == stop_at:
            raise StretchError("write-failed", "the disk is full", file=str(path))
        fileio.write_atomically(data, path)

    monkeypatch.setattr(run_command, "write_atomically", stopping)
    rc, err = _cli(capsys, _run(example_bundle, out, 1))
    _one_line_error(rc, err, "write-failed")
    assert json.loads((out / "run.json").read_text())["replacing"], "the run was stopped while it replaced logits.npy"
    monkeypatch.undo()
    rc, err = _cli(capsys, _run(example_bundle, out, 2))
    assert rc == 0, err
    assert json.loads((out / "run.json").read_text())["files"] == {"logits.npy": _sha256(out / "logits.npy")}


def test_runs_of_several_bundles_share_a_folder(example_bundle: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from onnx import TensorProto, helper

    from tests.core.test_user_errors import _save

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = _save(tmp_path, "neg", [helper.make_node("Neg", ["x"], ["y"])], [x], [y])
    assert main(["compile", str(model), "-o", str(tmp_path / "neg.stretch"), "-q"]) == 0
    out = tmp_path / "o"
    for bundle in (example_bundle, tmp_path / "neg.stretch", example_bundle):  # each keeps the other's file listed
        rc, err = _cli(capsys, _run(bundle, out, 0))
        assert rc == 0, err
    record = json.loads((out / "run.json").read_text())
    assert record["files"] == {name: _sha256(out / name) for name in ("logits.npy", "y.npy")}
    assert record["outputs"] == {"logits": "logits.npy"}


# ---- files are written atomically with the permissions the umask gives ---------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=oct)
def test_written_files_follow_the_umask(example_bundle: Path, tmp_path: Path, capsys, umask: int) -> None:  # type: ignore[no-untyped-def]
    saved = os.umask(umask)
    try:
        for args in (
            ["example", "-o", str(tmp_path / "m.onnx"), "-q"],  # was: 0600, the temporary file's mode
            ["build-model", str(CONFIG), "-o", str(tmp_path / "b.onnx"), "--image-size", "32", "-q"],
            ["run", str(example_bundle), "--seed", "0", "--output-dir", str(tmp_path / "o"), "-q"],
        ):
            rc, err = _cli(capsys, args)
            assert rc == 0, err
        (tmp_path / "r.json").write_text("{}")
        os.chmod(tmp_path / "r.json", 0o600)
        write_report({"placement": {}}, tmp_path / "r.json")  # replaced by a new file, not written into
    finally:
        os.umask(saved)
    written = [tmp_path / "m.onnx", tmp_path / "b.onnx", tmp_path / "o" / "logits.npy", tmp_path / "o" / "run.json", tmp_path / "r.json"]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == {p.name: oct(0o666 & ~umask) for p in written}
    assert json.loads((tmp_path / "r.json").read_text()) == {"placement": {}}
    assert not [p for p in tmp_path.rglob(".*")], "a temporary file was left behind"


def test_the_umask_is_read_without_changing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    saved = os.umask(0o027)
    try:
        assert fileio.current_umask() == 0o027
        monkeypatch.setattr(fileio, "STATUS", Path("/nonexistent/status"))  # a system without /proc: os.umask
        assert fileio.current_umask() == 0o027
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(saved)


# ---- verify --preprocess: checked as compile checks it ------------------------------------------------------


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--preprocess", "size=224,bogus"], "item 'bogus': expected KEY=VALUE"),  # was: never parsed, exit 0
        (["--preprocess", "mean=,std=1"], "mean"),
        (["--preprocess", "size=160"], "seeded random inputs are fed as they are"),  # was: ignored, exit 0
        (["--input", "input={x}", "--preprocess", "std=0.5"], "the --input arrays are fed as they are"),
        (["--input-dir", "{x}", "--preprocess", "std=0.5"], "is fed as it is"),  # as before (load_calibration_data's check)
    ],
    ids=["unparsed", "empty-mean", "seeded", "input-arrays", "input-dir-array"],
)
def test_verify_checks_preprocess(example_bundle: Path, tmp_path: Path, capsys, extra: list[str], says: str) -> None:  # type: ignore[no-untyped-def]
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 160, 160), np.float32))
    argv = ["verify", str(example_bundle), str(EXAMPLE), *(a.format(x=tmp_path / "x.npy") for a in extra)]
    rc, err = _cli(capsys, argv)
    _one_line_error(rc, err, "usage")
    assert "--preprocess" in err and says in err


# ---- the calibration-capped note is given once ----------------------------------------------------------------


@pytest.mark.parametrize("precision", ["int8", "float"])  # int8: calibration and the report read the data; float: the report only
@pytest.mark.slow  # the int8 case calibrates with TFLite (about 4 s)
def test_capped_calibration_note_is_given_once(tmp_path: Path, capsys, precision: str) -> None:  # type: ignore[no-untyped-def]
    from stretchc.digits.data import load_split
    from stretchc.quantize.calibration_data import MAX_SAMPLES

    images, labels = load_split("train")
    np.savez(tmp_path / "calib.npz", image=images[: MAX_SAMPLES + 1], labels=labels[: MAX_SAMPLES + 1])
    argv = ["compile", str(DIGITS), "-t", "pixel6", "--precision", precision, "--calib", str(tmp_path / "calib.npz")]
    rc, err = _cli(capsys, [*argv, "-o", str(tmp_path / "d.stretch"), "--report", str(tmp_path / "r.json")])
    assert rc == 0, err
    assert err.count("note[calibration-capped]") == 1, err  # was: twice with int8 (the report read the data again)
    assert json.loads((tmp_path / "r.json").read_text())["accuracy"]["samples"] == MAX_SAMPLES
