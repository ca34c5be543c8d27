"""Lower a validated ONNX model to a float32 TFLite flatbuffer with onnx2tf, in this process, offline.

Guarantees:
- no network: onnx2tf's sample-data download is replaced by locally generated data, and every socket
  connection attempt during the lowering raises (so a new download path in onnx2tf fails loudly instead
  of reaching out);
- the user's file is never opened for writing: onnx2tf works on a copy in a private scratch directory,
  which is removed afterwards, whatever happens;
- deterministic: onnx2tf seeds TensorFlow and enables op determinism; we simplify once, in-process;
- named: the TFLite tensor names carry tokens for the ONNX tensors they hold (`provenance.py`); onnx2tf
  reads a copy whose node names TensorFlow accepts (`tf_node_names`: exporters write names like
  `Softmax@0`, which TensorFlow refuses as op and scope names), so messages keep the model's own names;
- TFLite built-in ops only (no TensorFlow "Flex" ops: no runtime of ours links them);
- clean errors: what onnx2tf or the converter cannot do is one line naming the op and its node, never
  onnx2tf's colour-coded log; an onnxsim failure is a note, and the model is lowered unsimplified.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import socket
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx

from stretchc import errors, interrupts
from stretchc.console import get_console, native_output_to
from stretchc.frontend import lowering_errors, provenance

# Every option that changes the lowered bytes (part of the lowering cache key). "names": how ONNX tensor
# names travel through the lowering (stretchc/frontend/provenance.py).
LOWERING_OPTIONS = {
    "simplify": "onnxsim-inprocess",
    "converter": "from_concrete_functions",
    "ops": "builtins",
    "names": provenance.SCHEME,
}


# TensorFlow's rule for op names and root name scopes (`_VALID_OP_NAME_REGEX` in
# tensorflow/python/framework/ops.py); onnx2tf passes ONNX node names to both.
_TF_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*$")
_TF_UNSAFE = re.compile(r"[^A-Za-z0-9_.\\/>-]")


def tf_node_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with every node name TensorFlow refuses made acceptable.

    Each character outside TensorFlow's set becomes `_`, and a name that cannot start an op name gets the
    prefix `n`: `Softmax@0` -> `Softmax_0`, `_x` -> `n_x`. Deterministic (the name alone decides), and names
    TensorFlow accepts are left as they are, so the lowering of such models is unchanged. Names may
    coincide afterwards: ONNX node names need not be unique and TensorFlow makes scope names unique itself.
    Tensor names need no such care: node outputs carry provenance tokens by then, and graph inputs and
    initializers so named lower as they are.
    """
    safe_model = onnx.ModelProto()
    safe_model.CopyFrom(model)
    for node in safe_model.graph.node:
        if node.name and not _TF_NAME.match(node.name):
            safe = _TF_UNSAFE.sub("_", node.name)
            node.name = safe if _TF_NAME.match(safe) else f"n{safe}"
    return safe_model


class NetworkBlocked(OSError):
    """Raised when code running under `no_network()` tries to open a connection."""


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Make every outgoing connection and name lookup in this process fail while the block runs."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise NetworkBlocked("stretchc: network access is disabled during lowering")

    saved = (socket.socket.connect, socket.socket.connect_ex, socket.create_connection, socket.getaddrinfo)
    socket.socket.connect = refuse  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign,assignment]
    socket.create_connection = refuse  # type: ignore[assignment]
    socket.getaddrinfo = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.create_connection, socket.getaddrinfo = saved  # type: ignore[method-assign]


def _sample_images() -> np.ndarray:
    """Stands in for onnx2tf's downloaded sample images (only used for its internal self-check)."""
    return np.random.default_rng(0).uniform(0.0, 1.0, (20, 128, 128, 3)).astype(np.float32)


def _simplified(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str | None]:
    """onnxsim's simplification of the model, or the model itself and why onnxsim could not do it."""
    import onnxsim  # lazy: only a lowering needs it

    try:
        simplified, ok = onnxsim.simplify(model)
    except Exception as exc:  # onnxsim fails on some valid models; onnx2tf copes with unsimplified ones
        return model, f"{type(exc).__name__}: {errors.first_line(str(exc))}"
    return (simplified, None) if ok else (model, "its result did not check out")


