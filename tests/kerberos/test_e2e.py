"""Real clients against the real gateway (``authgateway serve``) and a real KDC.

The seed's Security section, with curl: the first request does SPNEGO and
stores the ``hadoop.auth`` cookie, later ones need only the cookie.  The
seed writes ``-b`` (read cookies) where curl stores with ``-c`` (write the
jar) and the other way round; as written, curl would never store the cookie
and the second command would empty the jar.  The flow is tested the way curl
needs it: ``-c`` to store, ``-b`` to send (or both on every call).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gssapi
import pytest
import requests
from requests_gssapi import REQUIRED, HTTPSPNEGOAuth  # type: ignore[import-untyped]
from requests_kerberos import HTTPKerberosAuth  # type: ignore[import-untyped]

from tests.kerberos.client import handshake
from tests.kerberos.conftest import KdcRealm, gateway_kerberos

pytestmark = pytest.mark.kerberos

COOKIE = "hadoop.auth"
Gateway = Callable[..., Any]


def start(gateway: Gateway, kdc: KdcRealm, tmp_path: Path, *, validity: int = 600, **kerberos: Any) -> Any:
    options = gateway_kerberos(kdc, tmp_path, **kerberos)
    return gateway(
        auth={"schemes": ["kerberos", "simple"], "kerberos": options},
        cookie={"validity": validity},
        env=kdc.env,
    )


def curl(*args: str, ccache: str | None = None, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """Run curl; return (status, headers, body)."""
    full_env = {**os.environ, **(env or {})}
    if ccache is not None:
        full_env["KRB5CCNAME"] = ccache
    proc = subprocess.run(
        ["curl", "-sS", "-D", "-", "--max-time", "20", *args],
        env=full_env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30, check=True,
    )
    # With --negotiate curl prints the headers of every response; the last one counts.
    blocks = re.split(r"\r?\n\r?\n", proc.stdout)
    heads = [b for b in blocks if b.startswith("HTTP/")]
    head = heads[-1]
    body = proc.stdout[proc.stdout.rindex(head) + len(head) :].lstrip("\r\n")
    return int(head.split()[1]), head, body


def jar_cookie(jar: Path) -> str | None:
    for line in jar.read_text().splitlines() if jar.exists() else []:
        fields = line.split("\t")
        if len(fields) == 7 and fields[5] == COOKIE:
            return fields[6]
    return None


def challenges(head: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in head.splitlines() if line.lower().startswith("www-authenticate:")]


def test_a_bare_request_is_offered_both_schemes_and_either_works(
    gateway: Gateway, kdc: KdcRealm, tmp_path: Path
) -> None:
    gw = start(gateway, kdc, tmp_path)
    bare = requests.get(f"{gw.url}/?op=homedir", timeout=10)
    assert bare.status_code == 401
    assert bare.raw.headers.getlist("WWW-Authenticate") == ["Negotiate", "PseudoAuth"]
    pseudo = requests.get(f"{gw.url}/?op=homedir&user.name=bob", timeout=10)
    assert pseudo.status_code == 200
    assert pseudo.json() == {"homeDir": f"{gw.url}/user/bob"}
    hs = handshake(kdc.ccache("alice"))
    spnego = requests.get(f"{gw.url}/?op=homedir", headers={"Authorization": hs.header}, timeout=10)
    assert spnego.status_code == 200
    assert spnego.json() == {"homeDir": f"{gw.url}/user/alice"}
    hs.finish(spnego.headers["WWW-Authenticate"])
    assert COOKIE in spnego.cookies


def test_curl_negotiate_then_the_cookie_alone(gateway: Gateway, kdc: KdcRealm, tmp_path: Path) -> None:
    gw = start(gateway, kdc, tmp_path)
    url = f"{gw.url}/?op=homedir"
    cc = kdc.ccache("alice")
    jar = tmp_path / "hoopauth"

    status, head, body = curl("--negotiate", "-u", ":", "-c", str(jar), url, ccache=cc)
    assert status == 200, head
    assert f'"{gw.url}/user/alice"' in body
    assert any(c.startswith("Negotiate ") for c in challenges(head)), "no mutual-authentication token"
    assert jar_cookie(jar)

    kdc.realm.kdestroy(cc)
    for args in (("-b", str(jar)), ("-b", str(jar), "-c", str(jar))):
        status, head, body = curl(*args, f"{gw.url}/?op=list", ccache=cc)
        assert status == 200, head
    assert jar_cookie(jar), "the cookie must survive in the jar"
    # Without a ticket, --negotiate is harmless: the cookie still authenticates.
    status, _, body = curl("--negotiate", "-u", ":", "-b", str(jar), url, ccache=cc)
    assert status == 200 and "/user/alice" in body


def test_curl_with_one_jar_for_reading_and_writing(gateway: Gateway, kdc: KdcRealm, tmp_path: Path) -> None:
    gw = start(gateway, kdc, tmp_path)
    jar, cc = tmp_path / "jar", kdc.ccache("alice")
    status, _, _ = curl("--negotiate", "-u", ":", "-b", str(jar), "-c", str(jar), f"{gw.url}/?op=homedir", ccache=cc)
    assert status == 200
    kdc.realm.kdestroy(cc)
    status, _, body = curl("-b", str(jar), "-c", str(jar), f"{gw.url}/?op=homedir", ccache=cc)
    assert status == 200 and "/user/alice" in body


def test_a_tampered_cookie_gets_a_fresh_negotiate_challenge(gateway: Gateway, kdc: KdcRealm, tmp_path: Path) -> None:
    gw = start(gateway, kdc, tmp_path)
    cc = kdc.ccache("alice")
    jar = tmp_path / "jar"
    assert curl("--negotiate", "-u", ":", "-c", str(jar), f"{gw.url}/?op=homedir", ccache=cc)[0] == 200
    value = jar_cookie(jar)
    assert value
    kdc.realm.kdestroy(cc)
    tampered = value.replace("alice", "hdfs") if "alice" in value else value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    for bad in (tampered, value[:-1], value + "x", "garbage"):
        status, head, _ = curl("-H", f"Cookie: {COOKIE}={bad}", f"{gw.url}/?op=homedir", ccache=cc)
        assert status == 401, bad
        assert challenges(head)[:1] == ["Negotiate"], head
        assert f"Set-Cookie: {COOKIE}=" in head  # the bad cookie is cleared


def test_an_expired_cookie_gets_a_fresh_challenge_and_negotiate_renews_it(
    gateway: Gateway, kdc: KdcRealm, tmp_path: Path
) -> None:
    gw = start(gateway, kdc, tmp_path, validity=2)
    cc = kdc.ccache("alice")
    first = requests.get(f"{gw.url}/?op=homedir", auth=_spnego(cc), timeout=10)
    assert first.status_code == 200
    value = re.search(rf"{re.escape(COOKIE)}=([^;]+)", first.headers["Set-Cookie"]).group(1)  # type: ignore[union-attr]
    ok, _, _ = curl("-H", f"Cookie: {COOKIE}={value}", f"{gw.url}/?op=homedir", ccache=cc)
    assert ok == 200
    time.sleep(3.1)
    status, head, _ = curl("-H", f"Cookie: {COOKIE}={value}", f"{gw.url}/?op=homedir", ccache=cc)
    assert status == 401
    assert "Negotiate" in challenges(head)
    jar = tmp_path / "jar"
    status, _, body = curl("--negotiate", "-u", ":", "-c", str(jar), "-H", f"Cookie: {COOKIE}={value}",
                           f"{gw.url}/?op=homedir", ccache=cc)
    assert status == 200 and "/user/alice" in body
    assert jar_cookie(jar) not in (None, value)


def _spnego(ccache: str, **kwargs: Any) -> HTTPSPNEGOAuth:
    return HTTPSPNEGOAuth(creds=gssapi.Credentials(usage="initiate", store={"ccache": ccache}), **kwargs)


def test_requests_gssapi_with_mutual_authentication_required(gateway: Gateway, kdc: KdcRealm, tmp_path: Path) -> None:
    gw = start(gateway, kdc, tmp_path)
    cc = kdc.ccache("bob")
    for opportunistic in (False, True):
        resp = requests.get(
            f"{gw.url}/?op=homedir",
            auth=_spnego(cc, mutual_authentication=REQUIRED, opportunistic_auth=opportunistic),
            timeout=10,
        )
        # requests-gssapi raises MutualAuthenticationError if the reply token is missing or wrong.
        assert resp.status_code == 200
        assert resp.json() == {"homeDir": f"{gw.url}/user/bob"}
        assert resp.headers["WWW-Authenticate"].startswith("Negotiate ")


def test_requests_kerberos_with_its_defaults(
    gateway: Gateway, kdc: KdcRealm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = start(gateway, kdc, tmp_path)
    monkeypatch.setenv("KRB5CCNAME", kdc.ccache("alice"))
    with requests.Session() as session:
        resp = session.get(f"{gw.url}/?op=homedir", auth=HTTPKerberosAuth(), timeout=10)
        assert resp.status_code == 200
        assert resp.json() == {"homeDir": f"{gw.url}/user/alice"}
        # The session's cookie now does the work: no ticket needed.
        again = session.get(f"{gw.url}/?op=homedir", timeout=10)
        assert again.status_code == 200


def test_a_principal_that_is_not_allowed_gets_403(gateway: Gateway, kdc: KdcRealm, tmp_path: Path) -> None:
    gw = start(gateway, kdc, tmp_path, allowed_principals=["alice@EXAMPLE.COM", "bob@EXAMPLE.COM"])
    status, head, body = curl("--negotiate", "-u", ":", f"{gw.url}/?op=homedir", ccache=kdc.ccache("mallory"))
    assert status == 403, head
    assert "mallory@EXAMPLE.COM is not allowed" in body
    assert f"Set-Cookie: {COOKIE}=" not in head or "Max-Age=0" in head
    assert curl("--negotiate", "-u", ":", f"{gw.url}/?op=homedir", ccache=kdc.ccache("alice"))[0] == 200


def test_a_ticket_for_the_wrong_service_principal_gets_401(gateway: Gateway, kdc: KdcRealm, tmp_path: Path) -> None:
    gw = start(gateway, kdc, tmp_path)
    resp = requests.get(
        f"{gw.url}/?op=homedir", auth=_spnego(kdc.ccache("alice"), target_name="HTTP@otherhost"), timeout=10
    )
    assert resp.status_code == 401
    assert resp.raw.headers.getlist("WWW-Authenticate") == ["Negotiate", "PseudoAuth"]
    assert COOKIE not in resp.cookies


def test_a_replayed_token_is_refused_through_the_gateway(gateway: Gateway, kdc: KdcRealm, tmp_path: Path) -> None:
    gw = start(gateway, kdc, tmp_path)
    header = {"Authorization": handshake(kdc.ccache("alice")).header}
    assert requests.get(f"{gw.url}/?op=homedir", headers=header, timeout=10).status_code == 200
    replayed = requests.get(f"{gw.url}/?op=homedir", headers=header, timeout=10)
    assert replayed.status_code == 401
    assert "replay" in replayed.json()["message"].lower()


@pytest.mark.parametrize(
    "authorization",
    ["Negotiate", "Negotiate %%%", "Negotiate " + base64.b64encode(b"NTLMSSP\x00\x01" + b"\x00" * 30).decode(),
     "Negotiate " + base64.b64encode(os.urandom(300)).decode(), "NTLM TlRMTVNTUAABAAAA"],
    ids=["empty", "not-base64", "ntlm-in-negotiate", "random", "ntlm"],
)
def test_garbage_and_ntlm_get_401_never_500(gateway: Gateway, kdc: KdcRealm, tmp_path: Path, authorization: str) -> None:
    gw = start(gateway, kdc, tmp_path)
    resp = requests.get(f"{gw.url}/?op=homedir", headers={"Authorization": authorization}, timeout=10)
    assert resp.status_code == 401
    assert resp.raw.headers.getlist("WWW-Authenticate") == ["Negotiate", "PseudoAuth"]
    assert resp.json()["message"]


def test_the_cookie_ends_with_the_ticket(gateway: Gateway, kdc: KdcRealm, tmp_path: Path) -> None:
    gw = start(gateway, kdc, tmp_path, validity=3600)
    short = requests.get(f"{gw.url}/?op=homedir", auth=_spnego(kdc.ccache("alice", lifetime="2m")), timeout=10)
    assert short.status_code == 200
    max_age = int(re.search(r"Max-Age=(\d+)", short.headers["Set-Cookie"]).group(1))  # type: ignore[union-attr]
    assert 100 <= max_age <= 120, max_age
    long = requests.get(f"{gw.url}/?op=homedir", auth=_spnego(kdc.ccache("alice")), timeout=10)
    max_age = int(re.search(r"Max-Age=(\d+)", long.headers["Set-Cookie"]).group(1))  # type: ignore[union-attr]
    assert 3590 <= max_age <= 3600, max_age


@pytest.mark.parametrize("problem", ["missing", "wrong-principal"])
def test_serve_refuses_to_start_with_a_bad_keytab_naming_file_and_principal(
    kdc: KdcRealm, tmp_path: Path, problem: str
) -> None:
    from tests.conftest import REPO

    keytab = tmp_path / "missing.keytab" if problem == "missing" else kdc.other_keytab
    config = tmp_path / "gw.toml"
    config.write_text(
        f'[auth]\nschemes = ["kerberos", "simple"]\n[auth.kerberos]\nkeytab = "{keytab}"\n'
        f'principal = "HTTP/localhost@EXAMPLE.COM"\n[embedded]\nroot = "{tmp_path / "root"}"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
        cwd=REPO, env={**os.environ, **kdc.env}, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert "invalid configuration" in done.stderr
    assert str(keytab) in done.stderr and "HTTP/localhost@EXAMPLE.COM" in done.stderr
