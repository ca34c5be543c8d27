"""Load and validate the user's ONNX model before any lowering work.

`load_model(path, input_shapes)` returns a checked `onnx.ModelProto` with static input shapes, or raises a
StretchError naming the problem: missing file, not ONNX, checker failure, an opset the pinned onnx package
does not define, dynamic dimension. The user's file is only read.

`check_lowerable(model)` runs after canonicalization (stretchc/frontend/canonicalize) and refuses an empty
model input or output, and an op the lowering (onnx2tf) has no converter for, naming the op and its node.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Collection

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from stretchc.console import get_console
from stretchc.errors import StretchError

# Every default-domain opset the pinned onnx package defines is accepted; canonicalization converts the
# ones outside the lowering's range (LOWERING_OPSETS in canonicalize/convert_opset.py) with onnx's own
# version converter.
MIN_OPSET = 1
MAX_OPSET = onnx.defs.onnx_opset_version()


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


def default_opset(model: onnx.ModelProto) -> int | None:
    """The model's default-domain (ai.onnx) opset version, or None when it imports none."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def load_model(
    path: str | Path,
    input_shapes: dict[str, list[int]] | None = None,
    *,
    const_inputs: Collection[str] = (),
    compiled_shapes: dict[str, list[int]] | None = None,
) -> onnx.ModelProto:
    """Read, check and make static the ONNX model at `path` (see module docstring).

    Inputs named in `const_inputs` keep their shapes as they are: their values come at compile time
    (`--const-input`) and fix their shapes then. `compiled_shapes` (a bundle's input shapes, ONNX layout) gives
    the dynamic dimensions the size the bundle was compiled for, so that a model compiled with `--input-shape`
    is read back at that shape (verify, accuracy); a static dimension it contradicts is `bad-bundle`.
    """
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
        _load_external_data(model, path)
    opset = default_opset(model)
    if opset is None:
        raise StretchError("unsupported-opset", "the model imports no default-domain (ai.onnx) opset", file=file)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise StretchError(
            "unsupported-opset",
            f"opset {opset} is outside the range this stretchc accepts ({MIN_OPSET}-{MAX_OPSET}, the newest onnx {onnx.__version__} defines)",
            file=file,
        )
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError) as exc:  # ValueError: an unknown data type
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StretchError("invalid-model", f"the ONNX checker rejects the model: {first}", file=file) from None
    except UnicodeDecodeError:  # the checker's message quotes a name that is not UTF-8
        raise StretchError("invalid-model", "the ONNX checker rejects the model: a name or string is not valid UTF-8", file=file) from None
    _check_io_names(model, file)
    _make_static(model, input_shapes or {}, set(const_inputs), file, compiled_shapes or {})
    _check_constant_gather_indices(model, file)
    return model


def node_label(node: onnx.NodeProto) -> str:
    """How messages name a node: its name, or its first output when it has none."""
    return node.name or (node.output[0] if node.output else node.op_type)


