"""The gateway in front of a backend that requires SPNEGO itself (issue 10, outbound Kerberos).

The backend is a real ``authgateway embedded`` process with
``embedded.auth = "kerberos"``: it accepts tickets for ``HTTP/localhost``,
lets ``HTTP`` (the short name of the gateway's ``HTTP/gateway``) act for
other users through ``doas``, and issues its own ``hadoop.auth`` cookie.
The gateway (``authgateway serve``) authenticates clients with Kerberos or
pseudo authentication and authenticates itself to the backend from its own
keytab.  The backend logs each handshake it accepts and each cookie it
refuses; the tests count those lines.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hdfs.ext.kerberos import KerberosClient  # type: ignore[import-untyped]
from requests_gssapi import OPTIONAL, HTTPSPNEGOAuth  # type: ignore[import-untyped]

from tests.conftest import REPO, WORKERS_VARIABLE, free_port, stop_process, to_toml, wait_for_port
from tests.kerberos.conftest import KdcRealm, gateway_kerberos

pytestmark = pytest.mark.kerberos

GATEWAY_PRINCIPAL = "HTTP/gateway@EXAMPLE.COM"
HANDSHAKE = "SPNEGO handshake accepted for HTTP/gateway@EXAMPLE.COM"
REFUSED_COOKIE = "refused a hadoop.auth cookie"
SESSION_COOKIE = "authgw.session"  # the gateway's own, named apart from the backend's hadoop.auth


class Backend:
    """A running ``authgateway embedded`` that requires SPNEGO."""

    def __init__(self, workdir: Path, kdc: KdcRealm, *, validity: int) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.log_path = workdir / "backend.log"
        self.config = workdir / "backend.toml"
        self.root = workdir / "root"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(to_toml({
            "server": {"workers": 1},
            "embedded": {
                "root": str(self.root),
                "listen": f"127.0.0.1:{self.port}",
                "auth": "kerberos",
                "keytab": str(kdc.http_keytab),
                "principal": "HTTP/localhost@EXAMPLE.COM",
                "cookie_validity": validity,
            },
            # Hadoop's hadoop.proxyuser.HTTP.users = alice,bob and .hosts = 127.0.0.1: not mallory.
            "proxy_users": [{"user": "HTTP", "users": ["alice", "bob"], "hosts": ["127.0.0.1"]}],
        }))
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("AUTHGATEWAY_")}, **kdc.env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "embedded", "--config", str(self.config)],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.port, self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"backend did not start:\n{self.log()}") from None

    def stop(self) -> None:
        stop_process(self.proc)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def handshakes(self) -> int:
        return self.log().count(HANDSHAKE)

    def refused_cookies(self) -> int:
        return self.log().count(REFUSED_COOKIE)


@pytest.fixture(scope="module")
def gateway_keytab(kdc: KdcRealm) -> Path:
    return kdc.realm.add_service(["HTTP/gateway"], kdc.realm.base / "gateway.keytab")


@pytest.fixture
def backend(kdc: KdcRealm, tmp_path: Path) -> Iterator[Callable[..., Backend]]:
    started: list[Backend] = []

    def start(validity: int = 3600) -> Backend:
        b = Backend(tmp_path / f"backend{len(started)}", kdc, validity=validity)
        started.append(b)
        b.start()
        return b

    yield start
    for b in started:
        b.stop()


def workers() -> int:
    return int(os.environ.get(WORKERS_VARIABLE) or 1)


def start_gateway(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path, backend: Backend, keytab: Path,
    cookie_name: str = SESSION_COOKIE,
) -> Any:
    key = tmp_path / "cookie.key"
    key.write_text("k" * 48)
    return gateway(
        server={"workers": workers()},
        auth={"schemes": ["kerberos", "simple"], "kerberos": gateway_kerberos(kdc, tmp_path)},
        cookie={"name": cookie_name, "secret_files": [str(key)]},
        backend={
            "url": backend.url,
            "dialect": "webhdfs",
            "auth": "kerberos",
            "principal": GATEWAY_PRINCIPAL,
            "keytab": str(keytab),
        },
        proxy_users=[{"user": "alice", "users": ["bob"], "hosts": ["127.0.0.1"]}],
        env=kdc.env,
    )


def kerberos_session(kdc: KdcRealm, user: str) -> requests.Session:
    os.environ["KRB5CCNAME"] = kdc.ccache(user)  # the realm fixture restores the environment
    session = requests.Session()
    session.auth = HTTPSPNEGOAuth(mutual_authentication=OPTIONAL)
    return session


def status_of(session: requests.Session | Any, url: str, path: str, **params: str) -> dict[str, Any]:
    response = session.get(f"{url}/webhdfs/v1{path}", params={"op": "GETFILESTATUS", **params}, timeout=20)
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()["FileStatus"]
    return status


def mkdirs(session: requests.Session | Any, url: str, path: str, **params: str) -> requests.Response:
    return session.put(f"{url}/webhdfs/v1{path}", params={"op": "MKDIRS", **params}, timeout=20)  # type: ignore[no-any-return]


def assert_no_backend_cookie(response: requests.Response) -> None:
    """No Set-Cookie of the backend's (its hadoop-auth token) in any answer the client got."""
    for answer in [*response.history, response]:
        for name, value in answer.raw.headers.items():
            if name.lower() == "set-cookie":
                assert "u=HTTP&p=" not in value and "t=kerberos&e=" not in value, value


