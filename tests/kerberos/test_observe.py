"""Metrics, audit lines and readiness of a Kerberos gateway, against the real KDC."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import free_port
from tests.e2e.test_observe import audit_lines, pick, readyz, requests_by, scrape, wait_ready, wait_until
from tests.kerberos.client import handshake
from tests.kerberos.conftest import KdcRealm, gateway_kerberos

pytestmark = [pytest.mark.kerberos, pytest.mark.timeout(120)]


@pytest.fixture
def krb_gateway(gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path) -> Any:
    keytab = tmp_path / "http.keytab"  # a copy of its own: the test takes it away
    shutil.copy(kdc.http_keytab, keytab)
    admin = f"127.0.0.1:{free_port()}"
    gw = gateway(
        auth={"schemes": ["kerberos"], "kerberos": {**gateway_kerberos(kdc, tmp_path), "keytab": str(keytab)}},
        admin={"listen": admin},
        log={"audit_file": str(tmp_path / "audit0.log"), "access_file": str(tmp_path / "access0.log")},
        env=kdc.env,
    )
    gw.admin = f"http://{admin}"
    gw.audit_path = tmp_path / "audit0.log"
    gw.access_path = tmp_path / "access0.log"
    gw.keytab = keytab
    wait_ready(gw)
    return gw


def test_handshakes_failures_and_sessions_are_counted(krb_gateway: Any, kdc: KdcRealm) -> None:
    gw = krb_gateway
    url = f"{gw.url}/"
    assert requests.get(url, params={"op": "homedir"}, timeout=10).status_code == 401  # the first leg
    bad = "Negotiate " + base64.b64encode(b"not a token").decode()
    assert requests.get(url, params={"op": "homedir"}, headers={"Authorization": bad}, timeout=10).status_code in (
        400, 401)
    session = requests.Session()
    token = handshake(kdc.ccache("alice"))
    r = session.get(url, params={"op": "homedir"}, headers={"Authorization": token.header}, timeout=10)
    assert r.status_code == 200, r.text
    assert session.get(url, params={"op": "homedir"}, timeout=10).status_code == 200  # by cookie
    wait_until("four requests counted", lambda: sum(requests_by(scrape(gw)).values()) == 4)
    samples = scrape(gw)
    by = requests_by(samples)
    assert by[("/", "GET", "200", "kerberos")] == 2.0
    assert samples[("authgateway_auth_handshake_seconds_count", frozenset({("scheme", "kerberos")}))] == 2.0
    failures = {dict(lbl)["reason"]: v for lbl, v in pick(samples, "authgateway_auth_failures_total").items()}
    assert failures["no_credentials"] == 1.0
    assert failures.get("malformed", 0) + failures.get("rejected", 0) == 1.0
    wait_until("four audit lines", lambda: len(audit_lines(gw)) == 4)
    users = [(a["allowed"], a["user"], a["effective"], a["status"]) for a in audit_lines(gw)]
    assert users[2:] == [("true", "alice", "alice", "200")] * 2
    assert all(u[0] == "false" and u[1] == "-" for u in users[:2])
    # Neither the SPNEGO token nor the cookie is in any line.
    cookie = session.cookies["hadoop.auth"]
    for text in (gw.audit_path.read_text(), gw.access_path.read_text(), gw.log()):
        assert cookie not in text
        assert token.header.split(" ", 1)[1][:40] not in text


def test_readyz_says_when_the_keytab_is_gone(krb_gateway: Any) -> None:
    gw = krb_gateway
    body = readyz(gw).json()
    assert body["checks"]["auth.kerberos"] == {"ok": True, "detail": "options check out"}
    gw.keytab.rename(gw.keytab.with_suffix(".moved"))
    r = readyz(gw)
    assert r.status_code == 503
    check = r.json()["checks"]["auth.kerberos"]
    assert check["ok"] is False and f"keytab = '{gw.keytab}': cannot read" in check["detail"], check
    gw.keytab.with_suffix(".moved").rename(gw.keytab)
    assert readyz(gw).status_code == 200


def test_readyz_says_when_the_keytab_for_the_backend_is_gone(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path
) -> None:
    keytab = tmp_path / "gateway.keytab"  # the gateway's own keys, towards a Kerberos backend
    kdc.realm.add_service(["HTTP/observed-gateway"], keytab)
    key = tmp_path / "cookie.key"
    key.write_text("k" * 48)
    admin = f"127.0.0.1:{free_port()}"
    gw = gateway(
        cookie={"secret_files": [str(key)]},
        backend={"url": f"http://localhost:{free_port()}", "dialect": "webhdfs", "auth": "kerberos",
                 "principal": "HTTP/observed-gateway@EXAMPLE.COM", "keytab": str(keytab)},
        admin={"listen": admin},
        env=kdc.env,
    )
    gw.admin = f"http://{admin}"
    name = "backend keytab of /"
    wait_until("the workers serve", lambda: readyz(gw).json()["checks"]["workers"]["ok"])
    assert readyz(gw).json()["checks"][name] == {
        "ok": True, "detail": f"{keytab} holds HTTP/observed-gateway@EXAMPLE.COM"}
    keytab.rename(keytab.with_suffix(".moved"))
    r = readyz(gw)
    assert r.status_code == 503
    assert r.json()["checks"][name] == {"ok": False, "detail": f"{keytab}: No such file or directory"}