def check_lowerable(model: onnx.ModelProto, *, file: str) -> None:
    """Refuse (after canonicalization) an empty model input or output, or the first op onnx2tf has no
    converter for, naming it and its node."""
    producers = {o: n for n in model.graph.node for o in n.output}
    for kind, vi in [*(("input", i) for i in model.graph.input), *(("output", o) for o in model.graph.output)]:
        dims = vi.type.tensor_type.shape.dim
        if any(d.HasField("dim_value") and d.dim_value == 0 for d in dims):
            node = producers.get(vi.name)
            where = f" (computed by op {node.op_type} of node {node_label(node)!r})" if node is not None else ""
            shape = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]
            raise StretchError("unsupported-op", f"{kind} {vi.name!r}{where} has no elements (shape {shape}): TFLite tensors cannot be empty", file=file)
    for node in model.graph.node:
        if not _is_supported(node.op_type, node.domain):
            dom = f" (domain {node.domain})" if node.domain else ""
            raise StretchError(
                "unsupported-op",
                f"op {node.op_type}{dom} of node {node_label(node)!r} cannot be lowered to TFLite",
                file=file,
                node=node_label(node),
            )


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Read the initializers stored next to the model; a missing or unreadable file is the user's to fix."""
    for t in model.graph.initializer:
        location = next((e.value for e in t.external_data if e.key == "location"), None)
        if location and not Path(location).is_absolute() and ".." not in Path(location).parts and not (path.parent / location).exists():
            raise StretchError("file-not-found", f"external data file {location} of initializer {t.name!r} does not exist", file=str(path))
    try:
        onnx.load_external_data_for_model(model, str(path.parent))
    except FileNotFoundError as exc:
        raise StretchError("file-not-found", f"external data file {Path(exc.filename or '?').name} does not exist", file=str(path)) from None
    except OSError as exc:
        raise StretchError("file-not-found", f"cannot read external data {exc.filename or ''}: {exc.strerror or exc}", file=str(path)) from None
    except (onnx.checker.ValidationError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StretchError("invalid-model", f"external data: {first}", file=str(path)) from None


def _check_io_names(model: onnx.ModelProto, file: str) -> None:
    if not model.graph.output:
        raise StretchError("invalid-model", "the model has no outputs", file=file)
    for what, infos in (("input", model.graph.input), ("output", model.graph.output)):
        for vi in infos:
            if not vi.name or any(ord(c) < 0x20 or c == "\x7f" for c in vi.name):
                raise StretchError("invalid-model", f"model {what} name {vi.name!r} is empty or contains a control character", file=file)


def _constant(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    for t in model.graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output and n.output[0] == name:
            for a in n.attribute:
                if a.name == "value" and a.HasField("t"):
                    return numpy_helper.to_array(a.t)
    return None


def _check_constant_gather_indices(model: onnx.ModelProto, file: str) -> None:
    """Constant Gather indices lie in [-size, size) of the gathered axis (negative ones count from the end).

    ONNX leaves out-of-range indices undefined; TFLite's kernel fails on them at run time, so they are
    refused here, naming the node.
    """
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in [*model.graph.input, *model.graph.value_info]}
    shapes.update({t.name: list(t.dims) for t in model.graph.initializer})
    for node in model.graph.node:
        if node.op_type != "Gather" or len(node.input) < 2 or node.input[0] not in shapes:
            continue
        indices = _constant(model, node.input[1])
        data_shape = shapes[node.input[0]]
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if indices is None or not -len(data_shape) <= axis < len(data_shape) or data_shape[axis] <= 0 or indices.size == 0:
            continue
        size = data_shape[axis]
        bad = indices[(indices < -size) | (indices >= size)]
        if bad.size:
            where = node.name or node.output[0]
            raise StretchError(
                "invalid-model",
                f"Gather node {where!r}: index {int(bad.flat[0])} is out of range for axis {axis} of size {size} (valid: {-size} to {size - 1})",
                file=file,
                node=where,
            )


def _static(d: onnx.TensorShapeProto.Dimension) -> bool:
    """Whether a dimension has a size: a dim_value >= 0. A negative one (older exporters write -1), a dim_param
    (named) and neither (unnamed) are all dynamic."""
    return d.HasField("dim_value") and d.dim_value >= 0


def _set_shape(dims: Any, shape: list[int], refuse: Callable[[str], StretchError]) -> None:
    """Give every dimension of `dims` its size in `shape`; `refuse(why)` is raised for another rank or a static
    size `shape` contradicts."""
    if len(shape) != len(dims):
        raise refuse(f"rank {len(shape)}, but the input has rank {len(dims)}")
    for d, value in zip(dims, shape):
        if _static(d) and d.dim_value != value:
            raise refuse(f"size {value} contradicts the model's static size {d.dim_value}")
        d.ClearField("dim_param")
        d.dim_value = value


def _make_static(model: onnx.ModelProto, overrides: dict[str, list[int]], constants: set[str], file: str, compiled: dict[str, list[int]]) -> None:
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits and i.name not in constants]
    names = {i.name for i in inputs}
    for name in overrides:
        if name not in names:
            raise StretchError("usage", f"--input-shape names {name!r}, but the model's inputs are {', '.join(sorted(names))}", file=file)
    console = get_console()
    for inp in inputs:
        dims = inp.type.tensor_type.shape.dim
        if inp.name in compiled:
            shape = compiled[inp.name]
            _set_shape(dims, shape, lambda why: StretchError("bad-bundle", f"the bundle's input {inp.name} has shape {list(shape)}: {why}", file=file))
            continue
        if inp.name in overrides:
            _set_shape(dims, overrides[inp.name], lambda why: StretchError("usage", f"--input-shape {inp.name}: {why}", file=file))
            continue
        for axis, d in enumerate(dims):
            if _static(d):  # 0 included (an empty tensor, refused by check_lowerable)
                continue
            label = d.dim_param or ("?" if not d.HasField("dim_value") else str(d.dim_value))
            if axis == 0:
                d.ClearField("dim_param")
                d.dim_value = 1
                console.note("batch-set-to-1", f"input {inp.name}: dynamic batch dimension {label!r} set to 1", file=file)
                continue
            example = ",".join(str(x.dim_value) if _static(x) else "N" for x in dims)
            raise StretchError(
                "dynamic-shape",
                f"input {inp.name}: dimension {axis} ({label!r}) is dynamic; give it with --input-shape {inp.name}={example}",
                file=file,
            )
    # Re-infer so every intermediate shape is static for the lowering. An output dimension declared -1 is
    # dynamic like an input's; inference never overwrites a declared dim_value, so it is cleared for it to fill.
    for out in model.graph.output:
        for d in out.type.tensor_type.shape.dim:
            if not _static(d) and d.HasField("dim_value"):
                d.ClearField("dim_value")
    del model.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    model.CopyFrom(inferred)