def test_kerberos_and_pseudo_clients_own_what_they_create_behind_a_kerberized_backend(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path, backend: Callable[..., Backend], gateway_keytab: Path
) -> None:
    be = backend()
    gw = start_gateway(gateway, kdc, tmp_path, be, gateway_keytab)
    alice = kerberos_session(kdc, "alice")
    made = mkdirs(alice, gw.url, "/user/alice/k")
    assert made.status_code == 200, made.text
    assert_no_backend_cookie(made)
    assert status_of(alice, gw.url, "/user/alice/k")["owner"] == "alice"
    made = mkdirs(requests, gw.url, "/user/bob/p", **{"user.name": "bob"})
    assert made.status_code == 200, made.text
    assert status_of(requests, gw.url, "/user/bob/p", **{"user.name": "bob"})["owner"] == "bob"
    assert be.handshakes() >= 1
    # The backend saw the gateway as HTTP acting for each user, never a user's own credentials.
    assert "SPNEGO handshake accepted for alice" not in be.log()


def test_a_clients_doas_is_honoured_where_the_gateways_rules_allow_it(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path, backend: Callable[..., Backend], gateway_keytab: Path
) -> None:
    be = backend()
    gw = start_gateway(gateway, kdc, tmp_path, be, gateway_keytab)
    alice = kerberos_session(kdc, "alice")
    made = mkdirs(alice, gw.url, "/user/bob/for-bob", doas="bob")
    assert made.status_code == 200, made.text
    assert status_of(requests, gw.url, "/user/bob/for-bob", **{"user.name": "bob"})["owner"] == "bob"
    refused = mkdirs(alice, gw.url, "/user/mallory/x", doas="mallory")
    assert refused.status_code == 403
    assert refused.json()["RemoteException"]["message"] == "User: alice is not allowed to impersonate mallory"


def test_the_backend_refuses_a_user_its_own_rules_do_not_let_the_gateway_act_for(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path, backend: Callable[..., Backend], gateway_keytab: Path
) -> None:
    be = backend()
    gw = start_gateway(gateway, kdc, tmp_path, be, gateway_keytab)
    mallory = kerberos_session(kdc, "mallory")
    refused = mkdirs(mallory, gw.url, "/user/mallory/x")
    assert refused.status_code == 403, refused.text
    assert refused.json()["RemoteException"]["message"] == "User: HTTP is not allowed to impersonate mallory"


