"""Helpers for the model-builder tests: small configurations written as YAML files, and the write_cfg fixture."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

CONFIGS = Path(__file__).parent / "configs"
PROTOTYPE = CONFIGS / "prototype"

# A narrow two-stage ResNet-ish configuration; tests copy and modify it.
BASE: dict[str, Any] = {
    "MODEL": {"TYPE": "mbanynet", "NUM_CLASSES": 10},
    "ANYNET": {
        "STEM_TYPE": "res_stem_in",
        "STEM_W": 8,
        "STEM_K": 7,
        "BLOCK_TYPE": "res_basic_block",
        "STRIDES": [[1, 1], [2, 2]],
        "DEPTHS": [[1, 2], [2, 1]],
        "WIDTHS": [[8, 8], [16, 8]],
        "BOT_MULS": [1, 1],
        "GROUP_WS": [[8, 8], [16, 8]],
        "DEVICES": ["cpu", "dsp"],
        "ORIGINAL_WIDTHS": [16, 24],
    },
}


def variant(**anynet: Any) -> dict[str, Any]:
    """BASE with ANYNET keys replaced (a value of None deletes the key); MODEL keys via MODEL={...}."""
    cfg = copy.deepcopy(BASE)
    model = anynet.pop("MODEL", None)
    if model:
        cfg["MODEL"].update(model)
    for k, v in anynet.items():
        if v is None:
            cfg["ANYNET"].pop(k, None)
        else:
            cfg["ANYNET"][k] = v
    return cfg


@pytest.fixture
def write_cfg(tmp_path: Path) -> Callable[..., Path]:
    """write_cfg(dict_or_text, name="cfg") -> path of a YAML file in tmp_path."""

    def _write(content: dict[str, Any] | str, name: str = "cfg") -> Path:
        path = tmp_path / f"{name}.yaml"
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return _write
