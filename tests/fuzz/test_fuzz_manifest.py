"""Bounded, seeded fuzz of the Python bundle loader: mutated manifests (structure-aware edits of manifest.json
and manifest.bin, and raw byte flips) go through `stretchc inspect` and `stretchc run`. Every outcome is
accepted-and-runs or a one-line user error; never exit 70, never a traceback, never a hang.
The same seed gives the same mutations; FUZZ_CASES sizes the run (~30 s here)."""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from stretchc.bundle.binary import encode_manifest
from stretchc.bundle.format import MANIFEST_BIN, MANIFEST_JSON
from stretchc.bundle.manifest import dumps
from stretchc.cli import main
from stretchc.errors import StretchError

from tests.bundle.hostile import resum

SEED = 12
FUZZ_CASES = 250
ALLOWED = {0, 2, 3, 4}  # ok, usage, bad input, resource limit

# slow (not in `scripts/test.sh --fast`): 250 mutated manifests, each loaded and the survivors run (about 9 s)
pytestmark = pytest.mark.slow


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k in sorted(value):
            out += _paths(value[k], (*prefix, k))
    elif isinstance(value, list):
        for i, x in enumerate(value):
            out += _paths(x, (*prefix, i))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _names(m: dict[str, Any]) -> list[str]:
    return [p["name"] for p in m["partitions"]] + [s["name"] for s in m["sync_points"]] + [s["name"] for s in m["buffers"]["slots"]] + ["host"]


def _mutate(m: dict[str, Any], names: list[str], rng: random.Random) -> None:
    paths = [p for p in _paths(m) if p]
    path = rng.choice(paths)
    parent, key = _get(m, path[:-1]), path[-1]
    op = rng.randrange(9)
    if op == 0:  # a hostile scalar
        parent[key] = rng.choice([None, True, -1, 0, 1, 63, 64, 2**31, 2**63 - 1, -(2**63), 1e308, -0.5, "", "x" * 300, "../x", "a\u0000b", "\ud800", "tpu", "NCHW"])
    elif op == 1:  # another name of the bundle
        parent[key] = rng.choice(names)
    elif op == 2:  # a value spliced from elsewhere
        parent[key] = copy.deepcopy(_get(m, rng.choice(paths)))
    elif op == 3 and isinstance(parent, dict):
        del parent[key]
    elif op == 3 and isinstance(parent, list):
        parent.pop(key)
    elif op == 4 and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    elif op == 5 and isinstance(parent[key], list):
        rng.shuffle(parent[key])
    elif op == 6 and isinstance(parent[key], int) and not isinstance(parent[key], bool):
        parent[key] += rng.choice([-64, -1, 1, 4, 64, 1 << 20])
    elif op == 7:  # deep nesting
        deep: Any = 0
        for _ in range(rng.choice([5, 40, 2000])):
            deep = [deep]
        parent[key] = deep
    else:
        parent[key] = rng.choice([[], {}, [[]], {"a": 1}])


def _write(bundle: Path, original: dict[str, Any], rng: random.Random) -> None:
    kind = rng.random()
    if kind < 0.15:  # raw bytes of one file
        name = rng.choice([MANIFEST_JSON, MANIFEST_BIN])
        data = bytearray((bundle / name).read_bytes())
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        (bundle / name).write_bytes(bytes(data))
    else:
        m = copy.deepcopy(original)
        for _ in range(rng.choice([1, 1, 2, 3])):
            _mutate(m, _names(original), rng)
        try:
            text = dumps(m)
        except (TypeError, ValueError, RecursionError):
            return
        (bundle / MANIFEST_JSON).write_bytes(text)
        if rng.random() < 0.85:
            try:
                (bundle / MANIFEST_BIN).write_bytes(encode_manifest(m))
            except (StretchError, RecursionError):
                pass  # not representable: manifest.json and manifest.bin now disagree
    if rng.random() < 0.8:
        resum(bundle)


@pytest.mark.timeout(240)
def test_mutated_manifests_are_refused_or_run(example_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = json.loads((example_bundle / MANIFEST_JSON).read_text())
    rng = random.Random(SEED)
    outcomes: dict[str, int] = {}
    for n in range(FUZZ_CASES):
        bundle = tmp_path / f"b{n % 2}"
        shutil.rmtree(bundle, ignore_errors=True)
        shutil.copytree(example_bundle, bundle)
        _write(bundle, original, rng)
        for args in (["inspect", str(bundle)], ["run", str(bundle), "--seed", "0", "--stall-timeout", "20", "-q"]):
            capsys.readouterr()
            rc = main(args)
            err = capsys.readouterr().err
            assert rc in ALLOWED and "Traceback" not in err, f"case {n} ({args[0]}): exit {rc}: {err[-1500:]}"
            if rc:
                assert err.strip().splitlines()[-1].startswith("error[") and sum(ln.startswith("error") for ln in err.splitlines()) == 1, err
            outcomes[f"{args[0]}:{rc}"] = outcomes.get(f"{args[0]}:{rc}", 0) + 1
            if rc:
                break  # run would refuse the same bundle
    assert outcomes.get("inspect:3", 0) > FUZZ_CASES // 2, outcomes  # most mutations are caught
    assert outcomes.get("run:0", 0) > 0, outcomes  # and some harmless ones (free text) still run
