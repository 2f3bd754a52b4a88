"""Forwarded headers through the real gateway: believed from a trusted proxy only.

The test client connects from 127.0.0.1.  One gateway trusts nobody (the
default), so whatever forwarded headers the client writes change nothing;
the other trusts 127.0.0.1, standing in for the load balancer in front of
it.  The proxy-user ``hosts`` rule, the audit line and the URLs the embedded
backend writes (from the X-Forwarded-* the gateway sends it) show which
client address, scheme and host the gateway went by.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from tests.conftest import GatewayProcess

pytestmark = pytest.mark.timeout(120)

RULES = [{"user": "remote", "users": ["*"], "hosts": ["10.0.0.0/8"]}]
SPOOF = {
    "X-Forwarded-For": "10.1.2.3",
    "Forwarded": "for=10.1.2.3;proto=https;host=files.example.com",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "files.example.com",
    "X-Real-IP": "10.1.2.3",
}


def mkdirs(gw: GatewayProcess, path: str, headers: dict[str, str]) -> requests.Response:
    return requests.put(f"{gw.url}/webhdfs/v1{path}", params={"op": "MKDIRS", "user.name": "remote", "doas": "bob"},
                        headers=headers, timeout=10)


def create_redirect(gw: GatewayProcess, headers: dict[str, str]) -> str:
    """Where the WebHDFS face sends the data step of a CREATE."""
    r = requests.put(f"{gw.url}/webhdfs/v1/user/bob/f", params={"op": "CREATE", "user.name": "bob"},
                     headers=headers, allow_redirects=False, timeout=10)
    assert r.status_code == 307, r.text
    return r.headers["Location"]


def test_forwarded_headers_from_an_untrusted_peer_change_nothing(gateway: Callable[..., GatewayProcess]) -> None:
    gw = gateway(proxy_users=RULES)
    r = mkdirs(gw, "/user/bob/spoofed", SPOOF)
    assert r.status_code == 403
    assert r.json()["RemoteException"]["message"] == "Unauthorized connection for super-user: remote from IP 127.0.0.1"
    assert not (gw.root / "user" / "bob" / "spoofed").exists()
    assert "impersonation refused user=remote doas=bob remote=127.0.0.1 " in gw.log()
    # The data step's URL is the gateway's as the client reached it, not the one claimed.
    assert create_redirect(gw, SPOOF).startswith(f"{gw.url}/webhdfs/v1/user/bob/f?")


def test_a_trusted_proxy_names_the_client(gateway: Callable[..., GatewayProcess]) -> None:
    gw = gateway(proxy_users=RULES, server={"trusted_proxies": ["127.0.0.1", "192.168.0.0/16"]})
    r = mkdirs(gw, "/user/bob/via-lb", {"X-Forwarded-For": "10.1.2.3"})
    assert (r.status_code, r.json()) == (200, {"boolean": True}), r.text
    # Walked from the right past trusted hops: the client is the first untrusted one, whatever lies left of it.
    r = mkdirs(gw, "/user/bob/walked", {"X-Forwarded-For": "10.1.2.3, 203.0.113.5, 192.168.4.4"})
    assert r.status_code == 403
    assert r.json()["RemoteException"]["message"] == "Unauthorized connection for super-user: remote from IP 203.0.113.5"
    assert "impersonation refused user=remote doas=bob remote=203.0.113.5 " in gw.log()
    # The other family is not believed: this gateway reads X-Forwarded-*.
    r = mkdirs(gw, "/user/bob/rfc", {"Forwarded": "for=10.1.2.3"})
    assert r.status_code == 403 and r.json()["RemoteException"]["message"].endswith("from IP 127.0.0.1")
    location = create_redirect(gw, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "files.example.com"})
    assert location.startswith("https://files.example.com/webhdfs/v1/user/bob/f?")


def test_a_trusted_proxy_speaking_rfc_7239(gateway: Callable[..., GatewayProcess]) -> None:
    gw = gateway(proxy_users=RULES, server={"trusted_proxies": ["127.0.0.1"], "forwarded_headers": "forwarded"})
    r = mkdirs(gw, "/user/bob/rfc", {"Forwarded": 'for="10.1.2.3:4711";proto=https;host="files.example.com:8443"'})
    assert (r.status_code, r.json()) == (200, {"boolean": True}), r.text
    r = mkdirs(gw, "/user/bob/xff", {"X-Forwarded-For": "10.1.2.3"})
    assert r.status_code == 403 and r.json()["RemoteException"]["message"].endswith("from IP 127.0.0.1")
    location = create_redirect(gw, {"Forwarded": "for=_hidden;proto=https;host=files.example.com"})
    assert location.startswith("https://files.example.com/webhdfs/v1/user/bob/f?")
