"""TFLite's native steps in a child process, so that a crash in them is an error, not the end of the compile.

TFLite's calibrator, its quantizer and its interpreters are C++ that can die on data they do not expect (a
segmentation fault on an infinite calibration value, an abort in a delegate). Run in the compiler's own
process, such a crash kills the compile with a signal: no error line, the staging folder left behind.
`NativeProcess` runs them in a child Python process (`python -m stretchc.native`) that speaks pickled
requests over its stdin and stdout:

- `calibrate(model, samples)`: TFLite's calibrator over the samples, the calibrated model's bytes;
- `quantize(calibrated, per_channel=, per_channel_dense=)`: TFLite's full-integer quantizer;
- `invoke(key, model, feeds, outputs)`: an interpreter of `model` (kept in the child under `key`) run on
  every feed (input name -> array), the named outputs of each; `drop(prefix)` releases interpreters.

A request whose native code raises is `NativeError` (`crashed` false); a request during which the child dies
is `NativeError` with `crashed` true and the signal in its message, and the next request starts a new child
(interpreters are created again from the models the parent keeps). The child's own stdout and stderr (where
TFLite logs) go to a log file the parent removes, and the child ignores SIGINT: Ctrl-C reaches the compiler,
which stops the child when it closes the `NativeProcess`. Nothing outlives the `with` block.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
from types import TracebackType
from typing import IO, Any, Callable

import numpy as np

Feed = dict[str, np.ndarray]


class NativeError(Exception):
    """A native step failed (`crashed` false: it raised) or killed the child process (`crashed` true)."""

    def __init__(self, message: str, *, crashed: bool) -> None:
        super().__init__(message)
        self.crashed = crashed


class NativeProcess:
    """A child process for TFLite's native steps (see the module docstring); a context manager."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._models: dict[str, bytes] = {}
        self._loaded: set[str] = set()
        self._namespaces = 0

    def __enter__(self) -> "NativeProcess":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close(kill=exc is not None)

    def calibrate(self, model: bytes, samples: list[list[np.ndarray]]) -> bytes:
        """TFLite's calibrator: `model` with the min/max of every tensor over `samples` (input arrays in order)."""
        return bytes(self._call("calibrate", model, samples))

    def quantize(self, calibrated: bytes, *, per_channel: bool, per_channel_dense: bool) -> bytes:
        """TFLite's full-integer quantizer on a calibrated model."""
        return bytes(self._call("quantize", calibrated, per_channel, per_channel_dense))

    def invoke(self, key: str, model: Callable[[], bytes], feeds: list[Feed], outputs: list[str]) -> list[Feed]:
        """The outputs named `outputs` of the interpreter of `model` (built once per child under `key`) on each feed."""
        if key not in self._loaded:
            if key not in self._models:
                self._models[key] = model()
            self._call("load", key, self._models[key])
            self._loaded.add(key)
        return list(self._call("invoke", key, feeds, outputs))

    def namespace(self) -> str:
        """A fresh prefix for `invoke` keys: one user's interpreters, released together by `drop`."""
        self._namespaces += 1
        return f"{self._namespaces}/"

    def drop(self, prefix: str) -> None:
        """Forget the models and interpreters whose keys start with `prefix`."""
        keys = [k for k in self._models if k.startswith(prefix)]
        for k in keys:
            del self._models[k]
        if self._child is not None and any(k in self._loaded for k in keys):
            self._call("drop", prefix)
        self._loaded -= set(keys)

    def close(self, *, kill: bool = False) -> None:
        """Stop the child (if any; at once with `kill`, which an interrupted request needs) and remove its log."""
        child, self._child = self._child, None
        self._loaded = set()
        if child is not None:
            if kill:
                child.kill()
            assert child.stdin is not None and child.stdout is not None
            for stream in (child.stdin, child.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._child is None:
            self._log = tempfile.TemporaryFile()
            self._child = subprocess.Popen(
                [sys.executable, "-m", "stretchc.native"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            )
        return self._child

    def _call(self, op: str, *args: Any) -> Any:
        child = self._start()
        assert child.stdin is not None and child.stdout is not None
        try:
            pickle.dump((op, args), child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            child.stdin.flush()
            status, value = pickle.load(child.stdout)
        except (BrokenPipeError, EOFError, pickle.UnpicklingError, ConnectionResetError):
            code = child.wait()
            self.close()
            raise NativeError(_death(code), crashed=True) from None
        if status == "ok":
            return value
        raise NativeError(value, crashed=False)


def _death(code: int) -> str:
    """How the child ended, e.g. "crashed with SIGSEGV"."""
    if code < 0:
        try:
            return f"crashed with {signal.Signals(-code).name}"
        except ValueError:
            return f"crashed with signal {-code}"
    return f"exited with status {code}"


# ---------------------------------------------------------------- the child


def _calibrate(model: bytes, samples: list[list[np.ndarray]]) -> bytes:
    from tensorflow.lite.python.optimize import calibrator  # lazy: TensorFlow (seconds), in the child process only

    return bytes(calibrator.Calibrator(model).calibrate(lambda: iter(samples)))


def _quantize(calibrated: bytes, per_channel: bool, per_channel_dense: bool) -> bytes:
    from tensorflow.lite.python import convert  # lazy: TensorFlow (seconds), in the child process only

    return bytes(convert.mlir_quantize(
        calibrated, disable_per_channel=not per_channel, fully_quantize=True, disable_per_channel_for_dense_layers=not per_channel_dense,
    ))


class _Child:
    """The child's state: interpreters by key."""

    def __init__(self) -> None:
        self.interpreters: dict[str, Any] = {}

    def load(self, key: str, model: bytes) -> None:
        from ai_edge_litert.interpreter import Interpreter  # lazy: LiteRT's native library, in the child process only

        it = Interpreter(model_content=model, num_threads=1)
        it.allocate_tensors()
        self.interpreters[key] = it

    def drop(self, prefix: str) -> None:
        for key in [k for k in self.interpreters if k.startswith(prefix)]:
            del self.interpreters[key]

    def invoke(self, key: str, feeds: list[Feed], outputs: list[str]) -> list[Feed]:
        it = self.interpreters[key]
        index = {d["name"]: d["index"] for d in it.get_input_details()}
        out_index = {d["name"]: d["index"] for d in it.get_output_details()}
        results = []
        for feed in feeds:
            for name, x in feed.items():
                it.set_tensor(index[name], x)
            it.invoke()
            results.append({name: it.get_tensor(out_index[name]).copy() for name in outputs})
        return results


def _serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer requests until the parent closes the pipe."""
    child = _Child()
    ops: dict[str, Callable[..., Any]] = {"calibrate": _calibrate, "quantize": _quantize, "load": child.load, "invoke": child.invoke, "drop": child.drop}
    while True:
        try:
            op, args = pickle.load(requests)
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", ops[op](*args))
        except Exception as exc:  # noqa: BLE001 - whatever the native step raised is the parent's NativeError
            reply = ("error", f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()


def main() -> None:
    """The child: requests on stdin, replies on a private copy of stdout; fd 1 and 2 both go to the log."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
