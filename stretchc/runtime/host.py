"""The host reference runtime: runs a bundle on this machine exactly as its manifest says.

- Reads only the manifest and the partition files, through the one bundle check every command runs
  (`stretchc.bundle.validate`), which refuses bad bundles first and hands over each partition's model loaded.
- One worker thread per lane of the schedule (a processor's, or one of a processor's lanes); each lane runs its partitions in order, each
  partition starting once every sync point it reads has been produced, so partitions on different lanes
  run at the same time. LiteRT releases the GIL while a model runs, so the threads really overlap.
- Boundary tensors live in one arena laid out by the manifest's buffer plan; a partition reads its inputs
  from their slots and writes its outputs into theirs. (The Python interpreter API cannot bind external
  memory to a tensor, so each partition copies its boundary tensors in and out; the C++ runtime binds the
  arena directly.)
- Every partition runs on this machine's CPU: the file its backend names (`Backend.host_file`: a partition's
  own file, or its CPU fallback), and what differs from the phone is said once per kind (`Backend.host_notes`:
  e.g. GPU partitions on the CPU, fp16 ones in float32, DSP partitions through their CPU fallback).
- Model inputs and outputs are in the ONNX model's layout and dtype; the runtime applies the manifest's
  permutation, and quantizes / dequantizes a model tensor the bundle holds as int8 or uint8 (`--io-dtype`).
- int8 sync points are bytes like any other: a partition reads and writes them in its own dtype.
- A watchdog ends a run that cannot go on: at once when every unfinished lane waits for a sync point nobody
  can produce any more (a deadlock the validator should have refused), and after `stall_timeout` seconds
  without a partition starting or finishing; the error names each waiting partition and what it waits for.
  Lane threads are daemons and the main thread never blocks for long, so Ctrl-C ends a run promptly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stretchc.backends import backend
from stretchc.bundle.validate import CheckedBundle, validate_bundle
from stretchc.console import get_console
from stretchc.errors import StretchError
from stretchc.ir import lane_name
from stretchc.precision import dequantize_array, quantize_array


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
        try:
            raw = np.zeros(size + 64, dtype=np.uint8)
        except MemoryError:
            raise StretchError("resource-limit", f"cannot allocate the bundle's {size}-byte arena on this machine") from None
        start = (-raw.ctypes.data) % 64
        self.bytes = raw[start : start + size]
        self.views: dict[str, np.ndarray] = {}
        for slot in buffers["slots"]:
            dtype = np.dtype(slot["dtype"])
            count = int(np.prod(slot["shape"], dtype=np.int64)) if slot["shape"] else 1
            view = self.bytes[slot["offset"] : slot["offset"] + count * dtype.itemsize].view(dtype)
            self.views[slot["name"]] = view.reshape(slot["shape"])


DEFAULT_STALL_TIMEOUT = 300.0  # seconds without a partition starting or finishing before a run is ended


class _RunState:
    """What every lane of one run is doing, under one condition variable, and the watchdog over it."""

    def __init__(self, manifest: dict[str, Any], produced: set[str]) -> None:
        self.cond = threading.Condition()
        self.produced = set(produced)
        self.producer = {s["name"]: s["producer"] for s in manifest["sync_points"]}
        self.queued = {lane_name(lane["processor"], lane["index"]): list(lane["partitions"]) for lane in manifest["schedule"]["lanes"]}
        self.doing: dict[str, tuple[str, str, str, float]] = {}  # lane -> (what, partition, sync, since)
        self.error: BaseException | None = None
        self.stopped = False
        self.last_progress = time.monotonic()

    def wait_for(self, lane: str, part: str, sync: str) -> float | None:
        """Block until `sync` is produced: the seconds waited, or None if the run was stopped."""
        start = time.monotonic()
        with self.cond:
            self.doing[lane] = ("waits", part, sync, start)
            self.cond.notify_all()
            while sync not in self.produced and not self.stopped:
                self.cond.wait()
            return None if self.stopped else time.monotonic() - start

    def starts(self, lane: str, part: str) -> None:
        with self.cond:
            self.queued[lane].remove(part)
            self.doing[lane] = ("runs", part, "", time.monotonic())
            self.last_progress = time.monotonic()

    def finishes(self, lane: str, syncs: list[str]) -> None:
        with self.cond:
            self.produced.update(syncs)
            self.doing.pop(lane, None)
            self.last_progress = time.monotonic()
            self.cond.notify_all()

    def lane_done(self, lane: str) -> None:
        with self.cond:
            self.doing[lane] = ("done", "", "", time.monotonic())
            self.cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            if self.error is None:
                self.error = exc
            self.cond.notify_all()

    def _deadlocked(self) -> bool:
        """Every unfinished lane waits for a sync point not yet produced, and no partition runs."""
        if len(self.doing) < len(self.queued):
            return False  # a lane is between a partition's end and its next wait
        states = [d for d in self.doing.values() if d[0] != "done"]
        return bool(states) and all(d[0] == "waits" and d[2] not in self.produced for d in states)

    def _stall_message(self, why: str) -> str:
        now = time.monotonic()
        rows = []
        for lane in sorted(self.doing):
            what, part, sync, since = self.doing[lane]
            if what == "waits":
                rows.append(f"lane {lane}: {part} waits for {sync} (from {self.producer[sync]})")
            elif what == "runs":
                rows.append(f"lane {lane}: {part} has run for {now - since:.1f} s")
        later = [p for lane in sorted(self.queued) for p in self.queued[lane] if self.doing.get(lane, ("",) * 2)[1] != p]
        if later:
            rows.append(f"not started: {', '.join(later)}")
        return f"{why}: {'; '.join(rows)}"

    def watch(self, stall_timeout: float) -> None:
        """Return when every lane is done; raise the first lane error or StretchError("run-stalled").

        Waits in short slices so that Ctrl-C reaches this (the main) thread promptly; on any exit with an
        error, the lanes are told to stop.
        """
        try:
            with self.cond:
                while True:
                    if self.error is not None:
                        raise self.error
                    if len(self.doing) == len(self.queued) and all(d[0] == "done" for d in self.doing.values()):
                        return
                    if self._deadlocked():
                        raise StretchError("run-stalled", self._stall_message("the run cannot go on (deadlock)"))
                    idle = time.monotonic() - self.last_progress
                    if idle > stall_timeout:
                        raise StretchError("run-stalled", self._stall_message(f"no progress for {idle:.0f} s (--stall-timeout)"))
                    self.cond.wait(timeout=min(0.25, max(stall_timeout - idle, 0.01)))
        finally:
            with self.cond:
                self.stopped = True
                self.cond.notify_all()


class HostRuntime:
    """A loaded bundle, ready to run many times."""

    def __init__(self, bundle: str | Path, checked: CheckedBundle | None = None) -> None:
        """Load `bundle`, checked by `validate_bundle` (or `checked`: what it returned for this bundle)."""
        self.bundle = Path(bundle)
        checked = checked or validate_bundle(self.bundle)
        self.manifest = m = checked.manifest
        self.arena = _Arena(m["buffers"])
        self.slot_of = {s["name"]: s["slot"] for s in m["sync_points"]}
        self.partitions = {p["name"]: p for p in m["partitions"]}
        self.interpreters = {name: loaded.interpreter for name, loaded in checked.partitions.items()}
        self.io = {name: (loaded.inputs, loaded.outputs) for name, loaded in checked.partitions.items()}
        # how the host runs each partition, where that differs from the phone
        notes = {note for p in m["partitions"] for note in backend(p["processor"]).host_notes(p)}
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
            held = [info["bundle_dtype"]] if info["quant"] is not None else []  # a quantized input may come quantized
            if arr.dtype not in [np.dtype(d) for d in [info["dtype"], *held]]:
                raise StretchError("bad-input-data", f"input {name!r} has dtype {arr.dtype}, expected {' or '.join([info['dtype'], *held])}")

    @staticmethod
    def _to_bundle(arr: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        if info["layout"] == "NCHW":
            arr = np.transpose(arr, info["perm"])
        q = info["quant"]
        if q is not None and arr.dtype != np.dtype(info["bundle_dtype"]):
            arr = quantize_array(arr, q["scale"][0], q["zero_point"][0], info["bundle_dtype"])
        return arr.reshape(info["bundle_shape"])

    @staticmethod
    def _to_onnx(arr: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        q = info["quant"]
        if q is not None:
            arr = dequantize_array(arr, q["scale"][0], q["zero_point"][0]).astype(info["dtype"])
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
        try:
            it.invoke()
        except RuntimeError as exc:  # a kernel refusing these inputs (say, a Gather index out of range)
            detail = " ".join(str(exc).split())[:300]
            raise StretchError("bad-input-data", f"partition {name} cannot run on these inputs: {detail}", file=str(self.bundle)) from None
        for index, slot in outs:
            np.copyto(self.arena.views[slot], it.tensor(index)())

    def run(
        self,
        inputs: dict[str, np.ndarray],
        *,
        profile: Profile | None = None,
        capture: dict[str, np.ndarray] | None = None,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    ) -> dict[str, np.ndarray]:
        """Run once; returns the outputs by ONNX name in ONNX layout.

        Fills `profile` when given; with `capture`, records a copy of every sync point's value as it is
        produced (slots may share arena bytes, so reading them after the run is not enough). Raises
        StretchError("run-stalled") when the watchdog ends the run (see the module docstring).
        """
        self._check_inputs(inputs)
        m = self.manifest
        for info in m["inputs"]:
            np.copyto(self.arena.views[self.slot_of[info["sync"]]], self._to_bundle(inputs[info["name"]], info))
        state = _RunState(m, {info["sync"] for info in m["inputs"]})
        t0 = time.perf_counter()

        def lane_worker(lane: dict[str, Any]) -> None:
            proc = lane_name(lane["processor"], lane["index"])
            try:
                for name in lane["partitions"]:
                    part = self.partitions[name]
                    for b in part["inputs"]:
                        waited = state.wait_for(proc, name, b["sync"])
                        if waited is None:
                            return  # the run was stopped
                        if profile is not None:
                            with state.cond:
                                profile.sync_waits[b["sync"]] = max(profile.sync_waits.get(b["sync"], 0.0), waited * 1e3)
                    state.starts(proc, name)
                    start = time.perf_counter()
                    self._invoke(name)
                    end = time.perf_counter()
                    if profile is not None:
                        profile.partitions[name] = ((start - t0) * 1e3, (end - t0) * 1e3, proc)
                    if capture is not None:
                        for b in part["outputs"]:
                            capture[b["sync"]] = self.arena.views[self.slot_of[b["sync"]]].copy()
                    state.finishes(proc, [b["sync"] for b in part["outputs"]])
                state.lane_done(proc)
            except BaseException as exc:  # surfaced by the watching thread
                state.fail(exc)

        for lane in m["schedule"]["lanes"]:
            threading.Thread(target=lane_worker, args=(lane,), name=f"lane-{lane_name(lane['processor'], lane['index'])}", daemon=True).start()
        state.watch(stall_timeout)
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
