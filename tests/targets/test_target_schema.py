"""The target and calibration schemas are composed from the backends; the committed files are what that composes."""

from __future__ import annotations

import pytest

from stretchc.backends import backends
from stretchc.schemas import schema_path
from stretchc.targets.schema import GENERATED, render, target_schema


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_committed_schema_is_generated(name: str) -> None:
    assert schema_path(name).read_text() == render(name), f"schemas/{name} is stale: run scripts/gen_target_schemas.py"


def test_every_backend_brings_its_section_limits_and_protocol_key() -> None:
    schema = target_schema()
    for b in backends():
        assert schema["properties"][b.name] == b.section_schema
        assert set(b.limit_keys) <= set(schema["properties"]["delegate_limits"]["properties"])
        if b.protocol_key is not None:
            assert b.protocol_key.key in schema["properties"]["protocol"]["required"]
