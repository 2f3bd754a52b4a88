"""Failover through the real gateway between two real backend processes, one killed and restarted.

Two ``authgateway embedded`` processes serve one data root (a replicated
backend, as two HttpFS servers in front of one HDFS), both trusting the
gateway's identity key; the gateway's routes list both.  A backend is
killed with SIGKILL (no goodbye on its pooled connections) and started
again on its port; the other is killed then.  No request a client makes in
between fails, whichever backend it had reached before.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO, GatewayProcess, free_port, stop_process, wait_for_port

pytestmark = pytest.mark.timeout(120)


class BackendProcess:
    """One ``authgateway embedded`` on a fixed port, started and killed at will."""

    def __init__(self, workdir: Path, root: Path, key: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / f"backend-{self.port}.toml"
        self.config.write_text(
            f'[server]\nworkers = 1\n[embedded]\nroot = "{root}"\nlisten = "127.0.0.1:{self.port}"\n'
            f'[backend]\nidentity_secret_file = "{key}"\n'
        )
        self.log = workdir / f"backend-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATEWAY_")}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "embedded", "--config", str(self.config)],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[BackendProcess, BackendProcess, Path]]:
    key = tmp_path / "identity.key"
    key.write_text("i" * 48)
    root = tmp_path / "data"
    first, second = BackendProcess(tmp_path, root, key), BackendProcess(tmp_path, root, key)
    try:
        first.start()
        second.start()
        yield first, second, key
    finally:
        first.stop()
        second.stop()


@pytest.fixture
def gw(gateway: Callable[..., GatewayProcess], pair: tuple[BackendProcess, BackendProcess, Path],
       tmp_path: Path) -> GatewayProcess:
    first, second, key = pair
    cookie_key = tmp_path / "cookie.key"
    cookie_key.write_text("c" * 48)
    both = [first.url, second.url]
    return gateway(
        cookie={"secret_files": [str(cookie_key)]},
        # No cool-down here: a killed backend is back within a second, and this test is not about the breaker.
        backend={"identity_secret_file": str(key), "failover_cooldown": 0},
        routes=[{"prefix": "/", "backend": both, "dialect": "hoop"},
                {"prefix": "/webhdfs/v1/", "backend": both, "dialect": "webhdfs"}],
    )


def webhdfs(gw: GatewayProcess, method: str, path: str, op: str, **kw: object) -> requests.Response:
    params = {"op": op, "user.name": "bob", **kw.pop("params", {})}  # type: ignore[dict-item]
    return requests.request(method, f"{gw.url}/webhdfs/v1{path}", params=params, timeout=20, **kw)  # type: ignore[arg-type]


def listing(gw: GatewayProcess) -> list[str]:
    r = webhdfs(gw, "GET", "/user/bob", "LISTSTATUS")
    assert r.status_code == 200, r.text
    return sorted(s["pathSuffix"] for s in r.json()["FileStatuses"]["FileStatus"])


def test_a_killed_backend_is_failed_over_and_comes_back(
    gw: GatewayProcess, pair: tuple[BackendProcess, BackendProcess, Path]
) -> None:
    first, second, _ = pair
    session = requests.Session()  # keep-alive to the gateway; the gateway keeps its own to the backends
    r = session.put(f"{gw.url}/webhdfs/v1/user/bob/one", params={"op": "CREATE", "user.name": "bob"},
                    data=b"1" * 100_000, timeout=20)
    assert r.status_code == 201, r.text
    assert listing(gw) == ["one"]

    first.kill()
    for i in range(10):  # every worker meets the dead backend's pooled connections, then fails over
        assert webhdfs(gw, "GET", "/user/bob/one", "OPEN").content == b"1" * 100_000, i
    r = webhdfs(gw, "PUT", "/user/bob/two", "MKDIRS")  # unsafe, but never reached the dead one
    assert (r.status_code, r.json()) == (200, {"boolean": True})

    first.start()
    second.kill()
    for i in range(10):
        assert listing(gw) == ["one", "two"], i
    r = session.put(f"{gw.url}/webhdfs/v1/user/bob/three", params={"op": "CREATE", "user.name": "bob"},
                    data=b"3" * 100_000, timeout=20)
    assert r.status_code == 201, r.text

    second.start()
    first.kill()
    assert listing(gw) == ["one", "three", "two"]
    assert webhdfs(gw, "GET", "/user/bob/three", "OPEN").content == b"3" * 100_000
    assert "trying the next" in gw.log()


def test_with_every_backend_down_the_answer_is_502_without_an_address(
    gw: GatewayProcess, pair: tuple[BackendProcess, BackendProcess, Path]
) -> None:
    first, second, _ = pair
    first.kill()
    second.kill()
    r = webhdfs(gw, "GET", "/user/bob", "LISTSTATUS")
    assert r.status_code == 502
    assert r.json()["RemoteException"]["message"] == "the backend is unreachable"
    assert str(first.port) not in r.text and str(second.port) not in r.text
