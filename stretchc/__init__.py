"""stretchc: a pass-based compiler of branched ONNX models into parallel multi-processor bundles.

The Python API (stretchc/api/, docs/api.md): `stretchc.compile`, `stretchc.Bundle`, `stretchc.list_targets`,
imported on first use so that `import stretchc` (and the command line) stays light.
"""

from typing import Any

from stretchc.errors import StretchError  # noqa: F401  (stretchc.StretchError)
from stretchc.version import __version__  # noqa: F401  (stretchc.__version__)

_API = (
    "Alternative", "BackendInfo", "Bundle", "CompiledBundle", "Debug", "Options", "PartitionInfo", "RegionInfo", "Report", "TargetInfo",
    "TimelineEntry", "compile", "get_target", "list_targets",
)


def __getattr__(name: str) -> Any:
    if name in _API:
        from stretchc import api  # lazy: the API imports the whole compiler; `import stretchc` stays light

        return getattr(api, name)
    raise AttributeError(f"module 'stretchc' has no attribute {name!r}")
