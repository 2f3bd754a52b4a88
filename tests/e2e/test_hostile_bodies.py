"""Hostile request bodies against the real ``authgateway serve``, over raw sockets.

A client that declares a body (``Content-Length`` or chunked) and stops
sending half way would otherwise hold its connection, its request, the
backend's request and, on the embedded backend, an open upload for as long
as it likes.  As nginx (``client_body_timeout``): once the gateway has
waited ``server.body_timeout`` seconds for a byte of the body and none
came, the request is answered 408 in the route's format, the backend's
request is aborted and an upload leaves nothing behind.  A slow trickle is
not cut, nor an upload the backend holds back (the gateway does not read
the client then: backpressure is not the client's fault).  The bound is set
short here; the default is nginx's 60 s.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import GatewayProcess, free_port
from tests.e2e.test_hostile_heads import connect, read_answer, until_closed

Start = Callable[..., GatewayProcess]
pytestmark = pytest.mark.timeout(120)


def upload_head(path: str, length: int | None) -> bytes:
    framing = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (
        f"POST {path}?op=create&user.name=bob HTTP/1.1\r\nHost: localhost\r\n"
        f"Content-Type: application/octet-stream\r\n{framing}\r\n"
    ).encode()


def staged(root: Path) -> list[Path]:
    """The embedded backend's uploads in progress (and any left behind)."""
    tmp = root / ".authgateway" / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


def timeout_answer(got: bytes) -> dict[str, object]:
    """The 408 in the route's format (Hoop's for the test gateway's route), closing the connection."""
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), got[:300]
    assert b"\r\nConnection: close" in head, head
    document: dict[str, object] = json.loads(body)
    assert document["statusCode"] == 408, document
    assert document["message"] == "no byte of the request body came for 2 s", document
    return document


async def cut_with_408(reader: asyncio.StreamReader) -> None:
    """The body stopped just now: a 408 comes between the bound (2 s) and a quarter more (and a margin for load)."""
    took, got = await until_closed(reader, 15)
    timeout_answer(got)
    assert 1.9 < took < 4.0, f"cut {took:.1f} s after the body stopped"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_that_stops_half_way_gets_408_and_leaves_no_upload(gateway: Start, chunked: bool) -> None:
    gw = gateway(server={"body_timeout": 2.0})
    reader, writer = await connect(gw)
    half = b"h" * 50000
    writer.write(upload_head("/user/bob/stalled", None if chunked else 100000))
    writer.write(b"%x\r\n%b\r\n" % (len(half), half) if chunked else half)
    deadline = time.monotonic() + 10
    while not staged(gw.root):  # the upload is open in the embedded backend: there is something to clean up
        assert time.monotonic() < deadline, "the upload never reached the embedded backend"
        await asyncio.sleep(0.02)
    await cut_with_408(reader)
    writer.close()
    assert staged(gw.root) == []
    assert not (gw.root / "user" / "bob" / "stalled").exists()
    assert "(server.body_timeout): cutting the request" in gw.log()


async def test_a_body_trickled_a_byte_every_half_second_is_not_cut(gateway: Start) -> None:
    gw = gateway(server={"body_timeout": 2.0})
    reader, writer = await connect(gw)
    writer.write(upload_head("/user/bob/trickled", 12))
    for _ in range(12):  # 6 s of body, three times the bound
        await asyncio.sleep(0.5)
        writer.write(b"t")
    head, _ = await read_answer(reader)
    assert head.startswith(b"HTTP/1.1 201 "), head
    writer.close()
    assert (gw.root / "user" / "bob" / "trickled").read_bytes() == b"t" * 12


