"""`verify` can fail: wrong float bundles (one perturbed weight, swapped partitions, a wrong layout, NaN)
are rejected, sync points are compared with the ONNX tensor they carry by name and decide the verdict, a
sync point that cannot be compared is named, and seeded inputs of every dtype vary.

Wrong bundles are made by the project's own emitter: the compiled module is changed and emitted again
(`emit_again`), or the manifest is changed and written again with its binary form and checksums
(`rewrite_manifest`), so the bundles differ from a correct one only by the mutation.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from stretchc.bundle.binary import encode_manifest
from stretchc.bundle.format import MANIFEST_JSON
from stretchc.bundle.manifest import dumps, sha256_bytes
from stretchc.cli import main
from stretchc.console import Console, set_console
from stretchc.driver import CompileOptions, CompileResult, compile_model
from stretchc.errors import StretchError
from stretchc.examples import branched_model
from stretchc.passes.emit_bundle import EmitBundle
from stretchc.passmanager import PassContext, parse_pipeline
from stretchc.targets import load_target
from stretchc.verify import abs_error, seeded_inputs, verify_bundle


def _compile(root: Path, name: str, **kwargs: Any) -> tuple[Path, CompileResult]:
    set_console(Console(quiet=True, stream=sys.stderr))
    path = root / f"{name}.onnx"
    onnx.save(branched_model(size=32, width=8, name=name, **kwargs), str(path))
    # s1.b1 on the GPU: every branch its own partition, so every branch output is a sync point to compare
    # (by default the cost model keeps this small model in one partition)
    return path, compile_model(path, root / f"{name}.stretch", CompileOptions(target="pixel6", place={"s1.b0": "cpu", "s1.b1": "gpu"}))


@pytest.fixture(scope="module")
def concat2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CompileResult]:
    return _compile(tmp_path_factory.mktemp("verify-concat2"), "concat2")


@pytest.fixture(scope="module")
def add2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CompileResult]:
    return _compile(tmp_path_factory.mktemp("verify-add2"), "add2", join="add")


def emit_again(result: CompileResult, out: Path) -> Path:
    """Emit `result.module` (after the caller changed it) as a complete bundle at `out`."""
    EmitBundle().run(result.module, PassContext(target=load_target("pixel6"), output_dir=out, pipeline=parse_pipeline(result.pipeline)))
    return out


def rewrite_manifest(bundle: Path, out: Path, manifest: dict[str, Any]) -> Path:
    """A copy of `bundle` at `out` with `manifest` (manifest.json, manifest.bin and SHA256SUMS agree)."""
    shutil.copytree(bundle, out)
    files = {MANIFEST_JSON: dumps(manifest), "manifest.bin": encode_manifest(manifest)}
    for rel, data in files.items():
        (out / rel).write_bytes(data)
    listed = [line.split("  ", 1)[1] for line in (out / "SHA256SUMS").read_text().splitlines()]
    (out / "SHA256SUMS").write_text("".join(f"{sha256_bytes((out / rel).read_bytes())}  {rel}\n" for rel in listed))
    return out


def _manifest(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / MANIFEST_JSON).read_text())


def _sync_of(manifest: dict[str, Any], partition: str) -> dict[str, Any]:
    """The sync point the partition's (only) output goes to."""
    (out,) = next(p for p in manifest["partitions"] if p["name"] == partition)["outputs"]
    return next(s for s in manifest["sync_points"] if s["name"] == out["sync"])


def _first_conv_weight(result: CompileResult, partition: str) -> np.ndarray:
    node = next(n for n in result.module.graph.nodes if n.partition == partition and n.kind == "CONV_2D")
    weight = node.inputs[1]
    assert weight is not None and weight.data is not None
    return weight.data


# --- a correct bundle passes, and every sync point is compared with its own ONNX tensor --------------


