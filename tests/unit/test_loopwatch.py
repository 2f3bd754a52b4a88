"""gateway.loopwatch on a real uvloop loop: a held loop is reported, a starved one is not."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import uvloop

from gateway.loopwatch import SCHEDSTAT, LoopWatch
from tests.conftest import LOOP_STALL_BOUND, REPO


def _run(coro_fn: object) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro_fn)  # type: ignore[arg-type]


def test_a_loop_held_by_a_blocking_call_is_reported_with_how_long(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[float] = []

    async def main() -> LoopWatch:
        watch = LoopWatch(0.02, seen.append)
        watch.start()
        await asyncio.sleep(0.05)
        asyncio.get_running_loop().call_soon(time.sleep, 0.2)  # off the CPU, in a system call: held all the same
        await asyncio.sleep(0.1)
        watch.stop()
        return watch

    caplog.set_level(logging.WARNING, "gateway.server")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        watch = runner.run(main())
    assert watch.stalls == 1 and len(seen) == 1
    # At most one period (5 ms) short, and never more than the block plus scheduling noise.
    assert 0.19 <= watch.longest == seen[0] <= 0.3
    assert f"event loop blocked for {seen[0] * 1000:.0f} ms (pid {os.getpid()};" in caplog.text
    assert _on_cpu_ms(caplog.text) < 50  # it slept: the line tells a blocking call from a computation


def _on_cpu_ms(text: str) -> int:
    found = re.search(r"; (\d+) ms on the CPU since the last check;", text)
    assert found, text
    return int(found[1])


def test_a_loop_held_on_the_cpu_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> LoopWatch:
        watch = LoopWatch(0.02)
        watch.start()
        await asyncio.sleep(0.03)
        end = time.thread_time() + 0.12
        while time.thread_time() < end:  # a long computation: 120 ms on the CPU, however long that takes
            pass
        await asyncio.sleep(0.05)
        watch.stop()
        return watch

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        watch = runner.run(main())
    assert watch.stalls == 1 and 0.1 <= watch.longest <= 0.2
    assert _on_cpu_ms(caplog.text) >= 120


def test_short_callbacks_and_idle_time_are_not_stalls() -> None:
    async def main() -> LoopWatch:
        watch = LoopWatch(0.02)
        watch.start()
        for _ in range(100):
            end = time.thread_time() + 0.002
            while time.thread_time() < end:
                pass
            await asyncio.sleep(0.003)
        await asyncio.sleep(0.2)
        watch.stop()
        return watch

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        watch = runner.run(main())
    assert (watch.stalls, watch.longest) == (0, 0.0)


def test_stop_cancels_the_timer_and_closes_the_file() -> None:
    async def main() -> None:
        before = set(os.listdir("/proc/self/fd"))
        watch = LoopWatch(0.02)
        watch.start()
        assert watch.discounts_cpu_wait
        watch.stop()
        assert set(os.listdir("/proc/self/fd")) <= before
        loop = asyncio.get_running_loop()
        assert not [h for h in getattr(loop, "_scheduled", ()) if not h.cancelled()]

    _run(main())


def test_a_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LoopWatch(0)


# A loop doing short work (1 ms at a time) in a process at nice 19 that shares one CPU with three busy
# processes at nice 0: the kernel runs it a small share of the time, so its timers run very late by the
# clock, but the loop itself is never held.  It prints the watch's verdict and the lateness a naive
# watch (wall clock only) would have seen.
_STARVED = """
import asyncio, json, os, sys, time
import uvloop
from gateway.loopwatch import LoopWatch

async def main():
    watch = LoopWatch(float(sys.argv[1]))
    watch.start()
    naive = 0.0
    async def wall_clock():
        nonlocal naive
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.005)
            naive = max(naive, time.monotonic() - before - 0.005)
    task = asyncio.create_task(wall_clock())
    end = time.monotonic() + 3
    while time.monotonic() < end:
        spin = time.thread_time() + 0.001
        while time.thread_time() < spin:
            pass
        await asyncio.sleep(0.002)
    task.cancel()
    watch.stop()
    print(json.dumps({"stalls": watch.stalls, "longest": watch.longest, "naive": naive}), flush=True)
    os._exit(0)  # at nice 19 on a busy CPU, the interpreter's finalization would take seconds

os.setpriority(os.PRIO_PROCESS, 0, 19)
uvloop.run(main())
"""


def _wait_until_busy(pids: list[int], timeout: float = 30.0) -> None:
    """Until each of ``pids`` has spent 100 ms on a CPU (past its start-up, spinning)."""
    deadline = time.monotonic() + timeout
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        while True:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            if int(fields[11]) / ticks >= 0.1:  # utime
                break
            assert time.monotonic() < deadline, "the busy processes did not get going"
            time.sleep(0.05)


@pytest.mark.skipif(not os.path.exists(SCHEDSTAT), reason="needs Linux schedstat (CONFIG_SCHED_INFO)")
def test_time_spent_waiting_for_a_cpu_is_not_a_stall() -> None:
    cpu = min(os.sched_getaffinity(0))

    def pinned() -> None:
        os.sched_setaffinity(0, {cpu})

    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=pinned) for _ in range(3)
    ]
    try:
        _wait_until_busy([hog.pid for hog in hogs])
        done = subprocess.run(
            [sys.executable, "-c", _STARVED, str(LOOP_STALL_BOUND)], cwd=REPO, preexec_fn=pinned,
            capture_output=True, text=True, timeout=60, check=True,
        )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    verdict = json.loads(done.stdout)
    # The contention was real: by the clock alone its loop looked stalled past the bound...
    assert verdict["naive"] > 2 * LOOP_STALL_BOUND, verdict
    # ...yet nothing held it.
    assert verdict["stalls"] == 0, (verdict, done.stderr)


@pytest.mark.parametrize("value, problem", [
    (-1, "log.loop_stall = -1.0: must be between 0 (off) and 60 seconds"),
    (61, "log.loop_stall = 61.0: must be between 0 (off) and 60 seconds"),
    (0.001, "log.loop_stall = 0.001: must be 0 (off) or at least 0.004 seconds"),
])
def test_log_loop_stall_is_validated(value: float, problem: str) -> None:
    from gateway.config import ConfigError, load_config

    with pytest.raises(ConfigError) as caught:
        load_config(env={"AUTHGATEWAY_LOG__LOOP_STALL": str(value)})
    named = problem.replace("log.loop_stall", "AUTHGATEWAY_LOG__LOOP_STALL")  # named as it was given
    assert any(p.startswith(named) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("value", ["0", "0.004", "0.1", "60"])
def test_log_loop_stall_accepts_off_and_sane_thresholds(value: str) -> None:
    from gateway.config import load_config

    assert load_config(env={"AUTHGATEWAY_LOG__LOOP_STALL": value}).log.loop_stall == float(value)
