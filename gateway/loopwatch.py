"""Watch a worker's event loop for stalls: stretches of work that hold it too long.

One worker serves every connection on one thread.  A callback that runs for
100 ms (a pathological glob, a blocking system call, a quadratic walk) makes
every other request of that worker wait 100 ms, and nothing in the access
log says why.  :class:`LoopWatch` finds out from the loop itself: a timer
due every quarter of the threshold measures how late it runs.  A timer can
only be late because the loop was busy with something else, or because the
operating system did not run the thread at all; the second part is not the
gateway's doing (a loaded machine, other processes on a shared CPU), so the
time the thread spent runnable but waiting for a CPU (Linux's ``run_delay``,
the second field of ``/proc/thread-self/schedstat``) is subtracted.  What is
left is time the loop was held: by our own code on the CPU, or blocked in a
system call (a lock, a disk, a name service).  Past the threshold it is
logged on ``gateway.server`` ("event loop blocked for N ms") and counted by
the caller's ``on_stall`` (the admin listener's
``authgateway_loop_stall_seconds``).

Accuracy: the held time is a lower bound of the stall.  A stall that began
up to one period before the timer was due is measured short by that much,
and a CPU wait in that period is subtracted although it delayed nothing;
so a stall longer than the threshold plus one period (1.25 x the
threshold) is always reported, a shorter one past the threshold usually.
Time a virtual machine's hypervisor took away (steal) is not in
``run_delay`` and counts as held.  Without ``/proc/thread-self/schedstat``
(not Linux, or a kernel without ``CONFIG_SCHED_INFO``) nothing is
subtracted: a busy machine then shows as stalls, and the start says so.

Cost: nothing per request.  Per period one timer callback, one clock read
and one ``pread`` of the schedstat file kept open: a few microseconds,
four times per threshold (with the default 0.1 s, 40 wake-ups a second per
worker; README "Metrics" has the measured CPU time).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from gateway.log import server_logger

__all__ = ("CHECKS_PER_THRESHOLD", "LoopWatch", "SCHEDSTAT")

SCHEDSTAT = "/proc/thread-self/schedstat"
# Periods per threshold: a stall is measured short by at most one period.
CHECKS_PER_THRESHOLD = 4
_NS = 1e-9


class LoopWatch:
    """Report stalls of the running loop longer than ``threshold`` seconds.

    Create and :meth:`start` it on the loop's own thread (the schedstat file
    read is that thread's); :meth:`stop` before the loop closes.  Each stall
    is logged, passed to ``on_stall(held_seconds)`` and kept in
    :attr:`longest` and :attr:`stalls`.
    """

    def __init__(self, threshold: float, on_stall: Callable[[float], object] | None = None) -> None:
        if threshold <= 0:
            raise ValueError("threshold must be positive")
        self.threshold = threshold
        self.period = threshold / CHECKS_PER_THRESHOLD
        self.longest = 0.0  # seconds: the longest stall past the threshold so far
        self.stalls = 0
        self._on_stall = on_stall
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._fd = -1
        self._due = 0.0
        self._on_cpu = 0  # ns, schedstat's first field at the last check
        self._run_delay = 0  # ns, its second

    @property
    def discounts_cpu_wait(self) -> bool:
        """Whether the time spent waiting for a CPU is told apart (schedstat could be read)."""
        return self._fd >= 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self._fd = os.open(SCHEDSTAT, os.O_RDONLY | os.O_CLOEXEC)
            self._on_cpu, self._run_delay = self._read_schedstat()
        except (OSError, ValueError, IndexError):
            self._close()
            server_logger.warning(
                "cannot read %s: event loop stalls include time spent waiting for a CPU", SCHEDSTAT
            )
        self._schedule(time.monotonic())

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._close()

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _read_schedstat(self) -> tuple[int, int]:
        # schedstat: "<ns on the CPU> <ns runnable, waiting for one> <timeslices>"
        on_cpu, run_delay, _ = os.pread(self._fd, 96, 0).split()
        return int(on_cpu), int(run_delay)

    def _schedule(self, now: float) -> None:
        assert self._loop is not None
        self._due = now + self.period
        self._handle = self._loop.call_later(self.period, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        late = now - self._due
        waited = ran = -1.0
        if self._fd >= 0:
            try:
                on_cpu, run_delay = self._read_schedstat()
            except (OSError, ValueError):  # never seen; stop discounting rather than fail
                self._close()
            else:
                ran, waited = (on_cpu - self._on_cpu) * _NS, (run_delay - self._run_delay) * _NS
                self._on_cpu, self._run_delay = on_cpu, run_delay
        held = late - max(waited, 0.0)
        if held > self.threshold:
            self._stalled(held, ran, waited)
        self._schedule(now)

    def _stalled(self, held: float, ran: float, waited: float) -> None:
        self.stalls += 1
        self.longest = max(self.longest, held)
        if waited < 0:
            server_logger.warning("event loop blocked for %.0f ms (pid %d)", held * 1000, os.getpid())
        else:
            # On the CPU: our code computing; the rest of the held time: blocked in a system call (a lock,
            # the disk, a name service).  Both figures cover the whole time since the last check.
            server_logger.warning(
                "event loop blocked for %.0f ms (pid %d; %.0f ms on the CPU since the last check; %.0f ms more "
                "spent waiting for a CPU, not counted)",
                held * 1000, os.getpid(), ran * 1000, waited * 1000,
            )
        if self._on_stall is not None:
            self._on_stall(held)
