"""An upload cut off half way through the gateway leaves nothing behind."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import GatewayProcess
from tests.e2e.curl import curl


def cut_off_upload(gw: GatewayProcess, cookie: str, target: str, declared: int, sent: int) -> list[Path]:
    """Send part of an upload, then reset the connection; what was staged meanwhile."""
    with socket.create_connection(("127.0.0.1", gw.port)) as s:
        s.sendall(
            (
                f"POST {target} HTTP/1.1\r\nHost: localhost:{gw.port}\r\nCookie: hadoop.auth={cookie}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
            ).encode()
            + b"p" * sent
        )
        deadline = time.monotonic() + 5
        while not (staged := leftovers(gw.root)) and time.monotonic() < deadline:
            time.sleep(0.02)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    return staged


def leftovers(root: Path) -> list[Path]:
    tmp = root / ".authgateway" / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


@pytest.mark.parametrize("existing", [None, b"precious data\n"])
def test_cut_off_upload_leaves_no_partial_file(
    gateway: Callable[..., GatewayProcess], tmp_path: Path, existing: bytes | None
) -> None:
    gw = gateway()
    jar = tmp_path / "jar"
    assert curl("-c", str(jar), f"{gw.url}/?op=homedir&user.name=hdfs").status == 200
    cookie = next(line.split("\t")[-1] for line in jar.read_text().splitlines() if "\thadoop.auth\t" in line)
    if existing is not None:
        r = curl("-X", "POST", "-b", str(jar), "--data-binary", existing.decode(),
                 "-H", "content-type: application/octet-stream", f"{gw.url}/f.bin?op=create")
        assert r.status == 201

    staged = cut_off_upload(gw, cookie, "/f.bin?op=create&overwrite=true", declared=64 * 2**20, sent=4 * 2**20)

    assert staged, "the partial upload never reached the backend: the test would prove nothing"
    deadline = time.monotonic() + 10
    while leftovers(gw.root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers(gw.root) == []
    target = gw.root / "f.bin"
    if existing is None:
        assert not target.exists()
        assert curl("-b", str(jar), f"{gw.url}/f.bin?op=status").status == 404
    else:
        assert target.read_bytes() == existing
    # The gateway is still healthy afterwards.
    assert curl("-b", str(jar), f"{gw.url}/?op=list").status == 200
