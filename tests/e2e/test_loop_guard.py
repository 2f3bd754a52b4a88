"""The loop-latency guard over real gateways: what it catches, what it leaves alone.

tests/conftest.py fails any test whose requests held a gateway worker's event
loop longer than LOOP_STALL_BOUND; the gateways log each stall themselves
(gateway.loopwatch).  These tests check that chain end to end: a worker that
does not run is seen, by pid, in the log and in the admin metrics; a filter
that backtracked on the loop for seconds before item 3 of issue 16 (linear
glob matching) now answers without a stall the guard would fail.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LOOP_STALL_BOUND, GatewayProcess, free_port, process_tree

pytestmark = pytest.mark.timeout(120)


def _wait_for_stalls(gw: GatewayProcess, n: int, timeout: float = 10.0) -> list[tuple[int, float]]:
    deadline = time.monotonic() + timeout
    while len(stalls := gw.loop_stalls()) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return stalls


@pytest.mark.stalls_loop("stops the gateway's processes for 300 ms to see the guard notice")
def test_a_worker_that_does_not_run_is_reported_by_pid_in_the_log_and_the_metrics(
    gateway: Callable[..., GatewayProcess],
) -> None:
    # Whatever keeps a worker from running while it is not waiting for a CPU (here SIGSTOP, in real life a
    # blocking call or a long computation) delays every request of that worker: the watch must see it.
    admin = f"127.0.0.1:{free_port()}"
    gw = gateway(admin={"listen": admin})
    http = requests.Session()
    assert http.get(f"{gw.url}/?op=homedir&user.name=alice", timeout=10).status_code == 200
    tree = process_tree(gw.proc.pid)
    workers = [pid for pid in tree if pid != gw.proc.pid] or [gw.proc.pid]
    assert gw.loop_stalls() == []
    for pid in tree:
        os.kill(pid, signal.SIGSTOP)
    time.sleep(0.3)
    for pid in tree:
        os.kill(pid, signal.SIGCONT)
    assert http.get(f"{gw.url}/?op=homedir", timeout=10).status_code == 200
    stalls = _wait_for_stalls(gw, len(workers))
    assert sorted(pid for pid, _ in stalls) == sorted(workers), gw.log()
    # Measured short by at most a period (a quarter of the suite's threshold), never longer than it was.
    assert all(0.3 - LOOP_STALL_BOUND <= held <= 1.0 for _, held in stalls), stalls
    text = requests.get(f"http://{admin}/metrics", timeout=10).text
    count = {
        s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
        if s.name.startswith("authgateway_loop_stall_seconds_")
    }
    assert count["authgateway_loop_stall_seconds_count"] == len(workers)
    logged = sum(held for _, held in stalls)  # the log rounds to whole milliseconds
    assert count["authgateway_loop_stall_seconds_sum"] == pytest.approx(logged, abs=0.001 * len(workers))


def test_a_pathological_list_filter_does_not_hold_the_loop(gateway: Callable[..., GatewayProcess]) -> None:
    gw = gateway()
    http = requests.Session()
    assert http.get(f"{gw.url}/?op=homedir&user.name=alice", timeout=10).status_code == 200
    for i in range(4):
        assert http.post(f"{gw.url}/user/alice/{'a' * 31}{i}?op=mkdirs", timeout=10).status_code == 200
    answer = http.get(f"{gw.url}/user/alice?op=list&filter=*a*a*a*a*a*a*a*a*a*a*b", timeout=60)
    assert answer.status_code == 200 and answer.json() == []
