"""Service life of the real ``authgateway serve``: SIGHUP reloads, systemd's notifications.

The gateway runs two worker processes, so a reload is seen going from the
supervisor (which receives the SIGHUP) to every worker.  Requests go out on
fresh connections, which the kernel spreads over the workers, except where a
test keeps one connection to show it survives the reload.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.config import ServerConfig
from tests.conftest import REPO, GatewayProcess, to_toml

pytestmark = pytest.mark.timeout(90)

Start = Callable[..., GatewayProcess]


def rewrite(gw: GatewayProcess, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the gateway's configuration file atomically, as an operator's editor or tool would."""
    settings = tomllib.loads(gw.config_path.read_text())
    change(settings)
    tmp = gw.config_path.with_suffix(".new")
    tmp.write_text(to_toml(settings))
    tmp.replace(gw.config_path)


def wait_for_log(gw: GatewayProcess, pattern: str, count: int = 1, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in gw.log().splitlines() if re.search(pattern, line)]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"no {pattern!r} ({count}) in:\n{gw.log()}"
        time.sleep(0.1)


def doas(gw: GatewayProcess, n: int) -> int:
    """alice asks to act as bob, on a connection of its own."""
    r = requests.get(f"{gw.url}/", params={"op": "status", "user.name": "alice", "doas": "bob", "n": n}, timeout=10)
    return r.status_code


