"""HTTPS: the gateway serves TLS, marks its cookie Secure and tells the backend."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import GatewayProcess
from tests.e2e.curl import curl


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:  # Debian ships it with every curl; its absence is a broken machine
        pytest.fail("openssl is required to make a test certificate")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def test_https_sets_secure_cookies_and_forwarded_proto(
    gateway: Callable[..., GatewayProcess], certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = certificate
    gw = gateway(server={"tls_cert_file": str(cert), "tls_key_file": str(key)})
    url = gw.url.replace("http://", "https://")
    jar = tmp_path / "jar"
    r = curl("--cacert", str(cert), "-c", str(jar), f"{url}/?op=homedir&user.name=hdfs")
    assert r.status == 200
    assert r.json() == {"homeDir": f"{url}/user/hdfs"}, "the backend must build https URLs"
    attrs = [a.strip() for a in r.header("Set-Cookie").split(";")]
    assert "Secure" in attrs and "HttpOnly" in attrs
    r = curl("--cacert", str(cert), "-b", str(jar), f"{url}/?op=list")
    assert r.status == 200
    # Plain HTTP on the TLS port is refused, not served.
    proc = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{gw.url}/?op=homedir&user.name=hdfs"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.stdout in ("000", "400"), proc.stdout
