"""A browser with a Kerberos ticket, forged into a POST: refused before any handshake (gateway.csrf).

The browser's part is played by requests with SPNEGO and a browser's
User-Agent; ``opportunistic_auth`` sends the Negotiate token up front, as a
browser does for an intranet host it already negotiated with.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from requests_gssapi import OPTIONAL, HTTPSPNEGOAuth  # type: ignore[import-untyped]

from gateway.csrf import CSRF_MESSAGE
from tests.kerberos.conftest import KdcRealm, gateway_kerberos
from tests.kerberos.test_outbound import HANDSHAKE, Backend, backend  # noqa: F401 (a fixture)

pytestmark = pytest.mark.kerberos

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def browser(kdc: KdcRealm, user: str) -> requests.Session:
    os.environ["KRB5CCNAME"] = kdc.ccache(user)  # the realm fixture restores the environment
    session = requests.Session()
    session.auth = HTTPSPNEGOAuth(mutual_authentication=OPTIONAL, opportunistic_auth=True)
    session.headers["User-Agent"] = FIREFOX
    return session


def test_the_gateway_refuses_a_forged_post_before_the_handshake(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path
) -> None:
    gw = gateway(auth={"schemes": ["kerberos"], "kerberos": gateway_kerberos(kdc, tmp_path)}, env=kdc.env)
    with browser(kdc, "alice") as session:
        r = session.put(f"{gw.url}/webhdfs/v1/user/alice/made", params={"op": "MKDIRS"},
                        headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=20)
        assert r.status_code == 400 and CSRF_MESSAGE in r.json()["RemoteException"]["message"], r.text
        assert "Set-Cookie" not in r.headers and "WWW-Authenticate" not in r.headers
        assert "authenticated user=alice" not in gw.log()  # no ticket was even looked at
        assert not (gw.root / "user" / "alice" / "made").exists()
        # The page of the gateway's own origin that adds the header goes on.
        r = session.put(f"{gw.url}/webhdfs/v1/user/alice/made", params={"op": "MKDIRS"},
                        headers={"X-XSRF-HEADER": ""}, timeout=20)
        assert (r.status_code, r.json()) == (200, {"boolean": True}), r.text


def test_the_embedded_backend_reached_directly_with_spnego_refuses_it_too(
    backend: Callable[..., Backend], kdc: KdcRealm  # noqa: F811
) -> None:
    b = backend()
    with browser(kdc, "alice") as session:
        r = session.post(f"{b.url}/api/v1/paths/user/alice/delete", timeout=20)
        assert CSRF_MESSAGE in r.text, r.text
        assert b.handshakes() == 0 and "SPNEGO handshake accepted" not in b.log()
        r = session.put(f"{b.url}/webhdfs/v1/user/alice/made", params={"op": "MKDIRS"},
                        headers={"X-XSRF-HEADER": ""}, timeout=20)
        assert (r.status_code, r.json()) == (200, {"boolean": True}), r.text
        assert "SPNEGO handshake accepted for alice@EXAMPLE.COM" in b.log()