def test_correct_bundle_passes_with_every_sync_point_matched_by_name(concat2: tuple[Path, CompileResult], capsys) -> None:  # type: ignore[no-untyped-def]
    model, result = concat2
    report = verify_bundle(result.output, model, samples=2)
    assert report.ok, report.table()
    syncs = [c for c in report.checks if c.kind == "sync"]
    assert syncs and not report.unmatched
    manifest = _manifest(result.output)
    assert [c.onnx_tensor for c in syncs] == [s["onnx_tensor"] for s in manifest["sync_points"] if s["kind"] not in ("input", "output")]
    # the branch outputs carry the ONNX tensors the model builder named
    assert _sync_of(manifest, "s1.b0")["onnx_tensor"].startswith("s1/b0/")
    assert _sync_of(manifest, "s1.b1")["onnx_tensor"].startswith("s1/b1/")
    assert "verdict: PASS\n" in report.table() + "\n"
    assert main(["inspect", str(result.output)]) == 0
    assert f"ONNX {_sync_of(manifest, 's1.b0')['onnx_tensor']}" in capsys.readouterr().out


# --- wrong bundles fail --------------------------------------------------------------------------------


def test_nan_bundle_fails(concat2: tuple[Path, CompileResult], tmp_path: Path) -> None:
    model, result = concat2
    mutated = copy.deepcopy(result)
    head = next(n for n in mutated.module.graph.nodes if n.kind == "FULLY_CONNECTED")
    assert head.inputs[1] is not None and head.inputs[1].data is not None
    head.inputs[1].data = np.full_like(head.inputs[1].data, np.nan)
    bundle = emit_again(mutated, tmp_path / "nan.stretch")
    report = verify_bundle(bundle, model, samples=1)
    (out,) = [c for c in report.checks if c.kind == "output"]
    assert out.max_abs_error == np.inf and not out.ok
    assert not report.ok and "verdict: FAIL" in report.table()
    assert main(["verify", str(bundle), str(model), "--samples", "1", "-q"]) == 5


def test_one_perturbed_weight_fails_at_its_sync_point(concat2: tuple[Path, CompileResult], tmp_path: Path) -> None:
    model, result = concat2
    mutated = copy.deepcopy(result)
    w = _first_conv_weight(mutated, "s1.b0")
    w.flat[0] += 0.5 * float(np.max(np.abs(w)))
    report = verify_bundle(emit_again(mutated, tmp_path / "w.stretch"), model, samples=2)
    assert not report.ok
    branch = _sync_of(_manifest(result.output), "s1.b0")
    failing = {c.name for c in report.failed}
    assert branch["name"] in failing
    assert _sync_of(_manifest(result.output), "s1.b1")["name"] not in failing  # the other branch is right
    with pytest.raises(StretchError) as exc:
        report.raise_if_failed()
    assert exc.value.code == "verify-failed" and branch["onnx_tensor"] in exc.value.message


def test_sync_points_decide_even_when_outputs_pass(concat2: tuple[Path, CompileResult], tmp_path: Path) -> None:
    """A perturbation the classifier head averages away is still caught at the branch's sync point."""
    model, result = concat2
    mutated = copy.deepcopy(result)
    w = _first_conv_weight(mutated, "s1.b0")
    w.flat[0] += 0.05 * float(np.max(np.abs(w)))
    report = verify_bundle(emit_again(mutated, tmp_path / "small.stretch"), model, samples=2)
    assert all(c.ok for c in report.checks if c.kind == "output"), report.table()
    assert not report.ok, report.table()
    assert _sync_of(_manifest(result.output), "s1.b0")["name"] in {c.name for c in report.failed}


def test_swapped_partitions_fail_even_where_the_output_cannot_tell(add2: tuple[Path, CompileResult], tmp_path: Path) -> None:
    """Branches joined by an add: each writing the other's sync point leaves the sum, so the output is
    right; matched by name, both sync points hold the wrong tensor (by best error they would match)."""
    model, result = add2
    manifest = _manifest(result.output)
    b0 = next(p for p in manifest["partitions"] if p["name"] == "s1.b0")
    b1 = next(p for p in manifest["partitions"] if p["name"] == "s1.b1")
    b0["outputs"][0]["sync"], b1["outputs"][0]["sync"] = b1["outputs"][0]["sync"], b0["outputs"][0]["sync"]
    for s in manifest["sync_points"]:  # keep the manifest consistent: each sync point's producer swapped too
        if s["producer"] in ("s1.b0", "s1.b1"):
            s["producer"] = "s1.b1" if s["producer"] == "s1.b0" else "s1.b0"
    report = verify_bundle(rewrite_manifest(result.output, tmp_path / "swap.stretch", manifest), model, samples=2)
    assert all(c.ok for c in report.checks if c.kind == "output"), report.table()
    assert {c.name for c in report.failed} == {b0["outputs"][0]["sync"], b1["outputs"][0]["sync"]}, report.table()


