"""Legacy asymmetric uint8 form of a quantized partition (`quantize-hexagon{dtype=uint8}`).

The Hexagon delegate also runs the older all-uint8 models (legacy quantization-aware training). TFLite's
calibrator writes int8; a per-tensor int8 model becomes the equivalent uint8 model by shifting every int8
tensor by 128: type UINT8, zero point + 128, constant data + 128 (the represented real values are unchanged,
so the numerics are the same). int32 biases keep their scale (input scale x weight scale) and values.
Per-axis tensors are refused: TFLite's uint8 kernels are per-tensor only.
"""

from __future__ import annotations

import numpy as np

from stretchc.errors import StretchError
from stretchc.ir import QuantParams
from stretchc.tflite_io import emit_model, import_model


def int8_to_uint8(buf: bytes, *, partition: str) -> bytes:
    """The uint8 twin of the per-tensor int8 TFLite model `buf` (see the module docstring)."""
    graph = import_model(buf)
    for v in graph.values():
        if v.dtype != "int8":
            continue
        if v.quant is None or v.quant.per_axis:
            raise StretchError(
                "ineligible-op", f"partition {partition}: tensor {v.name} is not per-tensor quantized; uint8 needs per-tensor weights", branch=partition
            )
        v.dtype = "uint8"
        v.quant = QuantParams(scale=v.quant.scale, zero_point=tuple(z + 128 for z in v.quant.zero_point), axis=v.quant.axis)
        if v.data is not None:
            v.data = (v.data.astype(np.int16) + 128).astype(np.uint8)
    return emit_model(graph.nodes, graph.inputs, graph.outputs, description=f"stretchc partition {partition} (uint8)")
