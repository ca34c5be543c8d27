"""--precision float|int8|fp16-gpu|auto: what each policy places, what the cost model predicts for it, auto's
accuracy guard, and the command line and stretchc.toml."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from stretchc.cli import main
from stretchc.costmodel.placement import plan
from stretchc.analyses import AccuracyGuard
from stretchc.driver import CompileOptions, compile_model
from stretchc.errors import StretchError
from stretchc.targets import load_target

from tests.conftest import REPO, example_placement, example_with_regions, settings_with

EXAMPLE = REPO / "examples" / "branchy.onnx"

# slow (not in `scripts/test.sh --fast`): most tests compile the example under a precision policy with TFLite calibration (about 35 s)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def module():  # type: ignore[no-untyped-def]
    return example_with_regions()


def test_auto_never_predicted_slower_than_float_or_int8_for_the_same_placement(module) -> None:  # type: ignore[no-untyped-def]
    t = load_target("mi9")
    branches = [r.name for r in module.regions if r.kind == "branch"]
    for combo in itertools.islice(itertools.product(["cpu", "gpu", "dsp"], repeat=len(branches)), 0, None, 7):
        fixed = {r.name: "cpu" for r in module.regions} | dict(zip(branches, combo))
        pred = {policy: plan(module, t, fixed=fixed, policy=policy, calibrated=True, optimise_free=False)["predicted_latency_ms"] for policy in ("float", "int8", "auto")}
        assert pred["auto"] <= min(pred["float"], pred["int8"]) + 1e-9, (combo, pred)
    free = plan(module, t, policy="auto", calibrated=True)
    placement = dict(free["placement"])
    for policy in ("float", "int8"):
        assert free["predicted_latency_ms"] <= plan(module, t, fixed=placement, policy=policy, calibrated=True, optimise_free=False)["predicted_latency_ms"] + 1e-9


def test_precisions_each_policy_gives(module) -> None:  # type: ignore[no-untyped-def]
    t = load_target("mi9")
    fixed = {r.name: "cpu" for r in module.regions} | {"s1.b1": "gpu", "s2.b1": "dsp"}
    want = {
        "float": {"cpu": "float32", "gpu": "float32", "dsp": "int8"},
        "fp16-gpu": {"cpu": "float32", "gpu": "float16", "dsp": "int8"},
        "int8": {"cpu": "int8", "gpu": "int8", "dsp": "int8"},
    }
    for policy, per_proc in want.items():
        rep = plan(module, t, fixed=fixed, policy=policy, calibrated=True, optimise_free=False)
        assert all(rep["precision"][r] == per_proc[p] for r, p in rep["placement"].items()), policy
    # auto without calibration data cannot choose int8 anywhere but on the DSP (which runs nothing else)
    rep = plan(module, t, fixed=fixed, policy="auto", calibrated=False, optimise_free=False)
    assert {rep["precision"][r] for r, p in rep["placement"].items() if p != "dsp"} <= {"float32", "float16"}
    # every region's report says why it has its precision, and prices every precision its processor allows
    row = next(r for r in plan(module, t, fixed=fixed, policy="auto", calibrated=True, optimise_free=False)["regions"] if r["region"] == "s1.b0")
    assert row["precision_why"].startswith("auto: ") and set(row["alternatives"]["cpu"]["precisions"]) == {"float32", "int8"}
    assert set(row["alternatives"]["gpu"]["precisions"]) == {"float32", "float16", "int8"}


def test_int8_prices_every_partition_at_int8(module, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    place = {"s1.b1": "dsp", "s2.b1": "gpu"}
    res = {
        policy: compile_model(EXAMPLE, tmp_path / policy, CompileOptions(target="mi9", place=place, settings=settings_with(policy, calib="random")))
        for policy in ("float", "int8")
    }
    rep = json.loads((tmp_path / "int8" / "report.json").read_text())
    assert {r["precision"] for r in rep["regions"]} == {"int8"}
    assert res["int8"].manifest["predicted_latency_ms"] == rep["predicted_latency_ms"] < res["float"].manifest["predicted_latency_ms"]
    for r in rep["regions"]:
        assert r["predicted_ms"] == r["alternatives"][r["processor"]]["precisions"]["int8"]["region_ms"]


def test_fp16_gpu_asks_the_delegate_for_fp16(tmp_path: Path) -> None:
    place = example_placement({"s1.b1": "gpu"})
    res = compile_model(EXAMPLE, tmp_path / "b", CompileOptions(target="pixel6", place=place, settings=settings_with("fp16-gpu")))
    gpu = next(p for p in res.manifest["partitions"] if p["name"] == "s1.b1")
    assert gpu["precision"] == "float16" and gpu["delegate_options"]["precision"] == "fp16"
    assert {p["precision"] for p in res.manifest["partitions"] if p["processor"] == "cpu"} == {"float32"}


def test_auto_rejects_precisions_when_the_bound_is_tight(tmp_path: Path) -> None:
    def build(name: str, bound: float):  # type: ignore[no-untyped-def]
        return compile_model(EXAMPLE, tmp_path / name, CompileOptions(target="mi9", place={"s1.b1": "gpu"}, settings=settings_with("auto", min_sqnr=bound, calib="random")))

    loose = build("loose", 10.0)
    assert not loose.analyses.get(AccuracyGuard).rejected and "int8" in {p["precision"] for p in loose.manifest["partitions"]}
    tight = build("tight", 60.0)
    acc = tight.analyses.get(AccuracyGuard)
    assert acc.rejected and all(v is None or v >= 60.0 for v in acc.sqnr_db.values())
    # every rejected (processor, precision) is gone from the regions that had it, and says why
    rows = {r["region"]: r for r in json.loads((tmp_path / "tight" / "report.json").read_text())["regions"]}
    rejected = json.loads((tmp_path / "tight" / "report.json").read_text())["rejected"]
    assert rejected and all("dB < --min-sqnr 60" in x["why"] or "< --min-sqnr" in x["why"] for x in rejected)
    for x in rejected:
        row = rows[x["region"]]
        assert (row["processor"], row["precision"]) != (x["processor"], x["precision"])
        assert "rejected by the accuracy guard" in row["precision_why"]
    assert tight.manifest["predicted_latency_ms"] >= loose.manifest["predicted_latency_ms"]
    # deterministic: the same inputs give the same bundle
    again = build("again", 60.0)
    assert (tmp_path / "again" / "manifest.json").read_bytes().replace(b"again", b"tight") == (tmp_path / "tight" / "manifest.json").read_bytes().replace(b"again", b"tight")
    assert again.analyses.get(AccuracyGuard) == acc


def test_a_bound_missed_even_in_float_fails_the_compile(tmp_path: Path) -> None:
    with pytest.raises(StretchError) as exc:
        compile_model(EXAMPLE, tmp_path / "b", CompileOptions(target="mi9", place={"s1.b1": "dsp"}, settings=settings_with("auto", min_sqnr=200.0, calib="random")))
    assert exc.value.code == "verify-failed" and "even with every partition that can run float" in exc.value.message and "s1.b1" in exc.value.message
    assert not (tmp_path / "b").exists()


def test_command_line_and_config(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "b")
    assert main(["compile", str(EXAMPLE), "-o", out, "--precision", "fast"]) == 2
    err = capsys.readouterr().err
    assert "error[usage]" in err and all(p in err for p in ("auto", "float", "int8", "fp16-gpu"))
    assert main(["compile", str(EXAMPLE), "-o", out, "--precision", "int8"]) == 3
    assert "--calib" in capsys.readouterr().err and not Path(out).exists()
    assert main(["compile", str(EXAMPLE), "--print-config"]) == 0
    text = capsys.readouterr().out
    assert 'precision = "auto"' in text and "min-sqnr = 30.0" in text and "{precision" not in text  # settings, not pipeline text
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stretchc.toml").write_text('precision = "int8"\ncalib = "random"\n')
    assert main(["compile", str(EXAMPLE), "--print-config"]) == 0
    text = capsys.readouterr().out
    assert 'precision = "int8"' in text and 'min-sqnr = ""  # not set' in text
    assert main(["compile", str(EXAMPLE), "--print-config", "--precision", "float", "--io-dtype", "uint8"]) == 0
    assert 'precision = "float"' in (text := capsys.readouterr().out) and 'io-dtype = "uint8"' in text
    (tmp_path / "stretchc.toml").write_text('precision = "int4"\n')
    assert main(["compile", str(EXAMPLE), "--print-config"]) == 3
    err = capsys.readouterr().err
    assert "error[bad-config]" in err and "precision" in err and "fp16-gpu" in err


def test_auto_without_calibration_data_says_so(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["compile", str(EXAMPLE), "-t", "pixel6", "-o", str(tmp_path / "b"), "--verify"]) == 0
    captured = capsys.readouterr()
    assert "note[precision]" in captured.err and "--calib" in captured.err and "verdict: PASS" in captured.out
    precisions = {p["precision"] for p in json.loads((tmp_path / "b" / "manifest.json").read_text())["partitions"]}
    assert precisions <= {"float32", "float16"}


def test_natural_image_helper_is_not_noise() -> None:
    from tests.precision.images import natural_images

    imgs = natural_images(4, 32)
    assert imgs.shape == (4, 3, 32, 32) and imgs.dtype == np.float32 and 0.0 <= imgs.min() and imgs.max() <= 1.0
    # neighbouring pixels of photographs are strongly correlated; uniform noise is not
    corr = np.corrcoef(imgs[:, :, :, :-1].ravel(), imgs[:, :, :, 1:].ravel())[0, 1]
    assert corr > 0.8


def test_auto_with_an_explicit_min_sqnr_installs_what_its_guard_accepted(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """auto's guard bounds the outputs; the pre-install check must not then refuse the bundle on a sync point
    whose SQNR is a few dB below the outputs' (it only fails sync points below min(bound, 20 dB))."""
    out = tmp_path / "b"
    # every region its own partition (grouping=regions): int8 values cross sync points; by default the whole model
    # is one partition here and has no sync point to check
    pipeline = "--pipeline=unshare-pads,find-branches,padv2-to-pad,assign-delegates{grouping=regions},ungroup-convs,outline-partitions,quantize-partitions,insert-sync-points,emit-bundle"
    status = main(["compile", str(EXAMPLE), "-t", "mi9", "--calib", "random", "--min-sqnr", "45", "-o", str(out), "-q", pipeline])
    assert status == 0, capsys.readouterr().err
    guard = json.loads((out / "report.json").read_text())["accuracy_guard"]
    assert all(v is None or v >= 45.0 for v in guard["sqnr_db"].values())
    assert "int8" in {p["precision"] for p in json.loads((out / "manifest.json").read_text())["partitions"]}