class SlowBackend:
    """A backend on a port of its own that takes an upload slowly (backpressure) or records how it ended."""

    def __init__(self) -> None:
        self.port = free_port()
        self.pause = 0.0  # seconds to stop reading after the first chunk
        self.answer_first = False  # begin the answer before reading the body
        self.outcomes: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        size = 0
        early: web.StreamResponse | None = None
        if self.answer_first:
            early = web.StreamResponse(status=200)
            await early.prepare(request)
            await early.write(b"begun;")
        try:
            first = await request.content.readany()
            size += len(first)
            await asyncio.sleep(self.pause)
            while chunk := await request.content.readany():
                size += len(chunk)
        except Exception as exc:  # the gateway aborted the request
            self.outcomes.append(f"aborted after {size} bytes: {type(exc).__name__}")
            raise
        self.outcomes.append(f"received {size} bytes")
        if early is not None:
            await early.write(b"ended")
            await early.write_eof()
            return early
        return web.json_response({"size": size}, status=201)

    async def __aenter__(self) -> SlowBackend:
        app = web.Application(client_max_size=0)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def slow_backend() -> AsyncIterator[SlowBackend]:
    async with SlowBackend() as backend:
        yield backend


def behind(gateway: Start, backend: SlowBackend, tmp_path: Path) -> GatewayProcess:
    secret = tmp_path / "cookie.secret"
    secret.write_bytes(b"k" * 48)
    secret.chmod(0o600)
    return gateway(
        server={"body_timeout": 2.0},
        backend={"url": f"http://127.0.0.1:{backend.port}", "send_timeout": 30.0},
        cookie={"secret_files": [str(secret)]},
    )


async def test_an_upload_the_backend_holds_back_is_not_cut(
    gateway: Start, slow_backend: SlowBackend, tmp_path: Path
) -> None:
    slow_backend.pause = 5.0  # more than twice the bound, during which the gateway does not read the client
    gw = behind(gateway, slow_backend, tmp_path)
    reader, writer = await connect(gw)
    size = 16 * 2**20  # far more than the buffers between client and backend hold
    writer.write(upload_head("/user/bob/held", size))
    writer.write(b"b" * size)
    await writer.drain()
    head, body = await read_answer(reader, timeout=60)
    assert head.startswith(b"HTTP/1.1 201 "), head + body
    assert json.loads(body) == {"size": size}
    assert slow_backend.outcomes == [f"received {size} bytes"]
    writer.close()


async def test_a_stalled_upload_to_a_backend_gets_408_and_the_backends_request_is_aborted(
    gateway: Start, slow_backend: SlowBackend, tmp_path: Path
) -> None:
    gw = behind(gateway, slow_backend, tmp_path)
    reader, writer = await connect(gw)
    writer.write(upload_head("/user/bob/stalled", 100000) + b"s" * 50000)
    await cut_with_408(reader)
    writer.close()
    deadline = time.monotonic() + 5
    while not slow_backend.outcomes:
        assert time.monotonic() < deadline, "the backend's request is still open"
        await asyncio.sleep(0.05)
    assert slow_backend.outcomes[0].startswith("aborted after 50000 bytes"), slow_backend.outcomes


async def test_a_body_that_stops_after_the_answer_began_has_its_connection_closed(
    gateway: Start, slow_backend: SlowBackend, tmp_path: Path
) -> None:
    slow_backend.answer_first = True
    gw = behind(gateway, slow_backend, tmp_path)
    reader, writer = await connect(gw)
    writer.write(upload_head("/user/bob/stalled", 100000) + b"s" * 50000)
    took, got = await until_closed(reader, 15)
    writer.close()
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), got[:300]
    assert b"begun;" in body and b"ended" not in body and not body.endswith(b"0\r\n\r\n"), body  # cut, not complete
    assert 1.9 < took < 4.0, f"closed {took:.1f} s after the body stopped"
    deadline = time.monotonic() + 5
    while not slow_backend.outcomes:
        assert time.monotonic() < deadline, "the backend's request is still open"
        await asyncio.sleep(0.05)
    assert slow_backend.outcomes[0].startswith("aborted after 50000 bytes"), slow_backend.outcomes
