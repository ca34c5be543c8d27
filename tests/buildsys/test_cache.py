"""The lowering cache: keyed by the validated model and tool versions, safe under concurrency, self-healing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from stretchc.cache import LoweringCache, cache_dir, decode_entry, encode_entry, lowering_key
from stretchc.cli import main
from stretchc.examples import branched_model
from tests.buildsys.conftest import tree_bytes

# Diagnostics about the placement, not the cache: `precision` (auto without --calib) and
# `slower-than-one-partition` (the example's split is predicted slower than one partition).
ADVICE = ("precision", "slower-than-one-partition")


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "lower").rglob("*.tflite"))


def test_entry_round_trip_and_corruption() -> None:
    payload = b"TFL3" + bytes(range(256)) * 10
    key = lowering_key(b"model")
    entry = encode_entry(key, payload)
    assert decode_entry(entry, key) == payload
    assert decode_entry(entry, lowering_key(b"another model")) is None  # stored under another key
    assert decode_entry(entry[:-1], key) is None  # truncated
    assert decode_entry(entry[: len(entry) // 2], key) is None
    assert decode_entry(entry[:-1] + b"x", key) is None  # flipped byte
    assert decode_entry(b"", key) is None
    assert decode_entry(b"garbage\n" + payload, key) is None


def test_another_models_entry_copied_over_a_key_is_not_trusted(
    tmp_path: Path, small_model: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12 item 3: the entry of model A copied over model B's key gave a bundle with A's weights."""
    other = tmp_path / "other.onnx"
    onnx.save(branched_model(size=32, width=8, seed=7), str(other))
    assert main(["compile", str(small_model), "-o", str(tmp_path / "b1"), "-q"]) == 0
    (entry_b,) = entries(cache)
    assert main(["compile", str(other), "-o", str(tmp_path / "a"), "-q"]) == 0
    (entry_a,) = [e for e in entries(cache) if e != entry_b]
    entry_b.write_bytes(entry_a.read_bytes())
    capsys.readouterr()
    assert main(["compile", str(small_model), "-o", str(tmp_path / "b2"), "--diagnostics=json"]) == 0
    diags = [d for d in (json.loads(ln) for ln in capsys.readouterr().err.splitlines()) if d["code"] not in ADVICE]
    assert [(d["severity"], d["code"]) for d in diags] == [("warning", "cache-corrupt")]
    assert tree_bytes(tmp_path / "b2") == tree_bytes(tmp_path / "b1")  # B's weights, not A's


def test_cache_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STRETCHC_CACHE_DIR", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x"
    monkeypatch.delenv("STRETCHC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "stretchc"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "stretchc"


def test_key_depends_on_model_bytes() -> None:
    assert lowering_key(b"a") == lowering_key(b"a")
    assert lowering_key(b"a") != lowering_key(b"b")


def test_placement_change_hits_the_cache(tmp_path: Path, small_model: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(small_model), "-o", str(tmp_path / "a"), "--diagnostics=json"]) == 0
    assert len(entries(cache)) == 1
    assert "cache-hit" not in capsys.readouterr().err
    assert main(["compile", str(small_model), "-o", str(tmp_path / "b"), "--place", "s1.b1=cpu", "--diagnostics=json"]) == 0
    err = capsys.readouterr().err
    assert [c for c in (json.loads(ln)["code"] for ln in err.splitlines()) if c not in ADVICE] == ["cache-hit"]
    assert len(entries(cache)) == 1
    # an input-shape override changes the validated model, hence the key
    assert main(["compile", str(small_model), "-o", str(tmp_path / "c"), "--input-shape", "input=1,3,32,32", "--diagnostics=json"]) == 0


def test_truncated_entry_is_detected_and_rebuilt(tmp_path: Path, small_model: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(small_model), "-o", str(tmp_path / "a"), "-q"]) == 0
    (entry,) = entries(cache)
    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) - 100])
    capsys.readouterr()
    assert main(["compile", str(small_model), "-o", str(tmp_path / "b"), "--diagnostics=json"]) == 0
    diags = [d for d in (json.loads(ln) for ln in capsys.readouterr().err.splitlines()) if d["code"] not in ADVICE]
    assert [(d["severity"], d["code"]) for d in diags] == [("warning", "cache-corrupt")]
    assert diags[0]["file"] == str(entry)
    assert entry.read_bytes() == good  # rebuilt
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


def test_unwritable_cache_is_a_warning(tmp_path: Path, small_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("STRETCHC_CACHE_DIR", str(blocker))
    assert main(["compile", str(small_model), "-o", str(tmp_path / "a"), "--diagnostics=json"]) == 0
    codes = [json.loads(ln)["code"] for ln in capsys.readouterr().err.splitlines()]
    assert [c for c in codes if c not in ADVICE] == ["cache-unwritable"]


@pytest.mark.slow  # compiles in several processes at once, each importing TensorFlow and lowering (10-20 s)
def test_concurrent_compiles_share_a_cache(tmp_path: Path, small_model: Path) -> None:
    cache = tmp_path / "shared-cache"
    env = {**os.environ, "STRETCHC_CACHE_DIR": str(cache)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "stretchc.cli", "compile", str(small_model), "-o", str(tmp_path / f"b{i}"), "-q"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    results = [(p.wait(timeout=600), p.communicate()[1]) for p in procs]
    assert [rc for rc, _ in results] == [0, 0, 0, 0], results
    bundles = [tree_bytes(tmp_path / f"b{i}") for i in range(4)]
    assert all(b == bundles[0] for b in bundles[1:])
    (entry,) = entries(cache)
    assert decode_entry(entry.read_bytes(), entry.stem) is not None
    assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]  # no temp files left behind
    assert LoweringCache(cache).get(entry.stem) is not None
