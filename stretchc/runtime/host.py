"""The host reference runtime: runs a bundle on this machine exactly as its manifest says.

- Reads only the manifest and the partition files (`load_manifest` refuses bad bundles first).
- One worker thread per lane (processor) of the schedule; each lane runs its partitions in order, each
  partition starting once every sync point it reads has been produced, so partitions on different lanes
  run at the same time. LiteRT releases the GIL while a model runs, so the threads really overlap.
- Boundary tensors live in one arena laid out by the manifest's buffer plan; a partition reads its inputs
  from their slots and writes its outputs into theirs. (The Python interpreter API cannot bind external
  memory to a tensor, so each partition copies its boundary tensors in and out; the C++ runtime binds the
  arena directly.)
- GPU partitions run on this machine's CPU; DSP partitions run their CPU fallback (the same int8 model
  with CPU kernels). Both are reported once.
- Model inputs and outputs are in the ONNX model's layout; the runtime applies the manifest's permutation.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stretchc.bundle.manifest import load_manifest
from stretchc.console import get_console
from stretchc.errors import StretchError
from stretchc.litert import load_interpreter


@dataclass
class Profile:
    """Times of one run, in milliseconds from the run's start."""

    total_ms: float = 0.0
    partitions: dict[str, tuple[float, float, str]] = field(default_factory=dict)  # name -> (start, end, lane)
    sync_waits: dict[str, float] = field(default_factory=dict)  # sync point -> longest wait by a consumer

    def table(self) -> str:
        rows = [f"total {self.total_ms:.3f} ms", f"  {'partition':<28} {'lane':<5} {'start':>9} {'end':>9} {'time':>9}"]
        for name, (start, end, lane) in sorted(self.partitions.items(), key=lambda kv: kv[1][0]):
            rows.append(f"  {name:<28} {lane:<5} {start:9.3f} {end:9.3f} {end - start:9.3f}")
        rows.append(f"  {'sync point':<28} {'wait (ms)':>9}")
        for name, wait in self.sync_waits.items():
            rows.append(f"  {name:<28} {wait:9.3f}")
        return "\n".join(rows)


class _Arena:
    """One 64-byte aligned byte buffer with a typed view per slot."""

    def __init__(self, buffers: dict[str, Any]) -> None:
        size = max(int(buffers["arena_size"]), 1)
        raw = np.zeros(size + 64, dtype=np.uint8)
        start = (-raw.ctypes.data) % 64
        self.bytes = raw[start : start + size]
        self.views: dict[str, np.ndarray] = {}
        for slot in buffers["slots"]:
            dtype = np.dtype(slot["dtype"])
            count = int(np.prod(slot["shape"], dtype=np.int64)) if slot["shape"] else 1
            view = self.bytes[slot["offset"] : slot["offset"] + count * dtype.itemsize].view(dtype)
            self.views[slot["name"]] = view.reshape(slot["shape"])


