"""An upload cut off half way through the gateway leaves nothing behind."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import GatewayProcess
from tests.e2e.curl import curl

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, timeout: float) -> T:
    """Poll ``condition`` until it returns something true, and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(0.01)
    return result


def cut_off_upload(gw: GatewayProcess, cookie: str, target: str, declared: int, sent: int) -> None:
    """Send part of an upload, wait until the backend has staged it, then reset the connection."""
    with socket.create_connection(("127.0.0.1", gw.port)) as s:
        s.sendall(
            (
                f"POST {target} HTTP/1.1\r\nHost: localhost:{gw.port}\r\nCookie: hadoop.auth={cookie}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
            ).encode()
            + b"p" * sent
        )
        # Without a staged upload to clean up, the test would prove nothing.
        wait_until(lambda: leftovers(gw.root), "the partial upload is staged in the backend", 10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST


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

    cut_off_upload(gw, cookie, "/f.bin?op=create&overwrite=true", declared=64 * 2**20, sent=4 * 2**20)

    wait_until(lambda: leftovers(gw.root) == [], "the backend removes the partial upload", 10)
    target = gw.root / "f.bin"
    if existing is None:
        assert not target.exists()
        assert curl("-b", str(jar), f"{gw.url}/f.bin?op=status").status == 404
    else:
        assert target.read_bytes() == existing
    # The gateway is still healthy afterwards.
    assert curl("-b", str(jar), f"{gw.url}/?op=list").status == 200
