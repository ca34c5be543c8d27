"""`stretchc calibrate -t host`: kernel micro-benchmarks measured here, the cost model fitted to them, a target file
that compiles price with them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from stretchc.backends import fallback
from stretchc.cli import main
from stretchc.costmodel import CostModel
from stretchc.costmodel.microbench import DTYPES, KERNELS, PROCESSOR, Measurement, fit, float_graph, left_out_errors
from stretchc.targets import load_target
from stretchc.targets.host import describe, last_level_cache_mb

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "branchy.onnx"
TRUE = {
    "float32": {"conv": 0.7, "dwconv": 0.3, "mem": 0.5, "op_ms": 0.004},
    "int8": {"conv": 0.25, "dwconv": 0.06, "mem": 0.8, "op_ms": 0.002},
}
DISPATCH = 0.01
CACHE_MB = 32.0
WEIGHT_GBPS = {"float32": 40.0, "int8": 25.0}
FACTORS = {  # per dtype and shape class, how many times the base price the class's ops take
    "float32": {
        "dwconv-large": 12.0, "dwconv-5x5": 2.0, "conv-narrow": 1.0, "relu": 1.0, "avgpool": 1.5, "subsample": 5.0, "pad-narrow": 40.0, "pad": 20.0,
        "concat": 1.5, "eltwise": 3.0,
    },
    "int8": {
        "dwconv-large": 14.0, "dwconv-5x5": 1.5, "conv-narrow": 2.0, "relu": 60.0, "avgpool": 40.0, "subsample": 45.0, "pad-narrow": 80.0, "pad": 10.0,
        "concat": 3.0, "eltwise": 4.0,
    },
}


@pytest.fixture(scope="module")
def host() -> dict:  # type: ignore[type-arg]
    return describe()


def _synthetic(raw: dict) -> list[Measurement]:  # type: ignore[type-arg]
    """Every kernel at both dtypes, timed by the cost model's own formula under TRUE and FACTORS (float ops for both
    dtypes: the work features differ by the dtype's width and peak only)."""
    from stretchc.costmodel.profile import profile_node

    cm = CostModel(raw)
    out = []
    for k in KERNELS:
        nodes = tuple(float_graph(k)[0])
        ops = [profile_node(n) for n in nodes]
        for d in DTYPES:
            p = TRUE[d]
            inverse = np.array([1 / p["conv"], 1 / p["dwconv"], 1 / p["mem"], p["op_ms"]])
            scale = [np.array([f, f, f, 1.0]) for f in (FACTORS[d].get(o.shape_class, 1.0) for o in ops)]  # launches unscaled
            t = sum(float((cm.features([o], PROCESSOR, d) * s) @ inverse) for o, s in zip(ops, scale)) + DISPATCH
            beyond = sum(o.weights for o in ops) * cm.execution(PROCESSOR, d).width - CACHE_MB * (1 << 20)
            t += max(beyond, 0.0) / (WEIGHT_GBPS[d] * 1e6)  # weights beyond the cache, read again every run
            out.append(Measurement(k.name, d, t, nodes))
    return out


def test_every_shape_class_has_micro_benchmarks_and_the_base_kernels_cover_each_efficiency(host) -> None:  # type: ignore[no-untyped-def]
    from stretchc.costmodel.profile import SHAPE_CLASSES
    from stretchc.costmodel.profile import profile_node

    classes = {k.name: {o.shape_class for o in (profile_node(n) for n in float_graph(k)[0]) if o is not None} - {""} for k in KERNELS}
    assert all(len(c) <= 1 for c in classes.values())  # a micro-benchmark measures one shape class at most
    for cls in SHAPE_CLASSES:
        assert sum(c == {cls} for c in classes.values()) >= 2, cls  # so a left-out error exists for each
    base = [name for name, c in classes.items() if not c]
    # the data movement efficiency from a memory-bound fully connected layer (elementwise ops have a class of their own)
    assert any(n.startswith("conv") for n in base) and any(n.startswith("dwconv") for n in base) and any(n.startswith("fc") for n in base)


