"""The bundle validator: one table of rules (schemas/bundle_rules.json), every hostile case refused by its rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stretchc.bundle.manifest import load_manifest
from stretchc.bundle.validate import _CHECKS, rules
from stretchc.cli import main
from stretchc.errors import StretchError
from stretchc.ir import DTYPE_SIZES
from stretchc.schemas import schema_path

from tests.bundle.hostile import Case, build_case, cases

PY_CASES = [c for c in cases() if "python" in c.readers]


def test_every_rule_has_a_check_and_a_case() -> None:
    ids = [r.id for r in rules()]
    assert len(set(ids)) == len(ids)
    assert list(_CHECKS) == ids, "every rule needs a check, registered in table order"
    assert {c.rule for c in cases()} == set(ids), "every rule needs a hostile case"
    assert len({c.name for c in cases()}) == len(cases())


def test_schema_dtypes_and_version_are_the_compilers() -> None:
    from stretchc.bundle.format import FORMAT_VERSION

    schema = json.loads(schema_path("manifest.schema.json").read_text())
    assert set(schema["$defs"]["dtype"]["enum"]) == set(DTYPE_SIZES)
    assert schema["properties"]["format_version"]["const"] == FORMAT_VERSION


def test_untouched_bundle_is_accepted(example_bundle: Path) -> None:
    m = load_manifest(example_bundle)
    assert m["format"] == "stretchc-bundle"


@pytest.mark.parametrize("case", PY_CASES, ids=lambda c: c.name)
def test_hostile_case_refused_by_its_rule(example_bundle: Path, tmp_path: Path, case: Case) -> None:
    """The one bundle check refuses every case, those a runtime refuses when it loads the partitions too."""
    bundle = build_case(example_bundle, case, tmp_path / "b")
    with pytest.raises(StretchError) as info:
        load_manifest(bundle)
    assert info.value.code == "bad-bundle" and info.value.rule == case.rule, info.value.message
    assert info.value.message.startswith(f"[{case.rule}] ") and "\n" not in info.value.message


@pytest.mark.parametrize("command", ["inspect", "run"])
def test_cli_refuses_with_one_line_naming_the_rule(example_bundle: Path, tmp_path: Path, capsys, command: str) -> None:  # type: ignore[no-untyped-def]
    case = next(c for c in cases() if c.name == "overlap-live")
    bundle = build_case(example_bundle, case, tmp_path / "b")
    args = [command, str(bundle)] + (["--seed", "0"] if command == "run" else [])
    capsys.readouterr()
    assert main(args) == 3
    err = capsys.readouterr().err
    assert err.startswith("error[bad-bundle]: ") and "[slot-overlap]" in err and err.count("\n") == 1
    capsys.readouterr()
    assert main([*args, "--diagnostics=json"]) == 3
    diag = json.loads(capsys.readouterr().err)
    assert diag["rule"] == "slot-overlap" and diag["code"] == "bad-bundle"


def test_cpp_loader_checks_every_rule() -> None:
    from stretchc.bundle.codegen.rules import rule_enum

    from tests.conftest import REPO

    cc = (REPO / "android_runtime" / "src" / "bundle.cc").read_text()
    for r in rules():
        assert f"Rule::{rule_enum(r.id)}" in cc, r.id
