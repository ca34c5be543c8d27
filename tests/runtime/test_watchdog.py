"""The host runtime's watchdog: a run that cannot go on ends with an error naming who waits for what, and
Ctrl-C ends a hung run promptly (a real subprocess, a real SIGINT)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stretchc.errors import StretchError
from stretchc.runtime.host import HostRuntime
from stretchc.verify import seeded_inputs

from tests.conftest import REPO


def test_deadlocked_lanes_end_at_once_naming_the_waiters(example_bundle: Path) -> None:
    rt = HostRuntime(example_bundle)
    lane = next(la for la in rt.manifest["schedule"]["lanes"] if la["processor"] == "cpu")
    lane["partitions"].reverse()  # what the validator refuses (schedule-order), applied after loading
    start = time.monotonic()
    with pytest.raises(StretchError) as info:
        rt.run(seeded_inputs(rt.manifest, 0), stall_timeout=600)
    assert time.monotonic() - start < 5
    err = info.value
    assert err.code == "run-stalled" and "deadlock" in err.message
    assert "lane cpu: s2.join+head waits for sync" in err.message and "lane gpu: s1.b1 waits for sync1 (from stem)" in err.message
    assert "not started: " in err.message and "stem" in err.message.split("not started: ")[1]


def test_a_partition_that_never_ends_is_reported_after_the_stall_timeout(example_bundle: Path) -> None:
    rt = HostRuntime(example_bundle)
    invoke = rt._invoke

    def hang_in_s1_b1(name: str) -> None:  # stands in for a delegate that never returns
        if name == "s1.b1":
            time.sleep(3)
        invoke(name)

    rt._invoke = hang_in_s1_b1  # type: ignore[method-assign]
    start = time.monotonic()
    with pytest.raises(StretchError) as info:
        rt.run(seeded_inputs(rt.manifest, 0), stall_timeout=0.5)
    assert time.monotonic() - start < 2.5
    assert info.value.code == "run-stalled" and "lane gpu: s1.b1 has run for" in info.value.message
    assert "lane cpu: s1.join waits for sync3 (from s1.b1)" in info.value.message


HUNG_RUN = """
import sys, time
from stretchc.cli import main
from stretchc.runtime.host import HostRuntime
invoke = HostRuntime._invoke
def hang(self, name):
    if name == "s1.b1":
        print("hung", flush=True)
        time.sleep(120)
    invoke(self, name)
HostRuntime._invoke = hang
sys.exit(main(["run", sys.argv[1], "--seed", "0", "-q"]))
"""


def test_ctrl_c_ends_a_hung_run_promptly(example_bundle: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HUNG_RUN, str(example_bundle)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "hung"
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    assert rc == 130, err
    assert elapsed < 3, elapsed
    assert err.strip().splitlines() == ["error[interrupted]: interrupted (Ctrl-C)"], err
    assert "Traceback" not in err
