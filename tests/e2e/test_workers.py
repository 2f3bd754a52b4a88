"""Several worker processes behind one port: state shared, work spread, a dead worker replaced.

Each request here goes out on a connection of its own (``requests`` without a
session), so the kernel's SO_REUSEPORT hash spreads them over the workers.
Which worker served a request is read from the access log, whose lines each
worker prefixes with its number; a request is marked with a unique ``n=``
parameter to find its line.
"""

from __future__ import annotations

import fcntl
import os
import json
import re
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import GatewayProcess, process_tree

pytestmark = pytest.mark.timeout(120)

_ACCESS = re.compile(r"gateway\.access: worker (\d+): (\{.*\})$", re.M)
_MARK = re.compile(r"(?:^|[&;])n=(\d+)")


def served_by(gw: GatewayProcess) -> dict[int, int]:
    """Request mark ``n`` -> the worker whose access line (JSON) has it."""
    served = {}
    for worker, line in _ACCESS.findall(gw.log()):
        mark = _MARK.search(json.loads(line)["query"])
        if mark is not None:
            served[int(mark.group(1))] = int(worker)
    return served


@pytest.fixture
def gw(gateway: Callable[..., GatewayProcess]) -> GatewayProcess:
    return gateway(server={"workers": 2})


def test_an_alluxio_stream_is_written_through_both_workers(gw: GatewayProcess) -> None:
    api = f"{gw.url}/api/v1"
    user = {"user.name": "hdfs"}
    r = requests.post(f"{api}/paths//spread/create-file", params={**user, "n": 0}, json={}, timeout=10)
    assert r.status_code == 200, r.text
    stream = r.json()
    pieces = [f"piece {i:02d}\n".encode() for i in range(1, 41)]
    for i, piece in enumerate(pieces, start=1):
        r = requests.post(f"{api}/streams/{stream}/write", params={**user, "n": i}, data=piece, timeout=10,
                          headers={"Content-Type": "application/octet-stream"})
        assert (r.status_code, r.json()) == (200, len(piece)), r.text
    assert requests.post(f"{api}/streams/{stream}/close", params={**user, "n": 41}, timeout=10).status_code == 200
    assert (gw.root / "spread").read_bytes() == b"".join(pieces)
    time.sleep(0.2)  # the last access lines
    workers = set(served_by(gw).values())
    assert workers == {0, 1}, "40 connections all hashed to one worker"


def test_one_of_many_renames_to_one_destination_wins_across_workers(gw: GatewayProcess) -> None:
    """HDFS rename never replaces: racing renames, whichever worker runs them, leave one winner."""
    base = f"{gw.url}/webhdfs/v1"
    count = 24
    for i in range(count):
        r = requests.put(f"{base}/race/src{i}", params={"op": "CREATE", "data": "true", "user.name": "hdfs"},
                         data=f"source {i}".encode(), headers={"Content-Type": "application/octet-stream"},
                         timeout=10)
        assert r.status_code == 201, r.text

    def rename(i: int) -> bool:
        r = requests.put(f"{base}/race/src{i}", params={"op": "RENAME", "destination": "/race/dst",
                                                         "user.name": "hdfs", "n": i}, timeout=20)
        assert r.status_code == 200, r.text
        return bool(r.json()["boolean"])

    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(rename, range(count)))
    assert results.count(True) == 1
    winner = results.index(True)
    assert (gw.root / "race" / "dst").read_bytes() == f"source {winner}".encode()
    left = sorted(p.name for p in (gw.root / "race").iterdir())
    assert left == sorted(["dst", *(f"src{i}" for i in range(count) if i != winner)])


def test_a_killed_worker_is_replaced_and_nothing_committed_is_lost(gw: GatewayProcess) -> None:
    hoop = f"{gw.url}/kept"
    r = requests.post(hoop, params={"op": "create", "user.name": "hdfs"}, data=b"committed",
                      headers={"Content-Type": "application/octet-stream"}, timeout=10)
    assert r.status_code == 201, r.text
    workers = [pid for pid in process_tree(gw.proc.pid) if pid != gw.proc.pid]
    assert len(workers) == 2
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = [pid for pid in process_tree(gw.proc.pid) if pid != gw.proc.pid]
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no replacement worker: {process_tree(gw.proc.pid)}\n{gw.log()}")
    assert f"(pid {victim}) exited with status -9; starting a new one" in gw.log()
    # Every connection is served, whichever worker's socket the kernel picks.
    for n in range(30):
        r = requests.get(hoop, params={"op": "open", "user.name": "hdfs", "n": n}, timeout=10)
        assert (r.status_code, r.content) == (200, b"committed")
    assert gw.proc.poll() is None


