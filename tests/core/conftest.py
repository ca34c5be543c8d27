"""Shared, compiled-once fixtures for the compiler-core tests (issue 2).

Every structural variant of `stretchc.examples.branched_model` is compiled once per session (tiny: size
32, width 8) with `--dump-dir`; tests read the bundles and dumps and never recompile them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import onnx
import pytest

from stretchc.console import Console, set_console
from stretchc.driver import CompileOptions, CompileResult, compile_model
from stretchc.examples import branched_model

from tests.conftest import REPO

STRETCHC = REPO / ".venv" / "bin" / "stretchc"

# name -> (branched_model arguments, expected regions in order)
VARIANTS: dict[str, tuple[dict, list[str]]] = {
    "concat2": (dict(branches=(2,)), ["stem", "s1.b0", "s1.b1", "s1.join", "head"]),
    "concat3": (dict(branches=(3,)), ["stem", "s1.b0", "s1.b1", "s1.b2", "s1.join", "head"]),
    "concat4": (dict(branches=(4,), width=16), ["stem", "s1.b0", "s1.b1", "s1.b2", "s1.b3", "s1.join", "head"]),
    "add2": (dict(branches=(2,), join="add"), ["stem", "s1.b0", "s1.b1", "s1.join", "head"]),
    "add3": (dict(branches=(3,), join="add"), ["stem", "s1.b0", "s1.b1", "s1.b2", "s1.join", "head"]),
    "add4": (dict(branches=(4,), join="add"), ["stem", "s1.b0", "s1.b1", "s1.b2", "s1.b3", "s1.join", "head"]),
    "two_stages": (
        dict(branches=(2, 3)),
        ["stem", "s1.b0", "s1.b1", "s1.join", "s2.b0", "s2.b1", "s2.b2", "s2.join", "head"],
    ),
    "residual": (dict(branches=(2,), residual=True, depth=3), ["stem", "s1.b0", "s1.b1", "s1.join", "head"]),
    "nested": (dict(branches=(2,), nested=True), ["stem", "s1.b0", "s1.b1", "s1.join", "head"]),
    "no_branches": (dict(branches=(1,)), ["main"]),
}


@dataclass
class Compiled:
    name: str
    model_path: Path
    bundle: Path
    dump_dir: Path
    result: CompileResult
    expected_regions: list[str]


def make_model(name: str) -> onnx.ModelProto:
    kwargs, _ = VARIANTS[name]
    return branched_model(**{"size": 32, "width": 8, "name": name, **kwargs})


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Compiled]:
    """Every variant compiled for pixel6 with the default pipeline and a dump directory."""
    root = tmp_path_factory.mktemp("core-compiled")
    set_console(Console(quiet=True, stream=sys.stderr))
    out: dict[str, Compiled] = {}
    for name, (_, regions) in VARIANTS.items():
        path = root / f"{name}.onnx"
        onnx.save(make_model(name), str(path))
        dump = root / f"{name}.dump"
        result = compile_model(path, root / f"{name}.stretch", CompileOptions(target="pixel6", dump_dir=dump))
        out[name] = Compiled(name, path, root / f"{name}.stretch", dump, result, regions)
    return out


@pytest.fixture(scope="session")
def example_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled example compiled once with s1.b1 and s2.b2 on the GPU, the rest on the CPU (two lanes; by
    default the cost model keeps it in one CPU partition, which leaves these tests nothing to check)."""
    from tests.conftest import example_placement

    root = tmp_path_factory.mktemp("core-example")
    set_console(Console(quiet=True, stream=sys.stderr))
    place = example_placement({"s1.b1": "gpu", "s2.b2": "gpu"})
    compile_model(REPO / "examples" / "branchy.onnx", root / "branchy.stretch", CompileOptions(target="pixel6", place=place))
    return root / "branchy.stretch"


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path (for byte-identity comparisons)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Keep the lowering cache of these tests in a private, initially empty directory."""
    import os

    saved = os.environ.get("STRETCHC_CACHE_DIR")
    os.environ["STRETCHC_CACHE_DIR"] = str(tmp_path_factory.mktemp("stretchc-cache"))
    yield
    if saved is None:
        os.environ.pop("STRETCHC_CACHE_DIR", None)
    else:
        os.environ["STRETCHC_CACHE_DIR"] = saved


def run_stretchc(args: list[str], *, env_extra: dict[str, str] | None = None, timeout: int = 300):  # type: ignore[no-untyped-def]
    """Run the installed `stretchc` console script in a separate process."""
    import os
    import subprocess

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env_extra or {})}
    return subprocess.run([str(STRETCHC), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO))
