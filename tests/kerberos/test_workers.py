"""Kerberos with several worker processes: the replay cache is one for all of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.test_workers import served_by
from tests.kerberos.client import handshake
from tests.kerberos.conftest import KdcRealm, gateway_kerberos

pytestmark = [pytest.mark.kerberos, pytest.mark.timeout(120)]


def test_a_token_replayed_to_another_worker_is_refused(
    gateway: Callable[..., Any], kdc: KdcRealm, tmp_path: Path
) -> None:
    gw = gateway(
        server={"workers": 2},
        auth={"schemes": ["kerberos"], "kerberos": gateway_kerberos(kdc, tmp_path)},
        env=kdc.env,
    )
    header = {"Authorization": handshake(kdc.ccache("alice")).header}
    first = requests.get(f"{gw.url}/", params={"op": "homedir", "n": 0}, headers=header, timeout=10)
    assert first.status_code == 200, first.text
    # Each replay on a connection of its own, until one has reached the other worker.
    for n in range(1, 61):
        replayed = requests.get(f"{gw.url}/", params={"op": "homedir", "n": n}, headers=header, timeout=10)
        assert replayed.status_code == 401, replayed.text
        assert "replay" in replayed.json()["message"].lower()
        workers = served_by(gw)
        if 0 in workers and n in workers and workers[n] != workers[0]:
            break
    else:
        pytest.fail(f"no replay reached the other worker: {served_by(gw)}")