def test_namespace_changes_wait_for_the_roots_namespace_lock(gw: GatewayProcess) -> None:
    """The lock that orders check-then-commit steps across processes is taken by every change.

    Racing workers rarely collide inside one short step, so the race above
    seldom shows a missing lock; holding the lock from here does, every time.
    """
    lock = os.open(gw.root / ".authgateway" / "namespace.lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(requests.put, f"{gw.url}/webhdfs/v1/held", timeout=20,
                                  params={"op": "MKDIRS", "user.name": "hdfs"})
            time.sleep(1.0)
            assert not pending.done(), pending.result().text
            assert not (gw.root / "held").exists()
            fcntl.flock(lock, fcntl.LOCK_UN)
            r = pending.result(timeout=10)
        assert (r.status_code, r.json()) == (200, {"boolean": True})
        assert (gw.root / "held").is_dir()
    finally:
        os.close(lock)


@pytest.mark.parametrize("size", [1400, 3 * 2**20 + 5])  # answered in one write; streamed
def test_the_embedded_default_answers_in_process_with_the_gateways_headers(gw: GatewayProcess, size: int) -> None:
    """Each worker hands requests to its own embedded backend: the answer still carries the
    session cookie (the gateway's hook), its URLs name the gateway, and the identity is checked."""
    body = os.urandom(size)
    session = requests.Session()  # the data step rides on the cookie
    r = session.put(f"{gw.url}/webhdfs/v1/user/bob/f", params={"op": "CREATE", "user.name": "bob"},
                    allow_redirects=False, timeout=10)
    assert r.status_code == 307 and r.headers["Location"].startswith(f"{gw.url}/webhdfs/v1/user/bob/f?")
    assert "hadoop.auth=" in r.headers["Set-Cookie"]
    r = session.put(r.headers["Location"], data=body, headers={"Content-Type": "application/octet-stream"},
                    timeout=10)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"{gw.url}/webhdfs/v1/user/bob/f"
    r = requests.get(f"{gw.url}/webhdfs/v1/user/bob/f", params={"op": "OPEN", "user.name": "bob"}, timeout=10)
    assert (r.status_code, r.content) == (200, body)
    assert "hadoop.auth=" in r.headers["Set-Cookie"]
    # The embedded port itself still refuses what the gateway did not sign.
    direct = requests.get(f"{gw.backend_url}/webhdfs/v1/user/bob/f", params={"op": "OPEN", "user.name": "bob"},
                          headers={"X-Forwarded-User": "bob"}, timeout=10)
    assert direct.status_code == 401
    assert direct.json()["RemoteException"]["exception"] == "SecurityException"


def test_concurrent_appends_through_both_workers_keep_every_piece_whole(gw: GatewayProcess) -> None:
    base = f"{gw.url}/webhdfs/v1/log"
    hdfs = {"user.name": "hdfs"}
    octets = {"Content-Type": "application/octet-stream"}
    r = requests.put(base, params={**hdfs, "op": "CREATE", "data": "true"}, data=b"", headers=octets, timeout=10)
    assert r.status_code == 201, r.text
    pieces = [bytes([65 + i]) * (256 * 1024 + i) for i in range(20)]  # each big enough to take several writes

    def append(i: int) -> int:
        r = requests.post(base, params={**hdfs, "op": "APPEND", "data": "true", "n": i}, data=pieces[i],
                          headers=octets, timeout=30)
        return r.status_code

    with ThreadPoolExecutor(len(pieces)) as pool:
        assert list(pool.map(append, range(len(pieces)))) == [200] * len(pieces)
    data = (gw.root / "log").read_bytes()
    assert len(data) == sum(map(len, pieces))
    # Each piece lies in one run: no append interleaved with another.
    found = sorted(len(m.group()) for m in re.finditer(rb"([A-T])\1*", data))
    assert found == sorted(map(len, pieces)), "an append was interleaved with another"
    time.sleep(0.2)
    assert set(served_by(gw).values()) == {0, 1}