def test_the_fit_recovers_the_parameters_that_made_the_timings(host) -> None:  # type: ignore[no-untyped-def]
    fitted = fit(host, _synthetic(host), CACHE_MB)
    cm = CostModel(host)
    for d in DTYPES:
        got = fitted.kinds[cm.execution(PROCESSOR, d).kind]
        for key, want in TRUE[d].items():
            assert got[key] == pytest.approx(want, rel=1e-3), (d, key)
        assert got["shape_classes"] == pytest.approx(FACTORS[d], rel=1e-3), d
        assert got["weight_gbps"] == pytest.approx(WEIGHT_GBPS[d], rel=1e-2), d
    assert fitted.dispatch_ms == pytest.approx(DISPATCH, rel=1e-3)
    assert max(abs(e) for e in fitted.errors_pct.values()) < 0.1


def test_left_out_errors_are_predictions_without_the_point(host) -> None:  # type: ignore[no-untyped-def]
    measurements = _synthetic(host)
    bent = measurements[0]
    measurements[0] = Measurement(bent.kernel, bent.dtype, bent.ms * 2, bent.nodes)  # one timing the others contradict
    left = left_out_errors(host, measurements, CACHE_MB)
    assert left[f"{bent.kernel} {bent.dtype}"] == pytest.approx(-50.0, abs=1.0)  # predicted from the others: half of it
    assert fit(host, measurements, CACHE_MB).errors_pct[f"{bent.kernel} {bent.dtype}"] > -50.0  # in the fit it pulls the parameters


@pytest.mark.slow  # times 48 micro-benchmarks (TFLite's quantizer in a child process): about 10 s
def test_calibrate_writes_a_target_that_compiles_price_with_its_measurements(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "host.yaml"
    assert main(["calibrate", "-t", "host", "-o", str(out), "--runs", "3", "--warmup", "1", "-q"]) == 0
    target = load_target(str(out))
    measured = target.raw["measured"]
    assert len(measured["points"]) == 2 * len(KERNELS) and all(p["ms"] > 0 for p in measured["points"])
    assert target.processors == (fallback().name,)
    cm = CostModel(target)
    for d in DTYPES:
        group = cm.group(PROCESSOR, d)
        assert group.conv == pytest.approx(measured["kinds"][cm.execution(PROCESSOR, d).kind]["conv"])
    assert cm.dispatch_ms[PROCESSOR] == measured["dispatch_ms"][PROCESSOR]
    assert measured.get("cache_mb") == last_level_cache_mb()  # what the weight bandwidth assumes, as sysfs says
    bundle = tmp_path / "b.stretch"
    capsys.readouterr()
    assert main(["compile", str(EXAMPLE), "-t", str(out), "-o", str(bundle)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("cost model:"))
    assert "fitted to measurements" in line and f"{2 * len(KERNELS)} measurements of host (measured by stretchc calibrate)" in line
    report = json.loads((bundle / "report.json").read_text())
    assert report["cost_model"]["groups"][f"{PROCESSOR}/float32"]["basis"] == "measured"
    # calibrating again replaces the file it wrote
    assert main(["calibrate", "-t", "host", "-o", str(out), "--runs", "1", "--warmup", "0", "-q"]) == 0


def test_calibrate_measures_only_this_machine_and_keeps_the_users_files(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["calibrate", "-t", "mi9", "-o", str(tmp_path / "mi9.yaml")]) == 2
    assert "calibrate measures the machine it runs on" in capsys.readouterr().err
    mine = tmp_path / "notes.yaml"
    mine.write_text("mine: true\n")
    assert main(["calibrate", "-t", "host", "-o", str(mine)]) != 0
    assert "refusing to replace it" in capsys.readouterr().err
    assert yaml.safe_load(mine.read_text()) == {"mine": True}
    assert main(["calibrate", "-t", "host", "-o", str(tmp_path / "host.json")]) == 2
    assert not (tmp_path / "host.json").exists()


def test_timed_inputs_are_never_constant() -> None:
    """Micro-benchmarks time kernels on data like a network's: an int8 input spans both signs (TFLite's int8 RELU
    runs about three times faster on all zeros)."""
    from stretchc.costmodel.microbench import random_input

    rng = np.random.default_rng(0)
    q = random_input(rng, (1, 8, 8, 16), np.dtype(np.int8))
    assert q.dtype == np.int8 and q.min() < 0 < q.max() and len(np.unique(q)) > 100
    f = random_input(rng, (4, 4), np.dtype(np.float32))
    assert f.dtype == np.float32 and f.std() > 0.1