def lower_to_tflite(model: onnx.ModelProto, *, file: str) -> bytes:
    """Convert a validated, canonical model to float32 TFLite bytes (see the module docstring).

    A failure of onnx2tf or of TensorFlow's converter is `unsupported-op`, naming the op and its node
    (stretchc/frontend/lowering_errors.py); an exception anywhere else is a bug in stretchc and propagates.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    scratch = Path(tempfile.mkdtemp(prefix="stretchc-lower-"))
    try:
        # What onnxsim, TensorFlow and onnx2tf write to the process's stdout/stderr (their imports included)
        # goes to logs in the scratch folder, never to the terminal; diagnostics are emitted outside.
        with native_output_to(scratch / "simplify.log"):
            simplified, skipped = _simplified(model)
        if skipped is not None:
            get_console().note("simplify-skipped", f"onnxsim could not simplify the model ({skipped}); lowering it as it is", file=file)
        work = scratch / "model.onnx"
        onnx.save(tf_node_names(provenance.name_tensors(model, simplified)), str(work))
        with native_output_to(scratch / "lowering.log"):
            tflite = _convert(work, scratch / "out", model, file)
        interrupts.raise_pending()  # onnx2tf's bare `except:` clauses can swallow a Ctrl-C or SIGTERM
        return tflite
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _convert(onnx_path: Path, out_dir: Path, model: onnx.ModelProto, file: str) -> bytes:
    # lazy: onnx2tf and TensorFlow take seconds to import; only a lowering (not a cache hit) needs them
    import onnx2tf
    import onnx2tf.onnx2tf as onnx2tf_impl
    import tensorflow as tf

    onnx2tf_impl.download_test_image_data = _sample_images
    # Keras numbers layer names per process (model, model_1, ...; tf.nn.convolution_5, ...) and those names
    # end up in the flatbuffer: start every lowering from a fresh session so a second lowering in the same
    # process gives the same bytes as the first (reproducible bundles, cache entries).
    _reset_keras_names()
    printed = io.StringIO()  # onnx2tf's own messages (print), for the error when it gives up with sys.exit
    with provenance.capture_layers() as captured:
        try:
            with no_network(), contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                keras_model = onnx2tf.convert(
                    input_onnx_file_path=str(onnx_path),
                    output_folder_path=str(out_dir),
                    not_use_onnxsim=True,
                    disable_model_save=True,
                    non_verbose=True,
                    verbosity="error",
                )
        except (Exception, SystemExit) as exc:  # onnx2tf gives up with any exception, or with sys.exit(1)
            interrupts.raise_pending()  # a Ctrl-C onnx2tf swallowed before failing is not its failure
            raise lowering_errors.onnx2tf_error(exc, printed.getvalue(), model, file=file) from None
    provenance.name_layers(captured)
    # The same conversion onnx2tf performs for its *_float32.tflite, without the SavedModel and float16 files.
    run_model = tf.function(
        func=lambda *inputs: keras_model(inputs),
        input_signature=[tf.TensorSpec(t.shape, t.dtype, t.name) for t in keras_model.inputs],
    )
    try:
        # No trackable object, exactly as onnx2tf does: passing the Keras model makes the converter go
        # through its saved-model path, which took 25x longer on a 25 M-parameter model (115 s vs 4.7 s).
        converter = tf.lite.TFLiteConverter.from_concrete_functions([run_model.get_concrete_function()])
        # TFLite's built-in kernels only: neither the phone runtime nor the host runtime links Flex ops.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return bytes(converter.convert())
    except Exception as exc:  # tracing onnx2tf's Keras model, or tensorflow.lite's ConverterError (MLIR errors)
        interrupts.raise_pending()
        raise lowering_errors.converter_error(exc, model, file=file) from None


def _reset_keras_names() -> None:
    import tensorflow as tf  # lazy: as in _convert

    tf.keras.backend.clear_session()
    try:
        import tf_keras  # lazy: as in _convert

        tf_keras.backend.clear_session()
    except ImportError:
        pass


def tool_versions() -> dict[str, str]:
    """Versions of everything that affects the lowering's output (for cache keys and the manifest)."""
    return {pkg: version(pkg) for pkg in ("onnx2tf", "tensorflow-cpu", "onnx", "onnxsim", "tf-keras")}
