"""Creating LiteRT interpreters quietly.

LiteRT logs delegate creation ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.") straight to the
process's stderr, which would break `--diagnostics=json` (one JSON object per line) and clutter `-q`. Every
interpreter stretchc itself creates goes through `load_interpreter`, which keeps that output off the terminal.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from stretchc.console import native_output_to


def load_interpreter(*, model_path: str | None = None, model_content: bytes | None = None, num_threads: int = 1) -> Any:
    """An allocated `ai_edge_litert` Interpreter; raises what the Interpreter raises (ValueError, RuntimeError)."""
    from ai_edge_litert.interpreter import Interpreter  # lazy: LiteRT's native library, loaded when a model runs

    with tempfile.TemporaryDirectory() as tmp, native_output_to(Path(tmp) / "litert.log"):
        it = Interpreter(model_path=model_path, model_content=model_content, num_threads=num_threads)
        it.allocate_tensors()
    return it
