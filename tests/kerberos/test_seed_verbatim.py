"""The seed's Kerberos commands as printed, typed into a shell.

``curl --negotiate -u foo URL`` asks for foo's password; the seed says to
press Enter.  The cookie-jar flags are used as curl defines them (``-c``
stores, ``-b`` sends): the seed swaps them, which would never store a cookie.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.kerberos.conftest import KdcRealm
from tests.kerberos.test_e2e import Gateway, jar_cookie, start

pytestmark = pytest.mark.kerberos


def shell_curl(args: list[str], ccache: str, kdc: KdcRealm) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **kdc.env, "KRB5CCNAME": ccache}
    return subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args],
        input="\n",  # "when asked for the password press [ENTER]"
        env=env, capture_output=True, text=True, timeout=30, check=True,
    )


def status_and_body(proc: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    body, _, status = proc.stdout.rpartition("\n")
    return int(status), body


def test_seed_commands_as_printed(gateway: Gateway, kdc: KdcRealm, tmp_path: Path) -> None:
    gw = start(gateway, kdc, tmp_path)
    cc = kdc.ccache("alice")  # $ kinit
    # $ curl --negotiate -u foo "http://<HOOP_HOST>:14000?op=homedir"
    status, body = status_and_body(shell_curl(["--negotiate", "-u", "foo", f"{gw.url}?op=homedir"], cc, kdc))
    assert (status, body) == (200, f'{{"homeDir": "{gw.url}/user/alice"}}')

    # Establishing a session: the first request stores the cookie ...
    jar = tmp_path / "hoopauth"
    status, _ = status_and_body(shell_curl(["--negotiate", "-u", "foo", "-c", str(jar), f"{gw.url}?op=homedir"], cc, kdc))
    assert status == 200 and jar_cookie(jar)
    # ... and later ones need nothing else, not even a ticket.
    kdc.realm.kdestroy(cc)
    status, body = status_and_body(shell_curl(["-b", str(jar), f"{gw.url}/user/alice?op=status"], cc, kdc))
    # Authenticated: the backend itself answers that alice has no home yet (401 otherwise).
    assert (status, json.loads(body)) == (404, {
        "statusCode": 404, "reason": "Not Found", "message": "File does not exist: /user/alice",
        "exception": "FileNotFoundException",
    }), body  # fmt: skip
    status, body = status_and_body(shell_curl(["-b", str(jar), f"{gw.url}?op=homedir"], cc, kdc))
    assert (status, body) == (200, f'{{"homeDir": "{gw.url}/user/alice"}}')


def test_large_tokens_reach_the_scheme(gateway: Gateway, kdc: KdcRealm, tmp_path: Path) -> None:
    """Tickets with many group SIDs exceed aiohttp's 8 KB default header limit."""
    import requests

    gw = start(gateway, kdc, tmp_path)
    token = "YII" + "A" * 40_000  # 40 KB of base64, not a real token
    resp = requests.get(f"{gw.url}/?op=homedir", headers={"Authorization": f"Negotiate {token}"}, timeout=10)
    assert resp.status_code == 401, resp.text
    doc: dict[str, Any] = resp.json()
    assert doc["statusCode"] == 401
    assert "AAAAAAAA" not in resp.text
