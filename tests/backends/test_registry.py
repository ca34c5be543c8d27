"""The backend registry: one module or package per processor kind, and generic code that never spells a processor."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest

from stretchc.backends import backend, backends, fallback, processors
from stretchc.targets import known_targets, load_target

ROOT = Path(__file__).resolve().parents[2]
# The code the backends own (each backend's module or package, the DSP's with its Hexagon op and quantization rules).
OWNED = ("stretchc/backends/",)


def test_registry_lists_each_processor_once_with_one_fallback() -> None:
    found = backends()
    assert [b.name for b in found] == list(processors()) and len(set(processors())) == len(found)
    assert len({b.delegate for b in found}) == len(found)
    assert [b.order for b in found] == sorted(b.order for b in found)
    assert sum(b.fallback for b in found) == 1 and fallback().fallback
    with pytest.raises(KeyError):
        backend("abacus")


@pytest.mark.parametrize("name", [b.name for b in backends()])
def test_a_backends_target_section_schema_is_a_schema_every_target_keeps(name: str) -> None:
    b = backend(name)
    jsonschema.Draft202012Validator.check_schema(b.section_schema)
    for t in known_targets():
        raw = load_target(t).raw
        if name in raw:
            jsonschema.Draft202012Validator(b.section_schema).validate(raw[name])
        else:
            assert not b.section_required, f"{t} has no {name} section"


def test_generic_code_never_spells_a_processor() -> None:
    """The acceptance grep of the backends issue, as a test: a processor's name as a string literal appears only in
    the code its backend owns (comments and docstrings may name processors)."""
    literal = re.compile(r"""(["'])(%s)\1""" % "|".join(map(re.escape, processors())))
    hits = []
    for path in sorted([*ROOT.glob("stretchc/**/*.py"), *ROOT.glob("passes/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(OWNED) or "/fbs/" in rel:
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if literal.search(code):
                hits.append(f"{rel}:{i}: {line.strip()}")
    assert not hits, "processor literals outside their backends:\n" + "\n".join(hits)


def test_every_registered_backend_keeps_the_contract() -> None:
    from stretchc.backends import contract_problems

    assert {b.name: contract_problems(b) for b in backends()} == {b.name: [] for b in backends()}


def test_a_backend_breaking_the_contract_is_refused_when_it_registers() -> None:
    from stretchc.backends import register_backend
    from stretchc.backends.base import Backend

    class Partial(Backend):  # no label, delegate, precisions, cost model ...
        name = "partial"
        order = 9

    class Misnamed(type(backends()[1])):  # a complete backend under a bad name, with a bad dispatch cost
        name = "Big Core"
        dispatch_ms = -1.0

    with pytest.raises(TypeError) as partial:
        register_backend(Partial())
    for missing in ("no label", "no delegate", "no PRECISIONS", "no dispatch_ms", "execution() not defined", "peak_gops() not defined"):
        assert missing in str(partial.value)
    with pytest.raises(TypeError) as misnamed:
        register_backend(Misnamed())
    assert "name 'Big Core' is not a lower-case identifier" in str(misnamed.value) and "dispatch_ms -1.0" in str(misnamed.value)
    backends.cache_clear()  # listed again from the registry: nothing was registered
    assert [b.name for b in backends()] == ["cpu", "gpu", "dsp", "npu"]
    with pytest.raises(ValueError, match="taken"):
        register_backend(type(backends()[0])())