@pytest.mark.parametrize("cookie_name", [SESSION_COOKIE, "hadoop.auth"])
def test_the_backends_cookie_is_reused_and_never_reaches_the_client_or_the_log(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path, backend: Callable[..., Backend], gateway_keytab: Path,
    cookie_name: str,
) -> None:
    be = backend()
    # The gateway's own session cookie may bear the backend's cookie's name (its default): still apart.
    gw = start_gateway(gateway, kdc, tmp_path, be, gateway_keytab, cookie_name)
    bob = kerberos_session(kdc, "bob")
    for i in range(12):
        response = bob.get(f"{gw.url}/webhdfs/v1/", params={"op": "LISTSTATUS"}, timeout=20)
        assert response.status_code == 200, response.text
        assert_no_backend_cookie(response)
    assert set(bob.cookies.keys()) == {cookie_name}  # the gateway's session, sent back each time
    # One handshake per gateway worker at most, for twelve requests of one user; the client's
    # cookie never reached the backend as if it were the backend's own.
    assert 1 <= be.handshakes() <= workers()
    assert be.refused_cookies() == 0
    for i in range(4):
        response = requests.get(f"{gw.url}/webhdfs/v1/", params={"op": "LISTSTATUS", "user.name": "alice"}, timeout=20)
        assert response.status_code == 200
        assert_no_backend_cookie(response)
    # Per end user: alice's requests needed a cookie of their own.
    assert 2 <= be.handshakes() <= 2 * workers()
    assert "u=HTTP&p=" not in gw.log()
    assert "Negotiate " not in gw.log()


def test_an_expired_backend_cookie_is_replaced_by_a_new_handshake(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path, backend: Callable[..., Backend], gateway_keytab: Path
) -> None:
    be = backend(validity=2)
    gw = start_gateway(gateway, kdc, tmp_path, be, gateway_keytab)
    params = {"op": "LISTSTATUS", "user.name": "bob"}
    with requests.Session() as s:
        assert s.get(f"{gw.url}/webhdfs/v1/", params=params, timeout=20).status_code == 200
        first = be.handshakes()
        assert 1 <= first <= workers()
        time.sleep(2.5)  # past the cookie's e=
        for _ in range(2 * workers()):
            assert s.get(f"{gw.url}/webhdfs/v1/", params=params, timeout=20).status_code == 200
    assert be.handshakes() > first
    # The gateway read the cookie's end from its e= and did not send it after: the backend refused none.
    assert be.refused_cookies() == 0


def test_a_cookie_the_backend_no_longer_accepts_is_retried_once_with_a_handshake(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path, backend: Callable[..., Backend], gateway_keytab: Path
) -> None:
    be = backend()
    gw = start_gateway(gateway, kdc, tmp_path, be, gateway_keytab)
    params = {"op": "LISTSTATUS", "user.name": "bob"}
    for _ in range(2 * workers()):
        assert requests.get(f"{gw.url}/webhdfs/v1/", params=params, timeout=20).status_code == 200
    # The backend restarts with a new cookie key, as a Hadoop daemon with a random secret does.
    be.stop()
    (be.root / ".authgateway" / "backend-cookie.secret").unlink()
    before = be.handshakes()
    be.start()
    for _ in range(2 * workers()):
        response = requests.get(f"{gw.url}/webhdfs/v1/", params=params, timeout=20)
        assert response.status_code == 200, response.text
        assert_no_backend_cookie(response)
    assert be.refused_cookies() >= 1
    assert be.handshakes() - before == be.refused_cookies()  # each refusal: one fresh handshake, then success


def test_a_gateway_principal_the_backend_has_no_proxy_user_rule_for_gets_the_backends_403(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path, backend: Callable[..., Backend]
) -> None:
    be = backend()
    other = kdc.realm.add_service(["gw-other/localhost"], kdc.realm.base / "gw-other.keytab")
    key = tmp_path / "cookie.key"
    key.write_text("k" * 48)
    gw = gateway(
        server={"workers": workers()},
        cookie={"name": SESSION_COOKIE, "secret_files": [str(key)]},
        backend={"url": be.url, "dialect": "webhdfs", "auth": "kerberos",
                 "principal": "gw-other/localhost@EXAMPLE.COM", "keytab": str(other)},
        env=kdc.env,
    )
    response = requests.get(f"{gw.url}/webhdfs/v1/", params={"op": "LISTSTATUS", "user.name": "bob"}, timeout=20)
    # The handshake succeeds (a principal of the realm), but only HTTP may act for others there.
    assert response.status_code == 403, response.text
    assert "gw-other is not allowed to impersonate bob" in response.json()["RemoteException"]["message"]


