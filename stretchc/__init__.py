"""stretchc: a pass-based compiler of branched ONNX models into parallel multi-processor bundles.

The Python API (stretchc/api.py, docs/api.md): `stretchc.compile`, `stretchc.Bundle`, `stretchc.list_targets`,
imported on first use so that `import stretchc` (and the command line) stays light.
"""

from typing import Any

__version__ = "0.1.0"

_API = ("Bundle", "PartitionInfo", "Report", "TargetInfo", "compile", "list_targets")


def __getattr__(name: str) -> Any:
    if name in _API:
        from stretchc import api

        return getattr(api, name)
    if name == "StretchError":
        from stretchc.errors import StretchError

        return StretchError
    raise AttributeError(f"module 'stretchc' has no attribute {name!r}")
