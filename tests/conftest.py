"""Shared fixtures: models built with stretchc's own code, and a compile helper."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def save_model(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a ModelProto into tmp_path and return the path."""

    def save(model: onnx.ModelProto, name: str = "model.onnx") -> Path:
        path = tmp_path / name
        onnx.save(model, str(path))
        return path

    return save
