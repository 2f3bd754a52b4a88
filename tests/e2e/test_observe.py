"""Metrics, access and audit logs, request ids and health, through real gateways.

Each gateway here has an admin listener; the counts scraped from it are
exact, whichever worker served each request, and survive a worker's death.
The backend of ``/echo/`` is a small HTTP server in this process that answers
with the headers it received, and can be stopped and started again.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayProcess, free_port, process_tree

pytestmark = pytest.mark.timeout(120)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class _Echo(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.server.seen.append(dict(self.headers.items()))  # type: ignore[attr-defined]
        if "slow" in self.path:
            self.server.gate.wait(30)  # type: ignore[attr-defined]
        body = json.dumps({"headers": dict(self.headers.items()), "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", "the-backends-own")  # the gateway's id wins
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the gateway let go (the slow path's client left)

    do_GET = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class EchoBackend:
    """An HTTP backend on a fixed port that can go away and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.seen: list[dict[str, str]] = []
        self.gate = threading.Event()  # /echo/slow... answers once it is set
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _Echo)
        server.seen = self.seen  # type: ignore[attr-defined]
        server.gate = self.gate  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def stop(self) -> None:
        self.gate.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def echo() -> Iterator[EchoBackend]:
    backend = EchoBackend()
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture
def observed(gateway: Callable[..., GatewayProcess], echo: EchoBackend, tmp_path: Path) -> Callable[..., GatewayProcess]:
    """A gateway with an admin listener, log files and an ``/echo/`` route; ``.admin`` is its admin URL."""

    def start(**sections: Any) -> GatewayProcess:
        admin = f"127.0.0.1:{free_port()}"
        n = len(list(tmp_path.glob("access*.log")))
        gw = gateway(
            admin={"listen": admin, "probe_timeout": 0.5},
            log={"access_file": str(tmp_path / f"access{n}.log"), "audit_file": str(tmp_path / f"audit{n}.log")},
            routes=[
                {"prefix": "/webhdfs/v1/", "backend": "embedded", "dialect": "webhdfs"},
                {"prefix": "/echo/", "backend": echo.url, "dialect": "generic"},
            ],
            **sections,
        )
        gw.admin = f"http://{admin}"  # type: ignore[attr-defined]
        gw.access_path = tmp_path / f"access{n}.log"  # type: ignore[attr-defined]
        gw.audit_path = tmp_path / f"audit{n}.log"  # type: ignore[attr-defined]
        wait_ready(gw)
        return gw

    return start


