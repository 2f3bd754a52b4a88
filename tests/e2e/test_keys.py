"""Keys that rotate live across several gateways sharing one keys file.

Three real gateways (two worker processes each) on loopback read one keys
file.  Clients with cookie jars hop between them: each session is opened at
one gateway and then used at all three, and sessions are renewed all the
time, so cookies are issued by every gateway before, during and after the
rotation.  In the middle the key is rotated with ``authgateway keys rotate``
(the new key published first, signing a few seconds later), and once the old
key is past the cookie validity it is retired with ``authgateway keys
retire``.  No request may fail: every session a client holds is young
enough to be valid, so any 401 would be a cookie one gateway issued and
another refused.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from gateway.cookie import CookieCodec, KeyRing, SessionToken
from gateway.keys import read_keys
from tests.conftest import REPO, GatewayProcess

pytestmark = pytest.mark.timeout(120)

Start = Callable[..., GatewayProcess]
VALIDITY = 6  # seconds: short, so that the old key can be retired within the test
RENEW = 1.5  # seconds a client keeps a session before it opens a new one (well inside VALIDITY)
DELAY = 3  # seconds between publishing the new key and signing with it


def keys_command(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", *args], cwd=REPO, capture_output=True, text=True, timeout=30,
        env={k: v for k, v in os.environ.items() if not k.startswith("AUTHGATEWAY_")},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def cookie_of(session: requests.Session) -> str:
    values = [c.value for c in session.cookies if c.name == "hadoop.auth"]
    assert len(values) == 1, values
    return str(values[0])


class Load:
    """Clients hopping between gateways until stopped; every answer must be 200."""

    def __init__(self, gateways: list[GatewayProcess], clients: int) -> None:
        self.gateways = gateways
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.requests = 0
        self.issued: dict[str, set[int]] = {}  # key id -> the gateways that issued cookies with it
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(clients)]

    def client(self, n: int) -> None:
        rng = random.Random(n)
        sessions = 0
        while not self.stop.is_set():
            with requests.Session() as session:  # a new session: a new cookie jar
                issuer = (n + sessions) % len(self.gateways)  # each client opens sessions at each gateway in turn
                sessions += 1
                self.call(session, issuer, {"user.name": f"user{n}"})
                if not session.cookies:
                    continue
                kid = cookie_of(session).partition(".")[0]
                with self.lock:
                    self.issued.setdefault(kid, set()).add(issuer)
                opened = time.monotonic()
                # The new cookie at every gateway, then wherever the load balancer sends it.
                for g in range(len(self.gateways)):
                    self.call(session, g)
                while time.monotonic() - opened < RENEW and not self.stop.is_set():
                    self.call(session, rng.randrange(len(self.gateways)))

    def call(self, session: requests.Session, g: int, params: dict[str, str] | None = None) -> None:
        gw = self.gateways[g]
        try:
            r = session.get(f"{gw.url}/", params={"op": "status", **(params or {})}, timeout=10)
            ok, what = r.status_code == 200, f"{r.status_code} {r.text[:200]}"
        except requests.RequestException as exc:
            ok, what = False, repr(exc)
        with self.lock:
            self.requests += 1
            if not ok:
                self.failures.append(f"gateway {g} at {time.strftime('%H:%M:%S')}: {what}")

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def status_with(gw: GatewayProcess, cookie: str) -> int:
    r = requests.get(f"{gw.url}/", params={"op": "status"}, cookies={"hadoop.auth": cookie}, timeout=10)
    return r.status_code


def test_a_rotation_and_a_retire_under_load_across_three_gateways(gateway: Start, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys_command("new", str(keys))
    (first,) = read_keys(keys)
    settings = {"cookie": {"keys_file": str(keys), "validity": VALIDITY}, "server": {"workers": 2}}
    gateways = [gateway(**settings) for _ in range(3)]
    config = gateways[0].config_path

    # A session that would last: signed with the first key, to see it refused once that key is retired.
    now = int(time.time())
    lasting = CookieCodec(KeyRing(named=[first]), schemes=["simple"]).encode(
        SessionToken("carol", "carol", "simple", now, now + 3600)
    )
    assert [status_with(gw, lasting) for gw in gateways] == [200, 200, 200]

    with Load(gateways, clients=6) as load:
        time.sleep(2)
        out = keys_command("rotate", "--config", str(config), "--delay", str(DELAY))
        rotated_at = time.time()
        second = next(k for k in read_keys(keys) if k.id != first.id)
        assert f"added key {second.id}" in out
        # Every gateway's every worker reads the new file within a second or so.
        for gw in gateways:
            wait_for("the rotation to be read", lambda: gw.log().count(f"changed): {second.id} (") >= 2)
        # The old key stops signing at second.signs_from; its last cookies run out VALIDITY later.
        wait_for("the new key to sign", lambda: second.id in load.issued, timeout=DELAY + 10)
        for gw in gateways:  # each worker says when it switched
            wait_for("the switch", lambda: gw.log().count(f"key {second.id} signs new cookies from now on") == 2)
        time.sleep(max(0.0, second.signs_from + VALIDITY + 0.5 - time.time()))
        listing = keys_command("list", "--config", str(config))
        assert f"{first.id}  " in listing and "retirable" in listing, listing
        out = keys_command("retire", "--config", str(config))
        assert out.strip() == f"retired from {keys}: {first.id}"
        for gw in gateways:
            wait_for("the retire to be read", lambda: gw.log().count(f"keys reloaded ({keys} changed): {second.id} (signing)\n") >= 2)
        time.sleep(2)  # sessions go on after the retire

    assert load.failures == [], f"{len(load.failures)} of {load.requests} requests failed: {load.failures[:10]}"
    assert load.requests > 200, load.requests
    # Cookies of both keys were issued, by every gateway, and each was accepted by all three.
    assert load.issued.get(first.id) == {0, 1, 2}, load.issued
    assert load.issued.get(second.id) == {0, 1, 2}, load.issued
    assert set(load.issued) == {first.id, second.id}
    assert rotated_at < second.signs_from <= rotated_at + DELAY
    # The retired key verifies nothing any more, anywhere.
    assert [status_with(gw, lasting) for gw in gateways] == [401, 401, 401]
    assert [k.id for k in read_keys(keys)] == [second.id]
    for gw in gateways:
        assert "keys not reloaded" not in gw.log()


def test_a_keys_file_others_may_read_is_refused_at_start_and_on_reload(gateway: Start, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys_command("new", str(keys))
    gw = gateway(cookie={"keys_file": str(keys)}, server={"workers": 1})
    before = requests.get(f"{gw.url}/", params={"op": "status", "user.name": "bob"}, timeout=10)
    assert before.status_code == 200
    cookie = before.cookies["hadoop.auth"]
    (only,) = read_keys(keys)
    assert cookie.startswith(only.id + ".")

    keys.chmod(0o640)
    os.utime(keys)  # a change the watcher sees
    wait_for("the refusal", lambda: "keys not reloaded" in gw.log())
    line = next(line for line in gw.log().splitlines() if "keys not reloaded" in line)
    assert line.endswith(
        f"keys not reloaded ({keys} changed): {keys} is open to group or other users (mode 0640); "
        f"it holds signing keys: chmod 600 {keys}; the keys in force are kept"
    )
    # The keys in force still verify.
    assert status_with(gw, cookie) == 200

    check = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(gw.config_path)],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert check.returncode == 2
    assert (
        f"  cookie.keys_file = '{keys}': is open to group or other users (mode 0640); it holds signing keys: "
        f"chmod 600 {keys}\n"
    ) in check.stderr


def test_concurrent_rotations_each_add_their_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys_command("new", str(keys))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gateway", "keys", "rotate", str(keys)], cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(8)
    ]
    added = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        added.append(out.split()[2])
    assert sorted(k.id for k in read_keys(keys)) == sorted([*added, read_keys(keys)[-1].id])
    assert len(read_keys(keys)) == 9
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    doc = json.loads(keys.read_text())
    assert [set(entry) for entry in doc["keys"]] == [{"id", "created", "signs_from", "secret"}] * 9
