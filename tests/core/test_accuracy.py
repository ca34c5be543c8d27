"""Float bundles match ONNX Runtime (max abs error <= 1e-4 x max|output|) on every structural variant,
and find-branches finds exactly the expected stages and branches."""

from __future__ import annotations

import pytest

from stretchc.verify import verify_bundle

from tests.conftest import REPO
from tests.core.conftest import VARIANTS, Compiled


def _assert_matches_onnxruntime(bundle, model) -> None:  # type: ignore[no-untyped-def]
    report = verify_bundle(bundle, model, samples=3, seed=7)
    outputs = [c for c in report.checks if c.kind == "output"]
    assert outputs, "no model output was compared"
    for c in outputs:
        assert c.max_abs_reference > 0
        assert c.max_abs_error <= 1e-4 * c.max_abs_reference, report.table()


def test_example_matches_onnxruntime(example_bundle) -> None:  # type: ignore[no-untyped-def]
    _assert_matches_onnxruntime(example_bundle, REPO / "examples" / "branchy.onnx")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_matches_onnxruntime(compiled: dict[str, Compiled], name: str) -> None:
    c = compiled[name]
    _assert_matches_onnxruntime(c.bundle, c.model_path)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_find_branches_regions(compiled: dict[str, Compiled], name: str) -> None:
    c = compiled[name]
    assert [r.name for r in c.result.module.regions] == c.expected_regions
    # every region is populated and every non-sync node carries one of them
    used = {n.region for n in c.result.module.graph.nodes if n.op != "stretch.sync"}
    assert used == set(c.expected_regions)
    # branches of a stage have the right numbering
    for r in c.result.module.regions:
        if r.kind == "branch":
            assert r.name == f"s{r.stage}.b{r.branch}"


def test_residual_add_inside_branch_is_not_a_stage(compiled: dict[str, Compiled]) -> None:
    module = compiled["residual"].result.module
    adds = [n for n in module.graph.nodes if n.kind == "ADD"]
    assert len(adds) >= 4  # two residual adds per branch (depth 3)
    assert all(n.region in ("s1.b0", "s1.b1") for n in adds)
    assert [r.kind for r in module.regions].count("join") == 1


def test_nested_fork_stays_inside_its_branch(compiled: dict[str, Compiled]) -> None:
    module = compiled["nested"].result.module
    inner = [n for n in module.graph.nodes if n.kind == "CONCATENATION" and n.region != "s1.join"]
    assert inner and all(n.region == "s1.b0" for n in inner)
    convs = {n.region: 0 for n in module.graph.nodes}
    for n in module.graph.nodes:
        if n.kind == "CONV_2D":
            convs[n.region] += 1
    assert convs["s1.b0"] == convs["s1.b1"] + 3  # the nested fork (two convs, concat, 1x1 conv) is in b0


def test_add_join_is_a_tree_of_adds(compiled: dict[str, Compiled]) -> None:
    module = compiled["add4"].result.module
    joins = [n for n in module.graph.nodes if n.region == "s1.join"]
    assert [n.kind for n in joins] == ["ADD", "ADD", "ADD"]


def test_no_branch_model_is_one_partition(compiled: dict[str, Compiled]) -> None:
    m = compiled["no_branches"].result.manifest
    assert [p["name"] for p in m["partitions"]] == ["main"]
    assert m["schedule"]["steps"] == [["main"]]


def test_branches_of_a_stage_run_concurrently(compiled: dict[str, Compiled], tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Spread over the CPU and the GPU (by default the cost model keeps this small model in one partition): the
    # branches of a stage share a step; the two CPU branches of stage 2 share one partition.
    from stretchc.driver import CompileOptions, compile_model

    place = {"s1.b0": "cpu", "s1.b1": "gpu", "s2.b0": "cpu", "s2.b1": "gpu", "s2.b2": "cpu"}
    m = compile_model(compiled["two_stages"].model_path, tmp_path / "b.stretch", CompileOptions(target="pixel6", place=place)).manifest
    steps = m["schedule"]["steps"]
    assert ["s1.b0", "s1.b1"] in steps
    assert sorted(next(s for s in steps if "s2.b1" in s)) == ["s2.b0+s2.b2", "s2.b1"]
