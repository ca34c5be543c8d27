"""A compiled bundle on disk: open, run, verify, explain and describe it (`stretchc run`, `verify`, `explain`,
`inspect`)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from stretchc.api._common import console_for, reporting
from stretchc.api.report import Report
from stretchc.bundle.describe import describe
from stretchc.bundle.manifest import compiled_shapes
from stretchc.bundle.validate import CheckedBundle, validate_bundle
from stretchc.console import Console
from stretchc.costmodel.placement_report import explain, read_report
from stretchc.driver import CompileResult
from stretchc.errors import StretchError
from stretchc.frontend.module import onnx_inputs
from stretchc.frontend.validate import load_model
from stretchc.quantize.calibration_data import check_calibration_options, find_bad_value, load_calibration_data, parse_preprocess, read_npy
from stretchc.runtime.host import DEFAULT_STALL_TIMEOUT, HostRuntime, Profile
from stretchc.verify import DEFAULT_SAMPLES, VerifyReport, seeded_inputs, verify_bundle


REPORT_FILE = "report.json"  # the placement report emit-bundle writes into a bundle

ArrayOrFile = np.ndarray | str | Path  # an array, or a .npy file holding it


def read_array(name: str, value: ArrayOrFile, flag: str) -> np.ndarray:
    """The array given for input `name` (by `flag`, which messages name: `--input`, `--const-input`): `value` itself,
    or read from the .npy file `value` (a regular file holding one array; missing: `file-not-found`). Floating-point
    values are checked as calibration data is (stretchc/quantize/calibration_data.py: no NaN, infinity or value far
    outside the rest); anything wrong is `bad-input-data`, naming the file."""
    file = None
    if isinstance(value, np.ndarray):
        arr = value
    else:
        file = str(value)
        if not Path(value).exists():
            raise StretchError("file-not-found", f"input file for {name!r} does not exist", file=file)
        arr = read_npy(Path(value), "bad-input-data")
    bad = find_bad_value([arr])
    if bad is not None:
        raise StretchError("bad-input-data", f"{flag} {name}: {bad.describe()}; fix the array", file=file)
    return arr


def arrays(given: Mapping[str, ArrayOrFile] | None, flag: str) -> dict[str, np.ndarray]:
    return {name: read_array(name, value, flag) for name, value in (given or {}).items()}


def check_verify_data(data: str | Path | None, preprocess: str | None, *, arrays: bool) -> None:
    """`Bundle.verify`'s `data` and `preprocess` checked before any work, as compile checks `--calib` and
    `--preprocess`: the preprocessing parses, the data exists, and preprocessing is given only for `data` images.
    Without `data` the inputs are `inputs` arrays (`arrays`) or seeded random ones, fed as they are: preprocessing
    that would not happen is a usage error, and so are both `data` and `inputs` (one would be ignored)."""
    if data is not None and arrays:
        raise StretchError("usage", "give the inputs as arrays (--input) or as data (--input-dir), not both: one of them would be ignored")
    check_calibration_options(None if data is None else str(data), preprocess)
    pre = parse_preprocess(preprocess)
    if pre.given and not data:
        fed = "the --input arrays" if arrays else "seeded random inputs"
        raise pre.error(f"preprocessing applies to --input-dir images; {fed} are fed as they are (drop --preprocess, or give --input-dir)")


class Bundle:
    """A compiled bundle on disk, checked when opened (checksums, manifest, partition models). Notes and warnings of
    its work (opening, running, verifying it) go to `console`, by default to a console on stderr that prints notes
    only with `quiet=False`."""

    def __init__(self, path: str | Path, *, quiet: bool = True, console: Console | None = None) -> None:
        self.path = Path(path)
        self._console = console_for(quiet, console)
        self._runtime: HostRuntime | None = None
        self._checked: CheckedBundle | None = validate_bundle(self.path)
        self.manifest: Mapping[str, Any] = self._checked.manifest

    def _host(self) -> HostRuntime:
        """The bundle loaded into the host reference runtime (once, on first use: opening a bundle to read it, as
        `describe` and `explain` do, loads no runtime)."""
        if self._runtime is None:
            with reporting(self._console):
                self._runtime = HostRuntime(self.path, self._checked)
            self._checked = None  # the runtime holds what it needs of it
        return self._runtime

    @cached_property
    def report(self) -> Report | None:
        """The placement report the bundle holds (report.json), None when its pipeline wrote none;
        StretchError("bad-bundle") when it is not a placement report."""
        path = self.path / REPORT_FILE
        return Report.from_record(read_report(path)) if path.is_file() else None

    def explain(self, region: str | None = None) -> str:
        """Why `region` (`s1.b0`, `stem`, `s1.join`, `head`, `main`, ...; every region when None) runs where it runs,
        as `stretchc explain` prints it: its processor and why, its precision and why, the partition it shares and
        what splitting it would cost, the precisions the accuracy guard rejected, its predicted time and every
        alternative processor and precision priced (or why it is not eligible). StretchError("bad-bundle") when the
        bundle holds no placement report, ("unknown-branch") when it has no such region."""
        if self.report is None:
            raise StretchError("bad-bundle", "the bundle has no report.json (compiled without a placement report?)", file=str(self.path / REPORT_FILE))
        names = [region] if region else [r.name for r in self.report.regions]
        return "\n".join(explain(dict(self.report.data), r) for r in names)

    def describe(self) -> str:
        """What the bundle contains, as `stretchc inspect` prints it: inputs and outputs, partitions (with why their
        regions share them, when the bundle holds a placement report), sync points, the buffer plan, the schedule."""
        grouping = {p.name: p.why for p in self.report.partitions} if self.report is not None else {}
        return describe(dict(self.manifest), grouping)

    @property
    def inputs(self) -> dict[str, tuple[list[int], str]]:
        """The model inputs the bundle takes: name -> (shape, dtype), in ONNX layout."""
        return {i["name"]: (list(i["shape"]), i["dtype"]) for i in self.manifest["inputs"]}

    @property
    def outputs(self) -> dict[str, tuple[list[int], str]]:
        """The model outputs the bundle gives: name -> (shape, dtype), in ONNX layout."""
        return {o["name"]: (list(o["shape"]), o["dtype"]) for o in self.manifest["outputs"]}

    def random_inputs(self, seed: int) -> dict[str, np.ndarray]:
        """Seeded random inputs (what `stretchc run --seed` feeds): the same seed gives the same arrays."""
        return seeded_inputs(dict(self.manifest), seed)

    def run(self, inputs: Mapping[str, np.ndarray], *, profile: Profile | None = None, stall_timeout: float = DEFAULT_STALL_TIMEOUT) -> dict[str, np.ndarray]:
        """Run the bundle once on this machine (the host reference runtime, partitions of one stage concurrently):
        the model outputs by ONNX name, in ONNX layout. `profile` is filled with the times of the run (per partition
        and sync point). StretchError("bad-input-data") on a missing, unknown or mis-shaped input; "run-stalled"
        when no partition starts or finishes for `stall_timeout` seconds."""
        runtime = self._host()
        with reporting(self._console):
            return runtime.run(dict(inputs), profile=profile, stall_timeout=stall_timeout)

    def verify(
        self,
        model: str | Path,
        *,
        inputs: list[dict[str, np.ndarray]] | None = None,
        data: str | Path | None = None,
        preprocess: str | None = None,
        samples: int = DEFAULT_SAMPLES,
        seed: int = 0,
        atol: float | None = None,
        rtol: float = 0.0,
        min_sqnr: float | None = None,
        const_inputs: Mapping[str, ArrayOrFile] | None = None,
    ) -> VerifyReport:
        """Compare the bundle with the ONNX model under ONNX Runtime on the same inputs, as `stretchc verify` does:
        `inputs` (feeds in ONNX layout), or `data` (calibration-style: a folder of images, with `preprocess`, a
        .npy or a .npz; a .npz with `labels` adds top-1 accuracy; not both, StretchError "usage"), else `samples` seeded random inputs from `seed`. Tolerance: `atol` (default 1e-4 x
        max|reference|) and `rtol`, or an SQNR bound `min_sqnr` (dB; the default for bundles with int8 partitions).
        `const_inputs`: the values the compile fixed (arrays or .npy files, as given to it). Returns the
        `stretchc.verify.VerifyReport` (`ok`, `checks` per output and sync point, `table()`); a failing comparison
        is a report, not an error (`raise_if_failed()` makes it one)."""
        check_verify_data(data, preprocess, arrays=inputs is not None)
        runtime = self._host()
        with reporting(self._console):
            labels = None
            if data:
                onnx_model = load_model(model, compiled_shapes=compiled_shapes(dict(self.manifest)))
                loaded = load_calibration_data(str(data), onnx_inputs(onnx_model), preprocess=preprocess)
                inputs, labels = loaded.samples, loaded.labels
            return verify_bundle(
                runtime, Path(model), inputs=inputs, samples=samples, seed=seed, atol=atol, rtol=rtol, min_sqnr=min_sqnr,
                labels=labels, labels_source=str(data or ""), const_inputs=arrays(const_inputs, "--const-input"),
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class CompiledBundle(Bundle):
    """What `compile` returns: the bundle it installed, with the driver's `compile_result` (the module, the pipeline
    as run, the passes' analyses and timings) and, with `verify=True`, the report of the verification that let it be
    installed (`verification`)."""

    def __init__(self, result: CompileResult, verification: VerifyReport | None, console: Console) -> None:
        # Not Bundle.__init__: the driver checked the bundle before installing it, and loading its partitions into
        # the host runtime costs time (and prints host-runtime notes) that a compile which never runs it should not.
        self.path = Path(result.output)
        self._console = console
        self._runtime = None
        self._checked = None
        self.manifest = result.manifest
        self.compile_result = result
        self.verification = verification
