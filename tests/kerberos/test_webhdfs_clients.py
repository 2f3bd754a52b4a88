"""Kerberos WebHDFS clients through the real gateway (``authgateway serve``) and a real KDC.

HdfsCLI's ``KerberosClient`` (requests-kerberos, mutual authentication
OPTIONAL) and fsspec's ``webhdfs`` with ``kerberos=True``, unchanged, pointed
at a gateway that accepts only SPNEGO: ``/webhdfs/v1/`` reaches the embedded
backend's WebHDFS face as the principal's short name.  Each client finds its
ticket the way it would in real life, through ``KRB5CCNAME``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec  # type: ignore[import-untyped]
import pytest
from hdfs import HdfsError  # type: ignore[import-untyped]
from hdfs.ext.kerberos import KerberosClient  # type: ignore[import-untyped]

from tests.conftest import GatewayProcess
from tests.e2e.curl import curl
from tests.kerberos.conftest import KdcRealm, gateway_kerberos

pytestmark = [pytest.mark.kerberos, pytest.mark.timeout(120)]

BIG = 5 * 1024 * 1024 + 3


@pytest.fixture
def gw(gateway: Callable[..., GatewayProcess], kdc: KdcRealm, tmp_path: Path) -> GatewayProcess:
    return gateway(
        auth={
            "schemes": ["kerberos"],
            "kerberos": gateway_kerberos(kdc, tmp_path, allowed_principals=["alice@EXAMPLE.COM", "bob@EXAMPLE.COM"]),
        },
        env=kdc.env,
    )


def as_user(kdc: KdcRealm, monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    """Give this process ``user``'s ticket, where requests-kerberos looks for it."""
    monkeypatch.setenv("KRB5CCNAME", kdc.ccache(user))


def test_hdfscli_kerberos_client(gw: GatewayProcess, kdc: KdcRealm, monkeypatch: pytest.MonkeyPatch) -> None:
    as_user(kdc, monkeypatch, "alice")
    client: Any = KerberosClient(gw.url)
    assert client.status("/")["owner"] == "hdfs"
    client.makedirs("/user/alice/d", permission="750")
    big = os.urandom(BIG)
    client.write("/user/alice/d/f", data=big)  # CREATE in two steps: a 307, then the data
    client.write("/user/alice/d/f", data=b"tail", append=True)
    assert (gw.root / "user/alice/d/f").read_bytes() == big + b"tail"
    with client.read("/user/alice/d/f", offset=len(big) - 2, length=4) as reader:
        assert reader.read() == big[-2:] + b"ta"
    with client.read("/user/alice/d/f") as reader:
        assert reader.read() == big + b"tail"
    [(name, status)] = client.list("/user/alice/d", status=True)
    assert (name, status["length"], status["owner"], status["type"]) == ("f", len(big) + 4, "alice", "FILE")
    summary = client.content("/user/alice")
    assert (summary["directoryCount"], summary["fileCount"], summary["length"]) == (2, 1, len(big) + 4)
    client.rename("/user/alice/d/f", "/user/alice/g")
    client.set_permission("/user/alice/g", "600")
    assert client.status("/user/alice/g")["permission"] == "600"
    assert client.status("/user/alice/nope", strict=False) is None
    assert client.delete("/user/alice/g") is True
    assert client.delete("/user/alice/d", recursive=True) is True
    assert client.list("/user/alice") == []
    with pytest.raises(HdfsError, match="Permission denied: user=alice, access=WRITE, inode=/"):
        client.makedirs("/elsewhere")

    # With only Kerberos configured, a claimed user.name alone gets nowhere.
    r = curl(f"{gw.url}/webhdfs/v1/?op=GETHOMEDIRECTORY&user.name=hdfs")
    assert r.status == 401


def test_hdfscli_kerberos_client_for_a_principal_not_allowed(
    gw: GatewayProcess, kdc: KdcRealm, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(kdc, monkeypatch, "mallory")
    client: Any = KerberosClient(gw.url)
    with pytest.raises(HdfsError, match="mallory@EXAMPLE.COM is not allowed"):
        client.status("/")
    with pytest.raises(HdfsError, match="mallory@EXAMPLE.COM is not allowed"):
        client.write("/user/mallory/f", data=b"x")
    assert not (gw.root / "user/mallory").exists()


def test_fsspec_webhdfs_with_kerberos(gw: GatewayProcess, kdc: KdcRealm, monkeypatch: pytest.MonkeyPatch) -> None:
    as_user(kdc, monkeypatch, "bob")
    fs = fsspec.filesystem(
        "webhdfs", host="localhost", port=gw.port, kerberos=True, use_https=False, skip_instance_cache=True
    )
    big = os.urandom(BIG)
    fs.mkdir("/user/bob/fs")
    # fsspec writes in two steps (CREATE of an empty file, then APPEND): with
    # 1 MiB blocks that is six APPENDs to one data URL.  (Its "ab" mode is no
    # use here: fsspec 2026.9's WebHDFile never sets the URL it appends to.)
    with fs.open("/user/bob/fs/a.bin", "wb", block_size=1024 * 1024) as f:
        f.write(big)
        f.write(b"tail")
    assert (gw.root / "user/bob/fs/a.bin").read_bytes() == big + b"tail"
    assert fs.cat_file("/user/bob/fs/a.bin", start=len(big) - 2, end=len(big) + 2) == big[-2:] + b"ta"
    assert fs.cat("/user/bob/fs/a.bin") == big + b"tail"
    [entry] = fs.ls("/user/bob/fs", detail=True)
    assert (entry["name"], entry["size"], entry["owner"], entry["type"]) == (
        "/user/bob/fs/a.bin", len(big) + 4, "bob", "file"
    )
    assert fs.info("/user/bob/fs/a.bin")["size"] == len(big) + 4
    assert fs.content_summary("/user/bob")["length"] == len(big) + 4
    fs.mv("/user/bob/fs/a.bin", "/user/bob/b.bin")
    fs.chmod("/user/bob/b.bin", "600")  # an octal string, as WebHDFS wants
    assert fs.info("/user/bob/b.bin")["permission"] == "600"
    fs.rm("/user/bob/b.bin")
    fs.rm("/user/bob/fs", recursive=True)
    assert fs.ls("/user/bob", detail=False) == []
    with pytest.raises(PermissionError):
        fs.mkdir("/elsewhere")


def test_fsspec_webhdfs_with_kerberos_reports_the_refusal_as_permission_error(
    gw: GatewayProcess, kdc: KdcRealm, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(kdc, monkeypatch, "mallory")
    fs = fsspec.filesystem(
        "webhdfs", host="localhost", port=gw.port, kerberos=True, use_https=False, skip_instance_cache=True
    )
    # The 403 carries the handshake's reply token, so requests-kerberos (mutual
    # authentication REQUIRED, fsspec's default) lets fsspec read the RemoteException.
    with pytest.raises(PermissionError, match="mallory@EXAMPLE.COM is not allowed"):
        fs.info("/")
    with pytest.raises(PermissionError, match="mallory@EXAMPLE.COM is not allowed"):
        fs.mkdir("/user/mallory")
    assert not (gw.root / "user/mallory").exists()
