"""WebHDFS clients through the real gateway (``authgateway serve``) to the embedded backend.

HdfsCLI's ``InsecureClient`` and fsspec's ``webhdfs`` file system, unchanged,
pointed at the gateway: ``/webhdfs/v1/`` reaches the embedded backend's
WebHDFS face, which shares its namespace with the Hoop face.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import fsspec
import pytest
from hdfs import HdfsError, InsecureClient

from tests.conftest import GatewayProcess
from tests.e2e.curl import curl

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def gw(gateway: Callable[..., GatewayProcess]) -> GatewayProcess:
    return gateway()


def test_hdfscli_insecure_client(gw: GatewayProcess) -> None:
    client = InsecureClient(gw.url, user="alice")
    assert client.status("/")["owner"] == "hdfs"
    client.makedirs("/user/alice/d", permission="750")
    big = os.urandom(5 * 1024 * 1024 + 3)
    client.write("/user/alice/d/f", data=big)
    client.write("/user/alice/d/f", data=b"tail", append=True)
    assert (gw.root / "user/alice/d/f").read_bytes() == big + b"tail"
    with client.read("/user/alice/d/f", offset=len(big) - 2, length=4) as reader:
        assert reader.read() == big[-2:] + b"ta"
    [(name, status)] = client.list("/user/alice/d", status=True)
    assert (name, status["length"], status["owner"], status["type"]) == ("f", len(big) + 4, "alice", "FILE")
    checksum = client.checksum("/user/alice/d/f")
    assert (checksum["algorithm"], checksum["length"]) == ("MD5-of-0MD5-of-512CRC32", 28)
    summary = client.content("/user/alice")
    assert (summary["directoryCount"], summary["fileCount"], summary["length"]) == (2, 1, len(big) + 4)
    client.rename("/user/alice/d/f", "/user/alice/g")
    client.set_permission("/user/alice/g", "600")
    assert client.status("/user/alice/g")["permission"] == "600"
    assert client.status("/user/alice/nope", strict=False) is None
    assert client.delete("/user/alice/d", recursive=True) is True
    with pytest.raises(HdfsError, match="Permission denied: user=alice, access=WRITE, inode=/"):
        client.makedirs("/elsewhere")

    # One namespace: the Hoop face sees what the WebHDFS face made, with the same metadata.
    r = curl(f"{gw.url}/user/alice/g?op=status&user.name=alice")
    assert (r.json()["owner"], r.json()["permission"], r.json()["len"]) == ("alice", "-rw-------", len(big) + 4)


def test_a_spoofed_doas_or_user_name_gets_nowhere(gw: GatewayProcess) -> None:
    r = curl("-X", "PUT", f"{gw.url}/webhdfs/v1/owned?op=MKDIRS&user.name=alice&doas=hdfs")
    assert r.status == 403 and r.json()["RemoteException"]["exception"] == "AccessControlException"
    r = curl("-X", "PUT", "-H", "X-Forwarded-User: hdfs", f"{gw.url}/webhdfs/v1/owned?op=MKDIRS&user.name=alice")
    assert r.status == 403
    assert not (gw.root / "owned").exists()


def test_the_data_step_url_names_the_gateway(gw: GatewayProcess) -> None:
    r = curl("-X", "PUT", f"{gw.url}/webhdfs/v1/user/bob/x?op=CREATE&noredirect=true&user.name=bob")
    assert r.status == 200
    location = r.json()["Location"]
    assert location.startswith(gw.url + "/webhdfs/v1/user/bob/x?") and "data=true" in location, location
    assert "user.name" not in location


def test_fsspec_webhdfs(gw: GatewayProcess) -> None:
    fs = fsspec.filesystem("webhdfs", host="localhost", port=gw.port, user="bob", use_https=False)
    fs.mkdir("/user/bob/fs")
    with fs.open("/user/bob/fs/a.txt", "wb") as f:
        f.write(b"hello fsspec")
    assert fs.cat("/user/bob/fs/a.txt") == b"hello fsspec"
    assert fs.ls("/user/bob/fs", detail=False) == ["/user/bob/fs/a.txt"]
    assert fs.info("/user/bob/fs/a.txt")["size"] == 12
    fs.rm("/user/bob/fs", recursive=True)
    assert not fs.exists("/user/bob/fs")