def test_hdfscli_reads_and_writes_through_the_gateway_to_a_kerberized_backend(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path, backend: Callable[..., Backend], gateway_keytab: Path
) -> None:
    be = backend()
    gw = start_gateway(gateway, kdc, tmp_path, be, gateway_keytab)
    os.environ["KRB5CCNAME"] = kdc.ccache("alice")  # the realm fixture restores the environment
    client: Any = KerberosClient(gw.url)
    client.makedirs("/user/alice/d")
    data = os.urandom(3 * 1024 * 1024 + 7)
    client.write("/user/alice/d/f", data=data)  # a 307 from the backend, rewritten to the gateway, then the data
    client.write("/user/alice/d/f", data=b"tail", append=True)
    with client.read("/user/alice/d/f") as reader:
        assert reader.read() == data + b"tail"
    assert (be.root / "user/alice/d/f").read_bytes() == data + b"tail"
    assert client.status("/user/alice/d/f")["owner"] == "alice"
    # Two uploads and a handful of other requests by one user: one handshake per gateway worker at most.
    assert 1 <= be.handshakes() <= workers()


def test_the_gateways_credentials_are_renewed_before_they_end(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path, backend: Callable[..., Backend]
) -> None:
    # A principal whose tickets live 10 seconds: renewed at 8, so a handshake at 12 still works.
    principal = "HTTP/shortlived@EXAMPLE.COM"
    kdc.realm.kadmin(f'addprinc -randkey -maxlife "10 seconds" {principal}')
    short = kdc.realm.add_service(["HTTP/shortlived"], kdc.realm.base / "shortlived.keytab")
    be = backend()
    key = tmp_path / "cookie.key"
    key.write_text("k" * 48)
    gw = gateway(
        server={"workers": 1},
        cookie={"name": SESSION_COOKIE, "secret_files": [str(key)]},
        backend={"url": be.url, "dialect": "webhdfs", "auth": "kerberos", "principal": principal,
                 "keytab": str(short)},
        env=kdc.env,
    )
    first = requests.get(f"{gw.url}/webhdfs/v1/", params={"op": "LISTSTATUS", "user.name": "alice"}, timeout=20)
    assert first.status_code == 200, first.text  # HTTP/shortlived is HTTP there (auth_to_local DEFAULT)
    acquired = re.search(r"Kerberos credentials for the backend acquired; valid for (\d+) s", gw.log())
    assert acquired is not None and int(acquired.group(1)) <= 10
    time.sleep(12)
    assert "Kerberos credentials for the backend renewed" in gw.log()
    # A user with no kept cookie: a new handshake, with the renewed credentials.
    later = requests.get(f"{gw.url}/webhdfs/v1/", params={"op": "LISTSTATUS", "user.name": "bob"}, timeout=20)
    assert later.status_code == 200, later.text
    assert be.log().count("SPNEGO handshake accepted for HTTP/shortlived@EXAMPLE.COM") == 2


def test_a_gateway_whose_keytab_the_kdc_no_longer_honours_does_not_start(kdc: KdcRealm, tmp_path: Path) -> None:
    ghost = kdc.realm.add_service(["HTTP/ghost"], tmp_path / "ghost.keytab")
    kdc.realm.kadmin("delprinc -force HTTP/ghost@EXAMPLE.COM")
    key = tmp_path / "cookie.key"
    key.write_text("k" * 48)
    config = tmp_path / "gw.toml"
    config.write_text(to_toml({
        "server": {"port": free_port(), "workers": 1},
        "cookie": {"secret_files": [str(key)]},
        "backend": {"url": "http://localhost:9", "auth": "kerberos", "principal": "HTTP/ghost@EXAMPLE.COM",
                    "keytab": str(ghost)},
    }))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AUTHGATEWAY_")}, **kdc.env}
    done = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(config)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"cannot start: keytab '{ghost}': acquiring the gateway's credentials as HTTP/ghost@EXAMPLE.COM " \
           "for the backend failed: " in done.stderr
    assert "Traceback" not in done.stderr