class HostRuntime:
    """A loaded bundle, ready to run many times."""

    def __init__(self, bundle: str | Path, *, num_threads: int | None = None) -> None:
        self.bundle = Path(bundle)
        self.manifest = load_manifest(self.bundle)
        m = self.manifest
        self.arena = _Arena(m["buffers"])
        self.slot_of = {s["name"]: s["slot"] for s in m["sync_points"]}
        self.partitions = {p["name"]: p for p in m["partitions"]}
        self.interpreters: dict[str, Any] = {}
        self.io: dict[str, tuple[list[tuple[int, str]], list[tuple[int, str]]]] = {}
        notes = set()
        for p in m["partitions"]:
            if p["processor"] == "gpu":
                notes.add("GPU partitions run on this machine's CPU (host reference runtime)")
            if p["processor"] == "dsp":
                notes.add(f"DSP partitions run their CPU fallback ({p['fallback']['file'] if p['fallback'] else p['file']})")
            path = self.bundle / (p["fallback"]["file"] if p["processor"] == "dsp" and p["fallback"] else p["file"])
            try:
                it = load_interpreter(model_path=str(path), num_threads=num_threads or 1)
            except (ValueError, RuntimeError) as exc:
                raise StretchError("bad-bundle", f"partition {p['name']}: cannot load {p['file']}: {exc}", file=str(self.bundle)) from None
            by_name_in = {d["name"]: d["index"] for d in it.get_input_details()}
            by_name_out = {d["name"]: d["index"] for d in it.get_output_details()}
            try:
                ins = [(by_name_in[b["tensor"]], self.slot_of[b["sync"]]) for b in p["inputs"]]
                outs = [(by_name_out[b["tensor"]], self.slot_of[b["sync"]]) for b in p["outputs"]]
            except KeyError as exc:
                raise StretchError("bad-bundle", f"partition {p['name']}: the manifest binds tensor {exc} the file lacks", file=str(self.bundle)) from None
            self.interpreters[p["name"]] = it
            self.io[p["name"]] = (ins, outs)
        for note in sorted(notes):
            get_console().note("host-runtime", note)

    def _check_inputs(self, inputs: dict[str, np.ndarray]) -> None:
        expected = {i["name"]: i for i in self.manifest["inputs"]}
        for name in inputs:
            if name not in expected:
                raise StretchError("bad-input-data", f"unknown input {name!r}; the model's inputs are {', '.join(expected)}")
        for name, info in expected.items():
            if name not in inputs:
                raise StretchError("bad-input-data", f"missing input {name!r} {info['dtype']}{info['shape']}")
            arr = inputs[name]
            if list(arr.shape) != info["shape"]:
                raise StretchError("bad-input-data", f"input {name!r} has shape {list(arr.shape)}, expected {info['shape']}")
            if arr.dtype != np.dtype(info["dtype"]):
                raise StretchError("bad-input-data", f"input {name!r} has dtype {arr.dtype}, expected {info['dtype']}")

    @staticmethod
    def _to_bundle(arr: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        if info["layout"] == "NCHW":
            arr = np.transpose(arr, info["perm"])
        return arr.reshape(info["bundle_shape"])

    @staticmethod
    def _to_onnx(arr: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        if info["layout"] == "NCHW":
            arr = np.transpose(arr, np.argsort(info["perm"]))
        return np.ascontiguousarray(arr.reshape(info["shape"]))

    def _invoke(self, name: str) -> None:
        """Run one partition: its inputs from their arena slots, its outputs into theirs.

        Copies go through numpy views of the interpreter's own tensors (np.copyto releases the GIL, so
        lanes copying at the same time do not serialise); no view is held across invoke, as LiteRT requires.
        """
        it = self.interpreters[name]
        ins, outs = self.io[name]
        for index, slot in ins:
            np.copyto(it.tensor(index)(), self.arena.views[slot])
        it.invoke()
        for index, slot in outs:
            np.copyto(self.arena.views[slot], it.tensor(index)())

    def run(
        self, inputs: dict[str, np.ndarray], *, profile: Profile | None = None, capture: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Run once; returns the outputs by ONNX name in ONNX layout.

        Fills `profile` when given; with `capture`, records a copy of every sync point's value as it is
        produced (slots may share arena bytes, so reading them after the run is not enough).
        """
        self._check_inputs(inputs)
        m = self.manifest
        produced = {s["name"]: threading.Event() for s in m["sync_points"]}
        for info in m["inputs"]:
            np.copyto(self.arena.views[self.slot_of[info["sync"]]], self._to_bundle(inputs[info["name"]], info))
            produced[info["sync"]].set()
        errors: list[BaseException] = []
        t0 = time.perf_counter()
        lock = threading.Lock()

        def lane_worker(lane: dict[str, Any]) -> None:
            try:
                for name in lane["partitions"]:
                    part = self.partitions[name]
                    for b in part["inputs"]:
                        start_wait = time.perf_counter()
                        while not produced[b["sync"]].wait(timeout=0.5):
                            if errors:
                                return
                        waited = (time.perf_counter() - start_wait) * 1e3
                        if profile is not None:
                            with lock:
                                profile.sync_waits[b["sync"]] = max(profile.sync_waits.get(b["sync"], 0.0), waited)
                    start = time.perf_counter()
                    self._invoke(name)
                    end = time.perf_counter()
                    if profile is not None:
                        profile.partitions[name] = ((start - t0) * 1e3, (end - t0) * 1e3, lane["processor"])
                    for b in part["outputs"]:
                        if capture is not None:
                            capture[b["sync"]] = self.arena.views[self.slot_of[b["sync"]]].copy()
                        produced[b["sync"]].set()
            except BaseException as exc:  # surfaced by run() after the join
                errors.append(exc)

        threads = [threading.Thread(target=lane_worker, args=(lane,), name=f"lane-{lane['processor']}") for lane in m["schedule"]["lanes"]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        if profile is not None:
            profile.total_ms = (time.perf_counter() - t0) * 1e3
        return {info["name"]: self._to_onnx(self.arena.views[self.slot_of[info["sync"]]].copy(), info) for info in m["outputs"]}

    def run_sequential(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run every partition one after another on this thread (the baseline for parallel speedup)."""
        self._check_inputs(inputs)
        m = self.manifest
        for info in m["inputs"]:
            np.copyto(self.arena.views[self.slot_of[info["sync"]]], self._to_bundle(inputs[info["name"]], info))
        for step in m["schedule"]["steps"]:
            for name in step:
                self._invoke(name)
        return {info["name"]: self._to_onnx(self.arena.views[self.slot_of[info["sync"]]].copy(), info) for info in m["outputs"]}
