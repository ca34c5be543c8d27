"""Build NN-Stretch multi-branch models (mbm-pycls `mbanynet`) as ONNX from their YAML configurations.

Public API:
- `load_config(path, strict=False) -> Config`: read and validate a configuration (StretchError "bad-config" /
  "file-not-found" otherwise); inconsistencies the prototype tolerated are built its way, noted in `notes`.
- `as_timed(config) -> Config`: the layers of the prototype's Keras model, the one its latencies were timed on.
- `build_model(config, image_size=224, seed=0) -> onnx.ModelProto`: the network with seeded random weights,
  opset 13, input `input` [1,3,H,W], output `logits` [1,NUM_CLASSES], placement recorded in metadata.
- `complexity(config, image_size=224) -> {"flops", "params", "acts"}`: counted as pycls counts them.
- `placement_from_model(model) -> dict[str, str] | None`: the `stretchc.placement` metadata read back.
"""

from __future__ import annotations

import onnx

from stretchc.backends import processors
from stretchc.errors import StretchError
from stretchc.modelbuild.complexity import complexity
from stretchc.modelbuild.config import Branch, Config, Stage, as_timed, load_config, make_divisible
from stretchc.modelbuild.onnx_builder import build_model, placement_regions

PLACEMENT_KEY = "stretchc.placement"

__all__ = [
    "as_timed",
    "Branch",
    "Config",
    "Stage",
    "build_model",
    "complexity",
    "load_config",
    "make_divisible",
    "placement_from_model",
    "placement_regions",
    "PLACEMENT_KEY",
]


def placement_from_model(model: onnx.ModelProto) -> dict[str, str] | None:
    """Return the region -> processor map stored under `stretchc.placement`, or None if the model has none.

    The value is `REGION=PROC,REGION=PROC,...` (order kept). A malformed value (an entry without `=`, an empty
    region, a processor stretchc does not know, a region given twice) raises StretchError("invalid-model").
    """
    value = next((p.value for p in model.metadata_props if p.key == PLACEMENT_KEY), None)
    if value is None:
        return None
    out: dict[str, str] = {}
    for entry in value.split(","):
        region, sep, proc = (part.strip() for part in entry.partition("="))
        if not sep or not region or proc not in processors() or region in out:
            raise StretchError("invalid-model", f"malformed {PLACEMENT_KEY} metadata {value!r} (at {entry!r})")
        out[region] = proc
    if not out:
        raise StretchError("invalid-model", f"empty {PLACEMENT_KEY} metadata")
    return out
