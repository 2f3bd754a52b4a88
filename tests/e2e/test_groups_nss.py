"""A slow NSS (a far or failing LDAP/SSSD directory) holds up only the requests that wait for it.

The gateway runs with ``[groups] source = "os"`` and tests/slow_nss.c
preloaded: the system's own user lookup, made to take seconds for one user.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.conftest import GatewayProcess

pytestmark = pytest.mark.timeout(120)

SLOW = 3.0  # seconds NSS takes for "slowpoke"
SHIM = Path(__file__).resolve().parents[1] / "slow_nss.c"


@pytest.fixture
def slow_nss(tmp_path: Path) -> dict[str, str]:
    """The environment that makes NSS slow for "slowpoke", its lookups counted in SLOW_NSS_LOG."""
    library = tmp_path / "slow_nss.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(library), str(SHIM), "-ldl"], check=True)
    return {"LD_PRELOAD": str(library), "SLOW_NSS_USER": "slowpoke", "SLOW_NSS_SECONDS": str(SLOW),
            "SLOW_NSS_LOG": str(tmp_path / "lookups.log")}


def status(gw: GatewayProcess, user: str) -> tuple[int, float]:
    started = time.monotonic()
    r = requests.get(f"{gw.url}/webhdfs/v1/", params={"op": "GETFILESTATUS", "user.name": user}, timeout=30)
    return r.status_code, time.monotonic() - started


@pytest.mark.parametrize(
    ("routes", "slowpokes_status"),
    [
        pytest.param({}, 200, id="embedded-permissions"),  # the embedded backend asks every user's groups
        # The gateway asks (and refuses: slowpoke is in no group), the backend is never reached.
        pytest.param({"routes": [{"prefix": "/webhdfs/v1/", "backend": "embedded", "dialect": "webhdfs",
                                  "users": ["alice"], "groups": ["staff"]}]}, 403, id="route-groups"),
    ],
)
def test_a_slow_group_lookup_does_not_stall_other_requests(
    gateway: Callable[..., GatewayProcess], slow_nss: dict[str, str], routes: dict[str, object], slowpokes_status: int
) -> None:
    # One worker: its loop is the one a blocking lookup would stall.
    gw = gateway(env=slow_nss, server={"workers": 1}, groups={"source": "os"}, **routes)
    assert status(gw, "alice")[0] == 200  # warm: alice's groups are known, the connection pool is up
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        slow = [pool.submit(status, gw, "slowpoke") for _ in range(5)]
        time.sleep(0.5)  # the lookups for slowpoke are under way
        fast = [status(gw, "alice") for _ in range(5)]
        assert not any(s.done() for s in slow)
        assert all(code == 200 for code, _ in fast), fast
        assert max(took for _, took in fast) < 1.0, fast
        answers = [s.result() for s in slow]
    assert all(code == slowpokes_status for code, _ in answers), answers
    assert all(took >= SLOW - 0.6 for _, took in answers), answers
    # Five requests at once for one user: one lookup.
    assert Path(slow_nss["SLOW_NSS_LOG"]).read_text().count("lookup") == 1