def wait_until(what: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def admin(gw: GatewayProcess) -> str:
    return str(gw.admin)  # type: ignore[attr-defined]


def readyz(gw: GatewayProcess) -> requests.Response:
    return requests.get(f"{admin(gw)}/readyz", timeout=10)


def wait_ready(gw: GatewayProcess) -> None:
    wait_until("the gateway is ready", lambda: readyz(gw).status_code == 200)


def scrape(gw: GatewayProcess) -> Samples:
    text = requests.get(f"{admin(gw)}/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def pick(samples: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples called ``name`` whose labels include ``labels``, by their full label set."""
    want = set(labels.items())
    return {lbl: v for (n, lbl), v in samples.items() if n == name and want <= lbl}


def requests_by(samples: Samples) -> dict[tuple[str, str, str, str], float]:
    return {
        (d["route"], d["method"], d["status"], d["scheme"]): v
        for lbl, v in pick(samples, "authgateway_requests_total").items()
        for d in [dict(lbl)]
    }


def access_lines(gw: GatewayProcess) -> list[dict[str, Any]]:
    path: Path = gw.access_path  # type: ignore[attr-defined]
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def logged_access_lines(gw: GatewayProcess) -> list[dict[str, Any]]:
    """The access lines a gateway without ``log.access_file`` wrote among its other log lines."""
    return [
        json.loads(line[line.index("{"):]) for line in gw.log().splitlines() if " gateway.access: " in line
    ]


def audit_lines(gw: GatewayProcess) -> list[dict[str, str]]:
    path: Path = gw.audit_path  # type: ignore[attr-defined]
    text = path.read_text() if path.exists() else ""
    return [dict(field.split("=", 1) for field in line.split("\t")) for line in text.splitlines()]


def raw_get(gw: GatewayProcess, target: str) -> int:
    """The status of a GET of ``target`` sent exactly as written (requests would decode %64 to d)."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def liststatus(gw: GatewayProcess, **params: str) -> requests.Response:
    return requests.get(f"{gw.url}/webhdfs/v1/", params={"op": "LISTSTATUS", **params}, timeout=10)


# -- metrics ---------------------------------------------------------------------------


def test_scraped_counts_are_exact_across_two_workers(observed: Callable[..., GatewayProcess]) -> None:
    gw = observed(server={"workers": 2})
    for _ in range(20):  # a new connection each: the kernel spreads them over both workers
        assert liststatus(gw, **{"user.name": "bob"}).status_code == 200
    for _ in range(3):
        assert liststatus(gw).status_code == 401
    for i in range(2):
        r = requests.put(f"{gw.url}/webhdfs/v1/tmp/d{i}", params={"op": "MKDIRS", "user.name": "hdfs"}, timeout=10)
        assert r.status_code == 200
    session = requests.Session()
    assert session.get(f"{gw.url}/echo/x", params={"user.name": "carol"}, timeout=10).status_code == 200
    assert session.put(f"{gw.url}/echo/y", data=b"z" * 1000, timeout=10).status_code == 200  # by cookie
    assert liststatus(gw, **{"user.name": "bob", "doas": "carol"}).status_code == 403

    expected = {
        ("/webhdfs/v1/", "GET", "200", "simple"): 20.0,
        ("/webhdfs/v1/", "GET", "401", "none"): 3.0,
        ("/webhdfs/v1/", "PUT", "200", "simple"): 2.0,
        ("/echo/", "GET", "200", "simple"): 1.0,
        ("/echo/", "PUT", "200", "simple"): 1.0,
        ("/webhdfs/v1/", "GET", "403", "simple"): 1.0,
    }
    # Counted once each answer has gone out: wait for the last to be counted.
    wait_until("every request counted", lambda: sum(requests_by(scrape(gw)).values()) == sum(expected.values()))
    samples = scrape(gw)
    assert requests_by(samples) == expected
    failures = {tuple(sorted(lbl)): v for lbl, v in pick(samples, "authgateway_auth_failures_total").items()}
    assert failures == {
        (("reason", "no_credentials"), ("scheme", "")): 3.0,
        (("reason", "impersonation"), ("scheme", "")): 1.0,
    }
    # A handshake for every request that came with user.name (the cookie request had none).
    assert samples[("authgateway_auth_handshake_seconds_count", frozenset({("scheme", "simple")}))] == 24.0
    # Upstream latency for every request forwarded.
    assert samples[("authgateway_upstream_seconds_count", frozenset({("route", "/webhdfs/v1/")}))] == 22.0
    assert samples[("authgateway_upstream_seconds_count", frozenset({("route", "/echo/")}))] == 2.0
    assert samples[("authgateway_received_bytes_total", frozenset({("route", "/echo/")}))] == 1000.0
    sent = samples[("authgateway_sent_bytes_total", frozenset({("route", "/echo/")}))]
    assert sent == sum(line["bytes_out"] for line in access_lines(gw) if line["route"] == "/echo/") > 0
    assert samples[("authgateway_workers", frozenset())] == 2.0
    # Both workers served (each names itself in its log lines).
    served = set(re.findall(r"worker (\d): authenticated user=bob", gw.log()))
    assert served == {"0", "1"}, gw.log()


def test_a_replaced_worker_keeps_its_counts_and_drops_its_gauges(observed: Callable[..., GatewayProcess]) -> None:
    gw = observed(server={"workers": 2})
    for _ in range(10):
        assert liststatus(gw, **{"user.name": "bob"}).status_code == 200
    wait_until("counted", lambda: sum(requests_by(scrape(gw)).values()) == 10)
    workers = [pid for pid in process_tree(gw.proc.pid) if pid != gw.proc.pid]
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    wait_until("a new worker", lambda: len(set(process_tree(gw.proc.pid)) - {gw.proc.pid, *workers}) == 1)
    wait_ready(gw)
    samples = scrape(gw)
    assert samples[("authgateway_workers", frozenset())] == 2.0  # not 3: the dead one's gauge went
    assert requests_by(samples) == {("/webhdfs/v1/", "GET", "200", "simple"): 10.0}


def test_open_connections_and_streams_are_sampled(observed: Callable[..., GatewayProcess], echo: EchoBackend) -> None:
    gw = observed()
    with requests.Session() as session:
        assert session.get(f"{gw.url}/echo/a", params={"user.name": "bob"}, timeout=10).status_code == 200
        # The session keeps its connection open.
        wait_until("one open connection", lambda: scrape(gw)[("authgateway_open_connections", frozenset())] == 1.0)
    wait_until("no open connection", lambda: scrape(gw)[("authgateway_open_connections", frozenset())] == 0.0)
    assert scrape(gw)[("authgateway_open_streams", frozenset())] == 0.0


def test_the_admin_listener_is_never_proxied(observed: Callable[..., GatewayProcess]) -> None:
    gw = observed()
    # The gateway's port has no /metrics of its own: it is a path of the backend like any other.
    r = requests.get(f"{gw.url}/metrics", timeout=10)
    assert r.status_code == 401 and "authgateway_requests_total" not in r.text
    assert requests.get(f"{admin(gw)}/healthz", timeout=10).json() == {"status": "alive"}
    r = requests.get(f"{admin(gw)}/webhdfs/v1/?op=LISTSTATUS&user.name=bob", timeout=10)
    assert r.status_code == 404


def test_the_admin_listener_says_server_authgateway_and_no_versions(observed: Callable[..., GatewayProcess]) -> None:
    """As every answer of the gateway's port: not wsgiref's ``WSGIServer/0.2 CPython/3.11.x``."""
    gw = observed()
    for path, status in (("/healthz", 200), ("/metrics", 200), ("/readyz", 200), ("/nothing", 404)):
        r = requests.get(f"{admin(gw)}{path}", timeout=10)
        assert r.status_code == status, (path, r.text)
        assert r.raw.headers.getlist("Server") == ["authgateway"], (path, r.headers)


# -- logs ------------------------------------------------------------------------------


def test_access_and_audit_lines_name_the_users_for_pseudo_cookie_and_refused_requests(
    observed: Callable[..., GatewayProcess],
) -> None:
    gw = observed()
    session = requests.Session()
    pseudo = session.get(f"{gw.url}/webhdfs/v1/", params={"op": "LISTSTATUS", "user.name": "bob"}, timeout=10)
    assert pseudo.status_code == 200
    cookie = session.get(f"{gw.url}/webhdfs/v1/", params={"op": "GETFILESTATUS"}, timeout=10)
    assert cookie.status_code == 200
    refused = liststatus(gw)
    assert refused.status_code == 401
    doas = liststatus(gw, **{"user.name": "bob", "doas": "carol"})
    assert doas.status_code == 403
    wait_until("four access lines", lambda: len(access_lines(gw)) == 4)
    wait_until("four audit lines", lambda: len(audit_lines(gw)) == 4)

    lines = {line["request_id"]: line for line in access_lines(gw)}
    audits = {line["request_id"]: line for line in audit_lines(gw)}
    ids = [r.headers["X-Request-Id"] for r in (pseudo, cookie, refused, doas)]
    assert set(lines) == set(audits) == set(ids)

    def expect(rid: str, **fields: Any) -> None:
        assert {k: lines[rid][k] for k in fields} == fields, lines[rid]

    expect(ids[0], user="bob", effective_user="bob", auth="simple", cookie=False, method="GET",
           route="/webhdfs/v1/", path="/webhdfs/v1/", query="op=LISTSTATUS&user.name=bob", op="LISTSTATUS",
           status=200, client="127.0.0.1", bytes_in=0)
    expect(ids[1], user="bob", effective_user="bob", auth="simple", cookie=True, op="GETFILESTATUS", status=200)
    expect(ids[2], user=None, effective_user=None, auth=None, status=401, refused="no_credentials")
    expect(ids[3], user="bob", effective_user=None, status=403, refused="impersonation")
    assert lines[ids[0]]["bytes_out"] > 0 and lines[ids[0]]["duration_ms"] >= 0

    assert audits[ids[0]] == {
        "time": audits[ids[0]]["time"], "allowed": "true", "user": "bob", "effective": "bob", "ip": "127.0.0.1",
        "method": "GET", "route": "/webhdfs/v1/", "path": "/webhdfs/v1/", "op": "LISTSTATUS", "status": "200",
        "bytes_in": "0", "bytes_out": str(lines[ids[0]]["bytes_out"]), "request_id": ids[0],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", audits[ids[0]]["time"])
    assert (audits[ids[1]]["allowed"], audits[ids[1]]["user"], audits[ids[1]]["effective"]) == ("true", "bob", "bob")
    assert (audits[ids[2]]["allowed"], audits[ids[2]]["user"], audits[ids[2]]["status"]) == ("false", "-", "401")
    assert (audits[ids[3]]["allowed"], audits[ids[3]]["user"], audits[ids[3]]["effective"]) == ("false", "bob", "-")
    # The cookie itself is in no line.
    value = session.cookies["hadoop.auth"]
    for text in (gw.access_path.read_text(), gw.audit_path.read_text(), gw.log()):  # type: ignore[attr-defined]
        assert value not in text


def test_a_proxy_users_lines_name_both(observed: Callable[..., GatewayProcess]) -> None:
    gw = observed(proxy_users=[{"user": "knox", "users": ["carol"], "hosts": ["127.0.0.1"]}])
    r = liststatus(gw, **{"user.name": "knox", "doas": "carol"})
    assert r.status_code == 200
    wait_until("an access line", lambda: len(access_lines(gw)) == 1)
    (line,) = access_lines(gw)
    assert (line["user"], line["effective_user"]) == ("knox", "carol")
    wait_until("an audit line", lambda: len(audit_lines(gw)) == 1)
    (audit,) = audit_lines(gw)
    assert (audit["allowed"], audit["user"], audit["effective"]) == ("true", "knox", "carol")


def test_a_request_whose_client_left_is_logged_and_counted(
    observed: Callable[..., GatewayProcess], echo: EchoBackend
) -> None:
    gw = observed()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{gw.url}/echo/slow", params={"user.name": "bob", "op": "OPEN"},
                     headers={"X-Request-Id": "gone-1"}, timeout=0.5)
    wait_until("an access line", lambda: len(access_lines(gw)) == 1)
    (line,) = access_lines(gw)
    assert (line["request_id"], line["user"], line["status"], line["path"]) == ("gone-1", "bob", 499, "/echo/slow")
    wait_until("an audit line", lambda: len(audit_lines(gw)) == 1)
    (audit,) = audit_lines(gw)
    assert (audit["allowed"], audit["user"], audit["status"], audit["op"]) == ("true", "bob", "499", "OPEN")
    wait_until("counted", lambda: requests_by(scrape(gw)) == {("/echo/", "GET", "499", "simple"): 1.0})


@pytest.mark.parametrize(
    "query",
    [
        "delegation=SECRETVALUE1",
        "DeLeGaTiOn=SECRETVALUE1",
        "%64elegation=SECRETVALUE1",
        "token=SECRETVALUE1",
        "X-Amz-Signature=SECRETVALUE1",
        "access_token=SECRETVALUE1",
    ],
)
def test_credentials_in_the_query_are_in_no_log_line(observed: Callable[..., GatewayProcess], query: str) -> None:
    gw = observed()
    assert raw_get(gw, f"/webhdfs/v1/?op=LISTSTATUS&user.name=bob&{query}") == 200
    assert raw_get(gw, f"/webhdfs/v1/?op=LISTSTATUS&{query}") == 401  # refused: logged too
    wait_until("two access lines", lambda: len(access_lines(gw)) == 2)
    wait_until("two audit lines", lambda: len(audit_lines(gw)) == 2)
    name = query.partition("=")[0]
    assert [line["query"] for line in access_lines(gw)] == [
        f"op=LISTSTATUS&user.name=bob&{name}=***", f"op=LISTSTATUS&{name}=***"]
    for text in (gw.access_path.read_text(), gw.audit_path.read_text(), gw.log()):  # type: ignore[attr-defined]
        assert "SECRETVALUE1" not in text


def test_the_access_log_goes_to_the_standard_error_without_a_file(gateway: Callable[..., GatewayProcess]) -> None:
    gw = gateway()
    r = liststatus(gw, **{"user.name": "bob", "delegation": "SECRETVALUE2"})
    assert r.status_code == 200
    rid = r.headers["X-Request-Id"]
    wait_until("the access line", lambda: f'"request_id":"{rid}"' in gw.log())
    (line,) = logged_access_lines(gw)
    assert (line["user"], line["query"]) == ("bob", "op=LISTSTATUS&user.name=bob&delegation=***")
    wait_until("the audit line", lambda: f"request_id={rid}" in gw.log())
    assert "SECRETVALUE2" not in gw.log()


# -- request ids -----------------------------------------------------------------------


def test_a_well_formed_request_id_goes_to_the_backend_and_back(
    observed: Callable[..., GatewayProcess], echo: EchoBackend
) -> None:
    gw = observed()
    r = requests.get(f"{gw.url}/echo/a", params={"user.name": "bob"}, headers={"X-Request-Id": "trace-1.2:3_x"},
                     timeout=10)
    assert r.status_code == 200
    assert r.headers["X-Request-Id"] == "trace-1.2:3_x"
    assert [v for k, v in r.json()["headers"].items() if k.lower() == "x-request-id"] == ["trace-1.2:3_x"]
    wait_until("logged", lambda: [line["request_id"] for line in access_lines(gw)] == ["trace-1.2:3_x"])


@pytest.mark.parametrize("sent", [None, "has space", "x" * 129, "quote\"d"])
def test_any_other_request_gets_a_new_id_sent_to_the_backend_and_back(
    observed: Callable[..., GatewayProcess], echo: EchoBackend, sent: str | None
) -> None:
    gw = observed()
    headers = {"X-Request-Id": sent} if sent is not None else {}
    r = requests.get(f"{gw.url}/echo/a", params={"user.name": "bob"}, headers=headers, timeout=10)
    assert r.status_code == 200
    rid = r.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert [v for k, v in r.json()["headers"].items() if k.lower() == "x-request-id"] == [rid]
    wait_until("logged", lambda: [line["request_id"] for line in access_lines(gw)] == [rid])


def test_errors_and_challenges_carry_the_request_id(observed: Callable[..., GatewayProcess], echo: EchoBackend) -> None:
    gw = observed()
    challenge = requests.get(f"{gw.url}/echo/a", headers={"X-Request-Id": "c1"}, timeout=10)
    assert (challenge.status_code, challenge.headers["X-Request-Id"]) == (401, "c1")
    echo.stop()
    bad_gateway = requests.get(f"{gw.url}/echo/a", params={"user.name": "bob"}, headers={"X-Request-Id": "c2"},
                               timeout=10)
    assert (bad_gateway.status_code, bad_gateway.headers["X-Request-Id"]) == (502, "c2")
    expectation = requests.put(f"{gw.url}/echo/a", params={"user.name": "bob"}, data=b"x",
                               headers={"Expect": "other", "X-Request-Id": "c3"}, timeout=10)
    assert (expectation.status_code, expectation.headers["X-Request-Id"]) == (417, "c3")


# -- health ----------------------------------------------------------------------------


def test_readyz_follows_the_backend(observed: Callable[..., GatewayProcess], echo: EchoBackend) -> None:
    gw = observed()
    r = readyz(gw)
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True
    name = "backends of /echo/"
    assert body["checks"][name] == {"ok": True, "detail": f"{echo.url}: accepts connections"}
    assert body["checks"]["workers"]["ok"] is True
    assert body["checks"]["auth.simple"]["ok"] is True

    echo.stop()
    r = readyz(gw)
    assert r.status_code == 503
    body = r.json()
    assert body["ready"] is False
    assert body["checks"][name] == {"ok": False, "detail": f"{echo.url}: Connection refused"}
    assert [k for k, v in body["checks"].items() if not v["ok"]] == [name]
    assert requests.get(f"{admin(gw)}/healthz", timeout=10).status_code == 200  # alive all the same

    echo.start()
    r = readyz(gw)
    assert (r.status_code, r.json()["ready"]) == (200, True)


def test_readyz_says_when_a_key_file_is_gone(observed: Callable[..., GatewayProcess]) -> None:
    gw = observed()
    key = gw.root / ".authgateway" / "cookie.secret"
    key.rename(key.with_suffix(".moved"))
    r = readyz(gw)
    assert r.status_code == 503
    assert r.json()["checks"]["keys: cookie key"] == {
        "ok": False, "detail": f"{key}: No such file or directory"}


def test_readyz_turns_away_traffic_while_the_workers_drain(
    observed: Callable[..., GatewayProcess], echo: EchoBackend
) -> None:
    gw = observed()
    slow: list[int] = []
    client = threading.Thread(target=lambda: slow.append(requests.get(
        f"{gw.url}/echo/slow", params={"user.name": "bob"}, timeout=30).status_code))
    client.start()
    wait_until("the slow request in flight", lambda: bool(echo.seen))
    gw.proc.send_signal(signal.SIGTERM)
    # While the slow answer is held back, the admin listener says not ready.
    # (An idle worker stops at once, the busy one stops counting itself within a second.)
    wait_until("no worker serving", lambda: readyz(gw).json()["checks"]["workers"]["detail"].startswith("0 of "))
    assert readyz(gw).status_code == 503
    echo.gate.set()
    client.join()
    assert slow == [200]  # drained, not cut
    assert gw.proc.wait(timeout=20) == 0


def test_a_route_that_fails_over_is_ready_while_one_backend_is(
    gateway: Callable[..., GatewayProcess], echo: EchoBackend
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    admin_at = f"127.0.0.1:{free_port()}"
    gw = gateway(admin={"listen": admin_at, "probe_timeout": 0.5},
                 routes=[{"prefix": "/echo/", "backend": [down, echo.url], "dialect": "generic"}])
    gw.admin = f"http://{admin_at}"  # type: ignore[attr-defined]
    wait_ready(gw)
    check = readyz(gw).json()["checks"]["backends of /echo/"]
    assert check == {"ok": True, "detail": f"{down}: Connection refused; {echo.url}: accepts connections"}
    echo.stop()
    r = readyz(gw)
    assert r.status_code == 503
    assert r.json()["checks"]["backends of /echo/"]["ok"] is False



def test_readyz_says_when_the_keys_file_no_longer_reads(gateway: Callable[..., GatewayProcess], tmp_path: Path) -> None:
    from gateway.keys import create_keys_file

    keys = tmp_path / "keys.json"
    create_keys_file(keys, int(time.time()))
    admin_at = f"127.0.0.1:{free_port()}"
    gw = gateway(cookie={"keys_file": str(keys)}, admin={"listen": admin_at})
    gw.admin = f"http://{admin_at}"  # type: ignore[attr-defined]
    wait_ready(gw)
    assert readyz(gw).json()["checks"]["keys: cookie.keys_file"] == {"ok": True, "detail": "readable, 1 key(s)"}
    assert "keys: cookie key" not in readyz(gw).json()["checks"]  # no generated key is used
    keys.chmod(0o644)
    r = readyz(gw)
    assert r.status_code == 503
    check = r.json()["checks"]["keys: cookie.keys_file"]
    assert check["ok"] is False and "is open to group or other users (mode 0644)" in check["detail"], check


def test_sighup_reaches_the_gateway_not_the_admin_thread(observed: Callable[..., GatewayProcess]) -> None:
    gw = observed()
    for n in range(3):
        gw.proc.send_signal(signal.SIGHUP)
        # Reloaded, still serving: a SIGHUP taken by the admin thread would have ended the process.
        wait_until(f"reload {n + 1} logged", lambda: gw.log().count("configuration reloaded") > n)
        assert gw.proc.poll() is None
        assert liststatus(gw, **{"user.name": "bob"}).status_code == 200
        assert readyz(gw).status_code == 200