def test_wrong_input_layout_fails(concat2: tuple[Path, CompileResult], tmp_path: Path) -> None:
    model, result = concat2
    manifest = _manifest(result.output)
    (inp,) = manifest["inputs"]
    assert inp["perm"] == [0, 2, 3, 1]
    inp["perm"] = [0, 3, 2, 1]  # height and width exchanged: same shape (32x32), wrong layout
    report = verify_bundle(rewrite_manifest(result.output, tmp_path / "layout.stretch", manifest), model, samples=2)
    assert not report.ok
    assert any(c.kind == "output" for c in report.failed)


def test_sync_point_named_after_another_tensor_fails(concat2: tuple[Path, CompileResult], tmp_path: Path) -> None:
    """The comparison follows the manifest's name: pointing a sync point at the sibling branch's tensor fails."""
    model, result = concat2
    manifest = _manifest(result.output)
    s0, s1 = _sync_of(manifest, "s1.b0"), _sync_of(manifest, "s1.b1")
    s0["onnx_tensor"] = s1["onnx_tensor"]
    report = verify_bundle(rewrite_manifest(result.output, tmp_path / "renamed.stretch", manifest), model, samples=1)
    assert [c.name for c in report.failed] == [s0["name"]]


# --- sync points that cannot be compared are named, not skipped --------------------------------------


def test_unmatched_sync_points_are_reported(concat2: tuple[Path, CompileResult], tmp_path: Path) -> None:
    model, result = concat2
    manifest = _manifest(result.output)
    s0, s1 = _sync_of(manifest, "s1.b0"), _sync_of(manifest, "s1.b1")
    del s0["onnx_tensor"]
    s1["onnx_tensor"] = "no/such/tensor"
    report = verify_bundle(rewrite_manifest(result.output, tmp_path / "unmatched.stretch", manifest), model, samples=1)
    reasons = {c.name: c.unmatched for c in report.unmatched}
    assert reasons == {s0["name"]: "the manifest names no ONNX tensor for it", s1["name"]: "the model has no tensor of that name"}
    assert report.ok  # nothing compared is wrong ...
    syncs = sum(c.kind == "sync" for c in report.checks)
    # ... but the verdict says what was not checked, and the table names each one and why
    assert f"verdict: PASS (2 of {syncs} sync points not checked: {s0['name']}, {s1['name']})" in report.table()
    assert "not checked: the model has no tensor of that name" in report.table()


# --- the error measure and the seeded inputs ------------------------------------------------------------


def test_abs_error_treats_nan_and_inf_as_infinite_unless_both_agree() -> None:
    got = np.array([1.0, np.nan, np.inf, np.nan, np.inf, 2.0], dtype=np.float32)
    ref = np.array([1.5, 1.0, 1.0, np.nan, np.inf, np.nan], dtype=np.float32)
    assert abs_error(got, ref).tolist() == [0.5, np.inf, np.inf, 0.0, 0.0, np.inf]


def test_seeded_inputs_vary_for_every_dtype() -> None:
    manifest = {
        "inputs": [
            {"name": n, "shape": [4, 64], "dtype": dt}
            for n, dt in [("f", "float32"), ("i64", "int64"), ("i32", "int32"), ("u8", "uint8"), ("i8", "int8"), ("b", "bool")]
        ]
    }
    x = seeded_inputs(manifest, 0)
    assert {k: v.dtype.name for k, v in x.items()} == {"f": "float32", "i64": "int64", "i32": "int32", "u8": "uint8", "i8": "int8", "b": "bool"}
    for name in ("i64", "i32"):
        assert x[name].min() == 0 and x[name].max() == 7, name  # small non-negative values: valid indices
    assert x["u8"].min() < 16 and x["u8"].max() > 240
    assert x["i8"].min() < -100 and x["i8"].max() > 100
    assert 0.3 < x["b"].mean() < 0.7
    assert 0.0 <= x["f"].min() and x["f"].max() < 1.0
    again = seeded_inputs(manifest, 0)
    assert all(np.array_equal(x[k], again[k]) for k in x)
    assert not np.array_equal(x["i64"], seeded_inputs(manifest, 1)["i64"])
