"""The seed's Alluxio examples with Kerberos, through the real gateway (``authgateway serve``) and a real KDC.

The gateway accepts only SPNEGO.  Both programs run as their own processes
and find their ticket and realm the way they would in real life, through
``KRB5CCNAME`` and ``KRB5_CONFIG``:

* the seed's Python example (``SEED_PROGRAM`` of
  ``tests/e2e/test_embedded_alluxio_client.py``) with requests-gssapi's
  ``HTTPSPNEGOAuth`` (mutual authentication OPTIONAL) on ``client.session``
  instead of ``user.name``;
* the seed's Go example (``tests/clients/seed-go``) with go-spnego's
  transport (``SEED_AUTH=kerberos``).

Both write at the top level, which only the embedded store's superuser
``hdfs`` may do.  The gateway's ``auth_to_local`` rules map the admin
principal ``alice/admin`` to ``hdfs``, as a Hadoop cluster maps its HDFS
administrators' principals; ``alice`` stays ``alice``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.clients.gobuild import build_go_program
from tests.conftest import GatewayProcess
from tests.e2e.test_embedded_alluxio_client import SEED_PROGRAM
from tests.e2e.test_observe import logged_access_lines
from tests.kerberos.conftest import KdcRealm, gateway_kerberos

pytestmark = [pytest.mark.kerberos, pytest.mark.timeout(120)]

PSEUDO_AUTH_LINE = "client.session.params = {'user.name': USER}\n"
SPNEGO_AUTH_LINES = (
    "from requests_gssapi import HTTPSPNEGOAuth, OPTIONAL\n"
    "client.session.auth = HTTPSPNEGOAuth(mutual_authentication=OPTIONAL)\n"
)
NAME_RULES = "RULE:[2:$1/$2@$0](alice/admin@EXAMPLE\\.COM)s/.*/hdfs/ DEFAULT"  # tests.conftest writes no newlines


@pytest.fixture(scope="session")
def seed_go(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_go_program(tmp_path_factory, "seed-go")


@pytest.fixture
def gw(gateway: Callable[..., GatewayProcess], kdc: KdcRealm, tmp_path: Path) -> GatewayProcess:
    return gateway(
        auth={
            "schemes": ["kerberos"],
            "kerberos": gateway_kerberos(
                kdc, tmp_path, name_rules=NAME_RULES,
                allowed_principals=["alice@EXAMPLE.COM", "alice/admin@EXAMPLE.COM"],
            ),
        },
        env=kdc.env,
    )


def run(args: list[str], kdc: KdcRealm, principal: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``args`` with ``principal``'s ticket in ``KRB5CCNAME`` and the realm's ``KRB5_CONFIG``."""
    env: Mapping[str, str] = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("KRB5", "SEED_", "HADOOP_"))},
        **kdc.env,
        "KRB5CCNAME": kdc.ccache(principal),
        **extra,
    }
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_the_seed_python_example_with_spnego_runs_to_its_last_done(
    gw: GatewayProcess, kdc: KdcRealm, tmp_path: Path
) -> None:
    assert SEED_PROGRAM.count(PSEUDO_AUTH_LINE) == 1
    program = tmp_path / "seed_example.py"
    program.write_text(SEED_PROGRAM.replace(PSEUDO_AUTH_LINE, SPNEGO_AUTH_LINES).replace("PORT", str(gw.port)))
    result = run([sys.executable, str(program)], kdc, "alice/admin", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line]
    assert lines[-1] == "\x1b[32mdone\x1b[0m"
    assert "Alluxio works with Python!" in result.stdout
    assert '"owner": "hdfs"' in result.stdout
    assert not (gw.root / "py-test-dir").exists()
    assert "principal=alice/admin@EXAMPLE.COM" in gw.log()


def test_the_seed_go_example_with_spnego_prints_success(
    seed_go: Path, gw: GatewayProcess, kdc: KdcRealm, tmp_path: Path
) -> None:
    result = run([str(seed_go), "localhost", str(gw.port)], kdc, "alice/admin", tmp_path, SEED_AUTH="kerberos")
    assert (result.returncode, result.stdout) == (0, "Result: Success\n"), result.stderr
    assert (gw.root / "test_path").read_bytes() == b"Success"
    assert "principal=alice/admin@EXAMPLE.COM" in gw.log()


def test_the_seed_go_example_with_spnego_is_authenticated(
    seed_go: Path, gw: GatewayProcess, kdc: KdcRealm, tmp_path: Path
) -> None:
    """Whatever the Alluxio face answers, go-spnego's ticket gets the Go program past the gateway."""
    run([str(seed_go), "localhost", str(gw.port)], kdc, "alice", tmp_path, SEED_AUTH="kerberos")
    log = gw.log()
    assert "user=alice principal=alice@EXAMPLE.COM scheme=kerberos" in log
    assert ("POST", "/api/v1/paths//test_path/exists", 200, "alice") in {
        (line["method"], line["path"], line["status"], line["user"]) for line in logged_access_lines(gw)
    }
