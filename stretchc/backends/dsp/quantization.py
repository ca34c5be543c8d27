"""The Hexagon delegate's quantization rules, applied by quantize-partitions to DSP partitions only through the DSP
backend (`stretchc.backends.dsp`, this module's package: `Backend.quantization`; the project's sourced facts,
../shared/facts/tflite-delegates.md §1.5).

- Weights (`weights`): CONV_2D / DEPTHWISE_CONV_2D per channel, FULLY_CONNECTED per tensor (the delegate reads
  scale[0] of FC weights only); all per tensor when a conv's channel-scale spread exceeds 1024x (the delegate
  clamps relative scales at 1/1024: `spreads`), and for the uint8 form.
- The legacy asymmetric uint8 form (`--hexagon-dtype uint8`): the per-tensor int8 partition with every int8
  tensor shifted by 128 (type UINT8, zero point + 128, constants + 128; the represented reals, and so the
  numbers, are unchanged; int32 biases keep their values). Activations take their uint8 forms
  (`stretchc.quantize.rewrite.Forms`); `to_uint8` converts the constants. Per-axis tensors are refused: TFLite's
  uint8 kernels are per tensor only.
- quantize-partitions re-checks every quantized op against the delegate's rules, op versions included.
"""

from __future__ import annotations

import numpy as np

from stretchc.errors import StretchError
from stretchc.ir import Node, QuantParams, Value

MAX_SCALE_SPREAD = 1024.0  # kHexagonMinRelativeScale = 1/1024
DTYPES = ("int8", "uint8")


def weights(dtype: str, *, per_tensor: bool = False) -> str:
    """How a DSP partition's weights are quantized (a `stretchc.quantize.calibrate.WEIGHTS` value)."""
    return "per-tensor" if per_tensor or dtype == "uint8" else "per-channel-conv"


def spreads(nodes: list[Node]) -> list[tuple[str, float]]:
    """(op, max/min channel scale) of every per-channel conv weight among `nodes` above MAX_SCALE_SPREAD."""
    out = []
    for n in nodes:
        w = n.inputs[1] if n.kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(n.inputs) > 1 else None
        if w is not None and w.quant is not None and w.quant.per_axis:
            scales = np.array(w.quant.scale, dtype=np.float64)
            nz = scales[scales > 0]
            spread = float(nz.max() / nz.min()) if nz.size else 1.0
            if spread > MAX_SCALE_SPREAD:
                out.append((n.loc or n.name, spread))
    return out


def to_uint8(nodes: list[Node], *, partition: str) -> None:
    """Replace the int8 constants of `nodes` by their uint8 twins (see the module docstring)."""
    twins: dict[int, Value] = {}
    for n in nodes:
        for i, v in enumerate(n.inputs):
            if v is None or not v.is_const or v.dtype != "int8":
                continue
            if v.quant is None or v.quant.per_axis:
                raise StretchError(
                    "ineligible-op", f"partition {partition}: tensor {v.name} is not per-tensor quantized; uint8 needs per-tensor weights", branch=partition
                )
            if id(v) not in twins:
                q = QuantParams(scale=v.quant.scale, zero_point=tuple(z + 128 for z in v.quant.zero_point), axis=v.quant.axis)
                data = (v.data.astype(np.int16) + 128).astype(np.uint8)  # type: ignore[union-attr]
                twins[id(v)] = Value(f"{v.name}.u8", v.shape, "uint8", quant=q, data=data)
            n.set_input(i, twins[id(v)])

