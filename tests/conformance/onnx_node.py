"""The conformance tier: ONNX's backend node tests of the CNN-op subset, through `stretchc compile` + `run`.

Data: `tests/data/onnx_node/<case>/` (model.onnx, test_data_set_0/{input,output}_N.pb), copied unchanged from
the onnx 1.17.0 wheel (Apache-2.0; newer wheels no longer ship the data) by
`scripts/update_onnx_node_data.py`; see tests/data/onnx_node/README.md.

The subset is `FAMILIES`: a case belongs to the first family whose pattern matches its name (without the
`test_` prefix). Cases of other ops, and ConvInteger / SplitToSequence (not float CNN ops), are not in it.

Compile-time inputs (`CONST_FROM`): the node tests feed every operand as a graph input, but an exported CNN
carries weights and parameters (a Reshape's shape, a Resize's scales, a Clip's bounds, a Pad's pads) as
initializers. In the families whose op takes such operands after its data operand, every graph input after
the first is given to `compile` with `--const-input`; all other inputs are fed to `run`.

Comparison: same shape, same dtype, values within ONNX's backend-test tolerance (`RTOL`, `ATOL`, as
`np.testing.assert_allclose`).

`run_stretchc(case)` runs the two commands in this process (one TensorFlow import for the whole tier) and
classifies the outcome: `pass`, `mismatch` (ran, wrong numbers), `refused` (compile failed with an error
code), `run-refused` (compile succeeded and run failed: must never happen), `internal` (exit 70: never).
`run_bare(case)` does the same with bare onnx2tf (its defaults) and the TFLite interpreter, for comparison.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "onnx_node"
ONNX_WHEEL = "onnx==1.17.0"

# family -> pattern on the case name without "test_"; the first match wins.
FAMILIES: dict[str, str] = {
    "conv": r"(basic_)?conv_with|basic_conv|convtranspose",
    "pool": r"averagepool|maxpool_\dd|globalaveragepool|globalmaxpool",
    "concat": r"concat_",
    "add-sub-mul-div": r"(add|sub|mul|div)(_|$)",
    "clip": r"clip",
    "relu-family": r"relu|leakyrelu|prelu|elu|selu|hardsigmoid|hardswish",
    "softmax": r"softmax",
    "resize": r"resize_",
    "reshape": r"reshape_",
    "transpose": r"transpose_",
    "pad": r"(constant|edge|reflect)_pad",
    "slice": r"slice",
    "split": r"split_(?!to_sequence)",
    "reduce-mean": r"reduce_mean_",
    "gemm-matmul": r"gemm_|matmul_\dd",
    "batchnorm": r"batchnorm_",
}
# Families whose op takes weights or parameters after its data operand: inputs after the first are constants.
CONST_FROM: dict[str, int] = {
    f: 1 for f in ("conv", "batchnorm", "gemm-matmul", "relu-family", "clip", "resize", "reshape", "pad", "slice", "split", "reduce-mean")
}
RTOL, ATOL = 1e-3, 1e-7


def family_of(case: str) -> str | None:
    """The family of a case directory name (`test_...`), or None when it is outside the subset."""
    name = case.removeprefix("test_")
    for family, pattern in FAMILIES.items():
        if re.match(rf"(?:{pattern})", name):
            return family
    return None


def cases() -> list[str]:
    """Every case shipped in tests/data/onnx_node, sorted."""
    return sorted(p.name for p in DATA.iterdir() if p.is_dir())


def _tensor(path: Path) -> np.ndarray:
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(t)


def _numbered(folder: Path, kind: str) -> list[np.ndarray]:
    files = sorted(folder.glob(f"{kind}_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
    return [_tensor(p) for p in files]


@dataclass
class Case:
    """One node test: its model, inputs split into compile-time and runtime ones, expected outputs."""

    name: str
    family: str
    model: Path
    inputs: dict[str, np.ndarray]  # fed to run
    constants: dict[str, np.ndarray]  # given to compile with --const-input
    outputs: dict[str, np.ndarray]  # expected

    @staticmethod
    def load(name: str) -> "Case":
        family = family_of(name)
        if family is None:
            raise ValueError(f"{name} is not in the CNN-op subset")
        folder = DATA / name
        proto = onnx.load(str(folder / "model.onnx"), load_external_data=False)
        inits = {t.name for t in proto.graph.initializer}
        in_names = [i.name for i in proto.graph.input if i.name not in inits]
        ins = dict(zip(in_names, _numbered(folder / "test_data_set_0", "input")))
        outs = dict(zip([o.name for o in proto.graph.output], _numbered(folder / "test_data_set_0", "output")))
        first_const = CONST_FROM.get(family, len(in_names))
        constants = {n: ins[n] for n in in_names[first_const:] if n in ins}
        runtime = {n: a for n, a in ins.items() if n not in constants}
        return Case(name, family, folder / "model.onnx", runtime, constants, outs)


def matches(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> bool:
    """Every expected output present, with the same shape and dtype, and values within tolerance."""
    for name, want in expected.items():
        have = got.get(name)
        if have is None or have.shape != want.shape or have.dtype != want.dtype:
            return False
        if want.dtype.kind in "fc":
            if not np.allclose(have, want, rtol=RTOL, atol=ATOL, equal_nan=True):
                return False
        elif not np.array_equal(have, want):
            return False
    return True


@dataclass
class Outcome:
    """What happened to one case."""

    case: str
    family: str
    status: str  # pass | mismatch | refused | run-refused | internal
    code: str = ""  # the error code of a refusal
    message: str = ""
    seconds: float = 0.0


def _save_arrays(folder: Path, arrays: dict[str, np.ndarray]) -> list[str]:
    specs = []
    for k, (name, arr) in enumerate(sorted(arrays.items())):
        path = folder / f"a{k}.npy"
        np.save(path, arr)
        specs.append(f"{name}={path}")
    return specs


def _cli(argv: list[str]) -> tuple[int, dict[str, str]]:
    """Run `stretchc ARGV --diagnostics=json -q` in this process: exit status and its error (code, message)."""
    from stretchc.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main([*argv, "--diagnostics=json", "-q"])
    errors = [json.loads(ln) for ln in err.getvalue().splitlines() if ln.startswith("{")]
    first = next((e for e in errors if e.get("severity") == "error"), {})
    return rc, {"code": str(first.get("code", "")), "message": str(first.get("message", ""))}


def run_stretchc(case: Case, *, target: str = "pixel6") -> Outcome:
    """`stretchc compile` (constants folded) then `stretchc run` on the case's inputs, compared with its outputs."""
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="stretchc-conformance-"))
    try:
        (work / "const").mkdir()
        (work / "in").mkdir()
        bundle = work / "bundle.stretch"
        const_specs = [a for spec in _save_arrays(work / "const", case.constants) for a in ("--const-input", spec)]
        rc, err = _cli(["compile", str(case.model), "-t", target, "-o", str(bundle), *const_specs])
        if rc != 0:
            status = "internal" if rc == 70 else "refused"
            return Outcome(case.name, case.family, status, err["code"], err["message"], time.perf_counter() - start)
        in_specs = [a for spec in _save_arrays(work / "in", case.inputs) for a in ("--input", spec)]
        rc, err = _cli(["run", str(bundle), *in_specs, "--output-dir", str(work / "out")])
        if rc != 0:
            return Outcome(case.name, case.family, "run-refused", err["code"], err["message"], time.perf_counter() - start)
        files = {name: work / "out" / f"{name.replace('/', '_')}.npy" for name in case.outputs}
        got = {name: np.load(path) for name, path in files.items() if path.is_file()}
        status = "pass" if matches(got, case.outputs) else "mismatch"
        return Outcome(case.name, case.family, status, seconds=time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _layouts(onnx_shape: tuple[int, ...], shape: tuple[int, ...]) -> list[tuple[int, ...] | None]:
    """Permutations (ONNX -> lowered) under which a lowered tensor of `shape` can be the ONNX one; None: reshape."""
    found: list[tuple[int, ...] | None] = []
    if len(onnx_shape) in (3, 4, 5):
        perm = (0, *range(2, len(onnx_shape)), 1)
        if tuple(onnx_shape[p] for p in perm) == shape:
            found.append(perm)
    if onnx_shape == shape or (not found and int(np.prod(onnx_shape)) == int(np.prod(shape))):
        found.append(None)
    return found


def _folded(case: Case) -> onnx.ModelProto:
    """The case's model with its compile-time inputs as initializers (what --const-input does)."""
    model = onnx.load(str(case.model))
    kept = [vi for vi in model.graph.input if vi.name not in case.constants]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    model.graph.initializer.extend(numpy_helper.from_array(v, n) for n, v in sorted(case.constants.items()))
    return model


def run_bare(case: Case, *, fold_constants: bool = False) -> Outcome:
    """Bare onnx2tf (its defaults, offline) and the TFLite interpreter, every input fed at run time, or,
    with `fold_constants`, the compile-time inputs made initializers first (as stretchc's --const-input).

    Inputs go in by name, channel-last when onnx2tf made them so; an output passes if it matches under any
    layout its lowered shape allows (channel-last, as-is, or reshaped): the benefit of the doubt.
    """
    import onnx2tf
    import onnx2tf.onnx2tf as onnx2tf_impl

    from stretchc.console import native_output_to
    from stretchc.frontend.lower import _sample_images, no_network
    from stretchc.litert import load_interpreter

    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bare-onnx2tf-"))
    try:
        if fold_constants:
            onnx.save(_folded(case), str(work / "model.onnx"))
        else:
            shutil.copy(case.model, work / "model.onnx")  # onnx2tf rewrites its input file
        onnx2tf_impl.download_test_image_data = _sample_images
        try:
            with no_network(), native_output_to(work / "log"), contextlib.redirect_stdout(io.StringIO()):
                onnx2tf.convert(input_onnx_file_path=str(work / "model.onnx"), output_folder_path=str(work / "out"), non_verbose=True)
            it = load_interpreter(model_path=str(work / "out" / "model_float32.tflite"))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure of the bare tool chain is a refusal
            return Outcome(case.name, case.family, "refused", type(exc).__name__, str(exc)[:200], time.perf_counter() - start)
        feeds = {**case.inputs} if fold_constants else {**case.inputs, **case.constants}
        names = list(feeds)
        details = it.get_input_details()
        by_name = {d["name"]: d for d in details}
        order = [by_name.get(n) for n in names] if all(n in by_name for n in names) else details
        try:
            for name, detail in zip(names, order):
                arr, shape = feeds[name], tuple(int(d) for d in detail["shape"])
                perms = _layouts(arr.shape, shape)
                perm = perms[0] if perms else None
                it.set_tensor(detail["index"], (np.transpose(arr, perm) if perm else arr.reshape(shape)).astype(detail["dtype"]))
            it.invoke()
            lowered = [it.get_tensor(d["index"]) for d in it.get_output_details()]
        except (ValueError, RuntimeError) as exc:
            return Outcome(case.name, case.family, "run-refused", type(exc).__name__, str(exc)[:200], time.perf_counter() - start)
        ok = len(lowered) == len(case.outputs)
        for got, (name, want) in zip(lowered, case.outputs.items()):
            views = [np.transpose(got, np.argsort(p)) if p else got.reshape(want.shape) for p in _layouts(want.shape, got.shape)]
            ok = ok and any(matches({name: v}, {name: want}) for v in views)
        return Outcome(case.name, case.family, "pass" if ok else "mismatch", seconds=time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)


EXPECTED = Path(__file__).with_name("expected.tsv")


def read_expected() -> dict[str, tuple[str, str]]:
    """case -> (outcome, error code) as recorded in expected.tsv."""
    rows = [ln.split("\t") for ln in EXPECTED.read_text().splitlines() if ln and not ln.startswith("#")]
    return {case: (status, code) for case, status, code in rows}


def write_expected() -> None:
    """Run the tier and record every case's outcome in expected.tsv (after a deliberate change)."""
    lines = ["# case\toutcome\tcode: written by `PYTHONPATH=. .venv/bin/python -m tests.conformance.onnx_node`"]
    for name in cases():
        o = run_stretchc(Case.load(name))
        lines.append(f"{o.case}\t{o.status}\t{o.code}")
    EXPECTED.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    write_expected()
