"""Top-1 accuracy against labels, per classifier output, of the float model (ONNX Runtime) and of a bundle.

A classifier output holds one vector of K > 1 class scores per sample ([1, K]); its prediction is the
argmax. For each one `Top1` counts float top-1 (the ONNX model predicts the label), bundle top-1 and
agreement (the bundle predicts what the float model predicts). Labels come with the data: the `labels`
key of a `.npz` (`CalibrationSet.labels`, stretchc/quantize/calibration_data.py). A label that is not a class
of an output (>= K) is bad data: StretchError("bad-calibration") naming the file.

`stretchc verify` counts while it compares (`Top1.add`); the placement report of `stretchc compile`
gets `calib_accuracy(...)`: the same numbers on the labelled `--calib` data set, measured on its held-out
samples when calibration held some out (`--min-sqnr`), else on all of them (which calibration has seen).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stretchc.bundle.manifest import compiled_shapes
from stretchc.console import Console, get_console, set_console
from stretchc.errors import StretchError
from stretchc.frontend.module import onnx_inputs
from stretchc.frontend.validate import load_model
from stretchc.quantize.calibration_data import load_calibration_data, split_holdout
from stretchc.runtime.host import HostRuntime


def is_classifier(value: np.ndarray) -> bool:
    """One sample's output is a [1, K] vector of K > 1 class scores."""
    return value.ndim == 2 and value.shape[0] == 1 and value.shape[1] > 1


@dataclass(frozen=True)
class OutputAccuracy:
    output: str
    classes: int
    samples: int
    float_top1: float  # share of samples whose float (ONNX Runtime) prediction is the label
    bundle_top1: float  # share of samples whose bundle prediction is the label
    agreement: float  # share of samples where the bundle predicts what the float model predicts

    def as_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "classes": self.classes,
            "samples": self.samples,
            "float_top1": self.float_top1,
            "bundle_top1": self.bundle_top1,
            "agreement": self.agreement,
        }

    def line(self) -> str:
        drop = 100 * (self.bundle_top1 - self.float_top1)
        return (
            f"top-1 accuracy {self.output}: float {100 * self.float_top1:.2f}%, bundle {100 * self.bundle_top1:.2f}% "
            f"({drop:+.2f} points), agreement {100 * self.agreement:.2f}%, on {self.samples} labelled sample(s)"
        )


@dataclass
class Top1:
    """Counts top-1 predictions sample by sample; the k-th `add` is the sample of `labels[k]`."""

    labels: np.ndarray
    source: str = ""  # the labelled data file, named in errors
    _float: dict[str, list[int]] = field(default_factory=dict)
    _bundle: dict[str, list[int]] = field(default_factory=dict)
    _classes: dict[str, int] = field(default_factory=dict)

    def add(self, reference: Mapping[str, np.ndarray], bundle: Mapping[str, np.ndarray]) -> None:
        """Count one sample: the float model's and the bundle's outputs by name (classifier outputs only)."""
        for name in sorted(set(reference) & set(bundle)):
            ref = np.asarray(reference[name])
            if not is_classifier(ref):
                continue
            self._classes[name] = ref.shape[1]
            self._float.setdefault(name, []).append(int(np.argmax(ref)))
            self._bundle.setdefault(name, []).append(int(np.argmax(bundle[name])))

    def results(self) -> list[OutputAccuracy]:
        """Accuracy per classifier output, in name order."""
        labels = np.asarray(self.labels, dtype=np.int64)
        out = []
        for name in sorted(self._float):
            ref, got = np.array(self._float[name]), np.array(self._bundle[name])
            if len(ref) != len(labels):
                raise StretchError("internal", f"top-1 of {name}: {len(ref)} sample(s) counted for {len(labels)} label(s)")
            if labels.size and int(labels.max()) >= self._classes[name]:
                raise StretchError(
                    "bad-calibration",
                    f"label {int(labels.max())} is not a class of output {name!r}, which has {self._classes[name]} classes",
                    file=self.source or None,
                )
            out.append(
                OutputAccuracy(
                    name,
                    self._classes[name],
                    len(labels),
                    float(np.mean(ref == labels)),
                    float(np.mean(got == labels)),
                    float(np.mean(ref == got)),
                )
            )
        return out


def evaluate(runtime: Any, model: Any, samples: list[dict[str, np.ndarray]], labels: np.ndarray, *, source: str = "") -> list[OutputAccuracy]:
    """Run the ONNX model (an `onnx.ModelProto`, by ONNX Runtime) and the bundle (a `HostRuntime`) on `samples`;
    top-1 against `labels`."""
    import onnxruntime as ort  # lazy: onnxruntime's native library, loaded only to measure

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    top1 = Top1(labels, source=source)
    console = get_console()
    for k, feed in enumerate(samples):
        top1.add(dict(zip(names, session.run(None, feed))), runtime.run(feed))
        console.progress("measuring top-1 accuracy", k + 1, len(samples))
    return top1.results()


@dataclass(frozen=True)
class DataAccuracy:
    """Top-1 accuracy of every classifier output on a labelled data set (the placement report's `accuracy`)."""

    source: str
    samples: int
    held_out: bool  # the samples were held out of calibration (False: calibration has seen them)
    outputs: list[OutputAccuracy]

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "samples": self.samples, "held_out": self.held_out, "outputs": [o.as_dict() for o in self.outputs]}

    def lines(self) -> list[str]:
        seen = "held out of calibration" if self.held_out else "calibration has seen them"
        return [f"accuracy on {self.samples} labelled --calib sample(s) of {self.source} ({seen}):"] + [f"  {o.line()}" for o in self.outputs]


@contextmanager
def _unrepeated_diagnostics() -> Iterator[None]:
    """Pass on the diagnostics of the block that the console has not given already.

    The data set is read a second time here when calibration read it first (say, the `calibration-capped` note):
    what that read said is not said twice, while what only this read says, or a first read of the data (nothing
    was calibrated), is said as usual. They are held until the block ends; an error raised in it propagates."""
    console = get_console()
    held = Console(quiet=True, stream=io.StringIO())  # collects, prints nothing
    set_console(held)
    try:
        yield
    finally:
        set_console(console)
        for diag in held.diagnostics:
            if diag not in console.diagnostics:
                console.emit(diag)


def calib_accuracy(bundle: Path, model_path: Path, calib: str, *, held_out: int) -> DataAccuracy | None:
    """Top-1 accuracy on the labelled `--calib` data set, or None when it has no labels.

    `held_out`: how many of the data set's last samples calibration held out (0: measure on all samples).
    Only a `.npz` can carry labels, so nothing else is read.
    """
    if Path(calib).suffix.lower() != ".npz":
        return None
    with _unrepeated_diagnostics():  # calibration may have read this data set already, and said what it found
        runtime = HostRuntime(bundle)  # validated and loaded once, for the model's shapes and for the run
        model = load_model(model_path, compiled_shapes=compiled_shapes(runtime.manifest))
        cal = load_calibration_data(calib, onnx_inputs(model))
    if cal.labels is None:
        return None
    samples, labels = cal.samples, cal.labels
    if held_out > 0:
        samples = split_holdout(samples, held_out)[1]
        labels = np.asarray(split_holdout(labels, held_out)[1], dtype=np.int64)
    return DataAccuracy(cal.source, len(samples), held_out > 0, evaluate(runtime, model, samples, labels, source=cal.source))
