"""Load and validate the user's ONNX model before any lowering work.

`load_model(path, input_shapes)` returns a checked `onnx.ModelProto` with static input shapes, or raises a
StretchError naming the problem: missing file, not ONNX, checker failure, opset out of range, dynamic
dimension, op the lowering cannot handle. The user's file is only read.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from stretchc.console import get_console
from stretchc.errors import StretchError

# onnx2tf 1.28 handles these default-domain opsets (its README: opset 11-20 tested; lower ones mostly work).
MIN_OPSET, MAX_OPSET = 9, 21


def parse_input_shapes(specs: list[str]) -> dict[str, list[int]]:
    """Parse `--input-shape NAME=1,3,224,224` options."""
    shapes: dict[str, list[int]] = {}
    for spec in specs:
        name, eq, dims = spec.partition("=")
        try:
            values = [int(d) for d in dims.split(",")]
            if not eq or not name or any(d <= 0 for d in values):
                raise ValueError
        except ValueError:
            raise StretchError("usage", f"--input-shape {spec!r}: expected NAME=D0,D1,... with positive sizes") from None
        shapes[name] = values
    return shapes


@lru_cache(maxsize=1)
def _lowerable_ops() -> frozenset[str]:
    """The ONNX ops onnx2tf can convert: one module per op in its `ops` package.

    Read from the file listing: importing `onnx2tf.ops` would import onnx2tf, and with it TensorFlow
    (3+ s), which a compile whose lowering comes from the cache never needs.
    """
    spec = importlib.util.find_spec("onnx2tf")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        raise StretchError("internal", "onnx2tf is not installed")
    ops_dir = Path(next(iter(spec.submodule_search_locations))) / "ops"
    return frozenset(p.stem for p in ops_dir.glob("*.py") if not p.stem.startswith("_"))


def _is_supported(op_type: str, domain: str) -> bool:
    return domain in ("", "ai.onnx") and op_type in _lowerable_ops()


def load_model(path: str | Path, input_shapes: dict[str, list[int]] | None = None) -> onnx.ModelProto:
    """Read, check and make static the ONNX model at `path` (see module docstring)."""
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise StretchError("file-not-found", "model file does not exist", file=file)
    try:
        data = path.read_bytes()
        model = onnx.load_model_from_string(data)
    except (DecodeError, RuntimeWarning, ValueError, UnicodeDecodeError) as exc:
        raise StretchError("not-onnx", f"not an ONNX model (cannot parse: {type(exc).__name__})", file=file) from None
    except OSError as exc:
        raise StretchError("file-not-found", f"cannot read model: {exc.strerror}", file=file) from None
    if not model.graph.node and not model.graph.output:
        raise StretchError("not-onnx", "not an ONNX model (no graph)", file=file)
    if any(t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        onnx.load_external_data_for_model(model, str(path.parent))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or not MIN_OPSET <= opset <= MAX_OPSET:
        raise StretchError("unsupported-opset", f"opset {opset} is outside the supported range {MIN_OPSET}-{MAX_OPSET}", file=file)
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StretchError("invalid-model", f"the ONNX checker rejects the model: {first}", file=file) from None
    for node in model.graph.node:
        if not _is_supported(node.op_type, node.domain):
            dom = f" (domain {node.domain})" if node.domain else ""
            raise StretchError(
                "unsupported-op",
                f"op {node.op_type}{dom} of node {node.name or node.output[0]!r} cannot be lowered to TFLite",
                file=file,
                node=node.name or node.output[0],
            )
    _make_static(model, input_shapes or {}, file)
    return model


def _make_static(model: onnx.ModelProto, overrides: dict[str, list[int]], file: str) -> None:
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    names = {i.name for i in inputs}
    for name in overrides:
        if name not in names:
            raise StretchError("usage", f"--input-shape names {name!r}, but the model's inputs are {', '.join(sorted(names))}", file=file)
    console = get_console()
    for inp in inputs:
        dims = inp.type.tensor_type.shape.dim
        if inp.name in overrides:
            shape = overrides[inp.name]
            if len(shape) != len(dims):
                raise StretchError("usage", f"--input-shape {inp.name}: rank {len(shape)}, but the input has rank {len(dims)}", file=file)
            for d, value in zip(dims, shape):
                if d.HasField("dim_value") and d.dim_value != value:
                    raise StretchError(
                        "usage", f"--input-shape {inp.name}: size {value} contradicts the model's static size {d.dim_value}", file=file
                    )
                d.ClearField("dim_param")
                d.dim_value = value
            continue
        for axis, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            label = d.dim_param or "?"
            if axis == 0:
                d.ClearField("dim_param")
                d.dim_value = 1
                console.note("batch-set-to-1", f"input {inp.name}: dynamic batch dimension {label!r} set to 1", file=file)
                continue
            example = ",".join(str(x.dim_value) if x.dim_value > 0 else "N" for x in dims)
            raise StretchError(
                "dynamic-shape",
                f"input {inp.name}: dimension {axis} ({label!r}) is dynamic; give it with --input-shape {inp.name}={example}",
                file=file,
            )
    # Re-infer so every intermediate shape is static for the lowering.
    del model.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    model.CopyFrom(inferred)