async def keep_alive_status(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET /?op=status&user.name=alice HTTP/1.1\r\nHost: localhost\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
    await asyncio.wait_for(reader.readexactly(length), 10)
    return head.split(b"\r\n")[0]


async def test_sighup_applies_live_settings_names_the_rest_and_keeps_connections(gateway: Start) -> None:
    gw = gateway(server={"workers": 2}, routes=[{"prefix": "/", "backend": "embedded", "dialect": "hoop"}])
    assert {doas(gw, n) for n in range(6)} == {403}
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    assert await keep_alive_status(reader, writer) == b"HTTP/1.1 200 OK"

    def change(settings: dict[str, Any]) -> None:
        settings["proxy_users"] = [{"user": "alice", "users": ["bob"], "hosts": ["127.0.0.1"]}]
        settings["routes"][0]["users"] = ["alice", "bob"]
        settings["server"]["max_connections"] = 10  # needs a restart
        settings["cookie"] = {"name": "other"}  # needs a restart

    rewrite(gw, change)
    gw.proc.send_signal(signal.SIGHUP)
    (restart,) = wait_for_log(gw, "need a restart")
    assert restart.endswith(
        "WARNING gateway.server: configuration reloaded, but these settings need a restart "
        "(their old values stay in force): server.max_connections, cookie.name"
    )
    (applied,) = wait_for_log(gw, "configuration reloaded: ")
    assert applied.endswith(
        "INFO gateway.server: configuration reloaded: applied routes[0].users, proxy_users; keys reread"
    )
    assert wait_for_log(gw, r"keys reloaded \(SIGHUP\)", count=2)[0].split()[4] == "worker"  # every worker applied it

    # Every worker lets alice act for bob now; the connection opened before goes on.
    assert [doas(gw, n) for n in range(20)] == [200] * 20
    assert await keep_alive_status(reader, writer) == b"HTTP/1.1 200 OK"
    # Only alice and bob may use the route now; the cookie keeps its old name.
    r = requests.get(f"{gw.url}/", params={"op": "status", "user.name": "carol"}, timeout=10)
    assert (r.status_code, r.json()["message"]) == (403, "User carol may not use /")
    assert "hadoop.auth" in r.cookies

    # A quieter log level: the access log (INFO) stops in every worker.
    rewrite(gw, lambda s: s.update(log={"level": "warning"}))
    gw.proc.send_signal(signal.SIGHUP)
    (applied,) = wait_for_log(gw, "applied log.level")
    assert "need a restart" not in applied
    # The workers apply it just after the supervisor said so: soon ten requests leave no line.
    deadline = time.monotonic() + 15
    while True:
        accessed = gw.log().count("gateway.access")
        assert [doas(gw, n) for n in range(10)] == [200] * 10
        time.sleep(0.3)
        if gw.log().count("gateway.access") == accessed:
            break
        assert time.monotonic() < deadline, "the access log goes on at WARNING"
    assert [doas(gw, n) for n in range(10)] == [200] * 10
    time.sleep(0.3)
    assert gw.log().count("gateway.access") == accessed

    # An invalid file: said once, with every problem; the configuration in force stays.
    def broken(settings: dict[str, Any]) -> None:
        settings["server"]["port"] = "fourteen"
        settings["proxy_users"] = []
        settings["nonsense"] = {"x": 1}

    rewrite(gw, broken)
    gw.proc.send_signal(signal.SIGHUP)
    (invalid,) = wait_for_log(gw, "configuration not reloaded")
    assert invalid.endswith(
        "ERROR gateway.server: configuration not reloaded, the running one is kept; invalid configuration: "
        "nonsense: unknown section (allowed: server, cookie, auth, backend, embedded, log, groups, admin, csrf, "
        "routes, proxy_users); server.port = 'fourteen': must be an integer"
    )
    assert [doas(gw, n) for n in range(10)] == [200] * 10
    assert await keep_alive_status(reader, writer) == b"HTTP/1.1 200 OK"
    assert gw.proc.poll() is None
    writer.close()


def test_a_replaced_worker_starts_with_the_reloaded_configuration(gateway: Start) -> None:
    from tests.conftest import process_tree

    gw = gateway(server={"workers": 2})
    rewrite(gw, lambda s: s.update(proxy_users=[{"user": "alice", "users": ["bob"], "hosts": ["*"]}]))
    gw.proc.send_signal(signal.SIGHUP)
    wait_for_log(gw, r"worker \d: keys reloaded \(SIGHUP\)", count=2)
    for pid in process_tree(gw.proc.pid):
        if pid != gw.proc.pid:
            os.kill(pid, signal.SIGKILL)
    wait_for_log(gw, "starting a new one", count=2)
    deadline = time.monotonic() + 15
    while len(process_tree(gw.proc.pid)) != 3:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1)
    assert [doas(gw, n) for n in range(20)] == [200] * 20


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(20)
    yield sock
    sock.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_systemd_hears_ready_reloading_and_stopping(
    gateway: Start, notify_socket: socket.socket, workers: int
) -> None:
    gw = gateway(server={"workers": workers}, env={"NOTIFY_SOCKET": notify_socket.getsockname()})
    ready = notify_socket.recv(4096).decode()
    assert ready == f"READY=1\nSTATUS=listening on 127.0.0.1:{gw.port}"
    gw.proc.send_signal(signal.SIGHUP)
    assert re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=\d+", notify_socket.recv(4096).decode())
    assert notify_socket.recv(4096) == b"READY=1"
    gw.proc.send_signal(signal.SIGTERM)
    assert notify_socket.recv(4096) == b"STOPPING=1"
    gw.proc.wait(timeout=15)
    assert gw.proc.returncode == 0
    notify_socket.settimeout(0.5)
    with pytest.raises(TimeoutError):  # nothing from the workers
        notify_socket.recv(4096)


def test_the_systemd_unit_example_is_valid(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        # scripts/test installs systemd; only a hand-made environment lacks it.
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("systemd-analyze is missing under CI (scripts/test installs systemd)", pytrace=False)
        pytest.skip("needs systemd-analyze")
    unit = (REPO / "conf" / "authgateway.service").read_text()
    assert "\nType=notify\n" in unit and "\nExecReload=/bin/kill -HUP $MAINPID\n" in unit
    stop = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1))  # type: ignore[union-attr]
    assert stop > ServerConfig().shutdown_timeout + 5
    # As installed: ExecStart names this tree's authgateway.
    here = Path(sys.executable).parent / "authgateway"
    (tmp_path / "authgateway.service").write_text(unit.replace("/opt/authgateway/bin/authgateway", str(here)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "authgateway.service")], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (0, "")
