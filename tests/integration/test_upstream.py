"""gateway.upstream over loopback sockets: pooling, its limits and timeouts, and the
retry of a kept-alive connection the backend had just dropped.

The backends are raw asyncio servers, so the tests see every connection made.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.upstream import ConnectError, Origin, UpstreamClient
from tests.faulty_backend import Exchange, FaultyBackend, behaviours, hang_up
from tests.integration.gwsetup import ServerFactory, Setup, start_gateway

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Backend:
    """Answers every request on a connection with ``answer``; counts connections."""

    def __init__(self, answer: bytes = OK) -> None:
        self.answer = answer
        self.connections = 0
        self.requests = 0
        self._server: asyncio.AbstractServer | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Backend:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in self._writers:
            w.transport.abort()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            while await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1
                writer.write(self.answer)
                await writer.drain()


def make_client(**kw: float) -> UpstreamClient:
    options = {"connect_timeout": 2.0, "read_timeout": 2.0, "pool_timeout": 2.0, "max_connections": 4, **kw}
    return UpstreamClient(
        connect_timeout=options["connect_timeout"], read_timeout=options["read_timeout"],
        pool_timeout=options["pool_timeout"], max_connections=int(options["max_connections"]),
    )


async def get(client: UpstreamClient, url: str) -> tuple[int, bytes]:
    conn = await client.connect(Origin.from_url(url))
    try:
        conn.send("GET", "/x", [], body=False, length=None)
        head = await conn.response()
        body = await conn.read_all()
    except BaseException:
        conn.abort()
        raise
    conn.release()
    return head.status, body


async def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    client = make_client()
    async with Backend() as backend:
        for _ in range(50):
            assert await get(client, backend.url) == (200, b"ok")
        assert (backend.connections, backend.requests) == (1, 50)
    await client.close()


async def test_concurrent_requests_open_at_most_max_connections() -> None:
    client = make_client(max_connections=3)
    async with Backend() as backend:
        results = await asyncio.gather(*(get(client, backend.url) for _ in range(30)))
        assert results == [(200, b"ok")] * 30
        assert backend.connections <= 3 and backend.requests == 30
    await client.close()


async def test_an_answer_with_connection_close_is_not_reused() -> None:
    client = make_client()
    async with Backend(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok") as backend:
        for _ in range(5):
            assert await get(client, backend.url) == (200, b"ok")
        assert backend.connections == 5
    await client.close()


async def test_a_full_pool_times_out_then_frees_up() -> None:
    client = make_client(max_connections=1, pool_timeout=0.3)
    async with Backend() as backend:
        held = await client.connect(Origin.from_url(backend.url))
        with pytest.raises(TimeoutError):
            await client.connect(Origin.from_url(backend.url))
        waiting = asyncio.ensure_future(client.connect(Origin.from_url(backend.url)))
        await asyncio.sleep(0.05)
        held.abort()
        second = await asyncio.wait_for(waiting, 1)
        second.abort()
    await client.close()


async def test_unreachable_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = make_client()
    with pytest.raises(ConnectError) as caught:
        await client.connect(Origin.from_url(f"http://127.0.0.1:{port}"))
    assert isinstance(caught.value.os_error, ConnectionRefusedError)
    with pytest.raises(ConnectError):  # the slot was given back
        await client.connect(Origin.from_url(f"http://127.0.0.1:{port}"))
    assert client._in_use == 0


async def test_a_connect_that_hangs_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the accept queue: later SYNs are dropped and connect hangs
        f = socket.socket()
        f.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            f.connect(("127.0.0.1", port))
        fillers.append(f)
    await asyncio.sleep(0.1)
    client = make_client(connect_timeout=0.3)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(5):
                await client.connect(Origin.from_url(f"http://127.0.0.1:{port}"))
        assert client._in_use == 0
    finally:
        for f in fillers:
            f.close()
        listener.close()


async def test_silence_is_a_timeout_before_and_after_the_head() -> None:
    client = make_client(read_timeout=0.3)
    async with Backend(b"") as silent:
        conn = await client.connect(Origin.from_url(silent.url))
        conn.send("GET", "/x", [], body=False, length=None)
        with pytest.raises(TimeoutError):
            await conn.response()
        conn.abort()
    async with Backend(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc") as stalling:
        conn = await client.connect(Origin.from_url(stalling.url))
        conn.send("GET", "/x", [], body=False, length=None)
        await conn.response()
        assert await conn.read() == [b"abc"]
        with pytest.raises(TimeoutError):
            await conn.read()
        conn.abort()
    assert client._in_use == 0
    await client.close()


# -- through the gateway -------------------------------------------------------------


@pytest.fixture
async def faulty(tmp_path: Path, aiohttp_server: ServerFactory) -> AsyncIterator[Callable[..., Awaitable[tuple[Setup, FaultyBackend]]]]:
    backends: list[FaultyBackend] = []

    async def start(behaviour: Callable[[Exchange], Awaitable[None]]) -> tuple[Setup, FaultyBackend]:
        backend = FaultyBackend(behaviour)
        await backend.start()
        backends.append(backend)
        return await start_gateway(aiohttp_server, tmp_path, backend.url), backend

    yield start
    for backend in backends:
        await backend.stop()


def _drop_every_second_request() -> Callable[[Exchange], Awaitable[None]]:
    """Answer the first request on a connection, reset it at the second (a keep-alive the backend ended)."""
    # The writers themselves, not their id(): a closed connection's writer can
    # be collected and a new one get its id, which made the retry look like a
    # second request on an old connection.
    seen: list[object] = []

    async def behaviour(ex: Exchange) -> None:
        if any(writer is ex.writer for writer in seen):
            hang_up(ex)
        seen.append(ex.writer)
        await behaviours.echo(ex)

    return behaviour


async def test_a_dropped_keep_alive_is_retried_once_for_idempotent_requests(faulty: Callable[..., Awaitable[tuple[Setup, FaultyBackend]]]) -> None:
    s, backend = await faulty(_drop_every_second_request())
    for _ in range(3):
        resp, body = await s.get("/f?user.name=bob")
        assert resp.status == 200, body
        assert json.loads(body)["target"] == "/f?user.name=bob"


async def test_a_dropped_keep_alive_is_not_retried_for_a_post(faulty: Callable[..., Awaitable[tuple[Setup, FaultyBackend]]]) -> None:
    s, backend = await faulty(_drop_every_second_request())
    resp, _ = await s.request("POST", "/f?op=x&user.name=bob")
    assert resp.status == 200
    resp, body = await s.request("POST", "/f?op=x&user.name=bob")
    assert resp.status == 502
    assert json.loads(body)["message"] == "the backend failed to answer"


async def test_the_gateway_reuses_its_backend_connection(faulty: Callable[..., Awaitable[tuple[Setup, FaultyBackend]]]) -> None:
    s, backend = await faulty(behaviours.echo)
    for _ in range(10):
        resp, _ = await s.get("/f?user.name=bob")
        assert resp.status == 200
    assert len(backend.heads) == 10 and backend.peer_connections() == 1
