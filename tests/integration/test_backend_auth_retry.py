"""The proxy core's side of backend credentials (:class:`gateway.proxy.BackendAuth`), over loopback.

The backend is a raw asyncio server that refuses any request carrying its
cookie with 401 (as a backend does a cookie it no longer accepts) and
answers any other with what it received.  The authenticator is a plain
implementation of the contract, offering a kept cookie first and a fresh
credential when asked to: what is tested is what the proxy does with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.proxy import AuthAttempt, Forward, UpstreamError, UpstreamProxy, Verdict
from gateway.upstream import Origin


@dataclass
class Attempt:
    headers: tuple[tuple[str, str], ...]
    fresh: bool


class KeptCookieFirst:
    """Sends ``Cookie: backend.auth=kept`` unless asked for a fresh credential."""

    cookie_names = frozenset({"backend.auth"})

    def __init__(self) -> None:
        self.begun: list[tuple[str, bool, bool]] = []

    def begin(self, origin: Origin, user: str, *, fresh: bool, body: bool) -> AuthAttempt:
        self.begun.append((user, fresh, body))
        if fresh:
            return Attempt((("Authorization", "Fresh token"),), True)
        return Attempt((("Cookie", "backend.auth=kept"),), False)

    def finish(self, attempt: AuthAttempt, status: int, headers: list[tuple[str, str]]) -> Verdict:
        assert isinstance(attempt, Attempt)
        if status == 401:
            return Verdict.REFUSED if attempt.fresh else Verdict.RETRY
        return Verdict.ACCEPTED


class Backend:
    """401 to a request with the ``backend.auth`` cookie (after ``read_first`` bytes of its body); else an echo."""

    def __init__(self, read_first: int = 0) -> None:
        self.read_first = read_first
        self.heads: list[bytes] = []
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> Backend:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            lines = head.decode().lower().split("\r\n")
            length = next((int(v.split(":")[1]) for v in lines if v.startswith("content-length:")), 0)
            if any(line.startswith("cookie:") and "backend.auth=" in line for line in lines):
                if self.read_first:
                    await reader.readexactly(self.read_first)
                writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                body = await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
            await writer.drain()
        writer.close()


@pytest.fixture
async def proxied(aiohttp_server: object) -> AsyncIterator[tuple[TestServer, KeptCookieFirst, list[Backend]]]:
    auth = KeptCookieFirst()
    backends: list[Backend] = []
    session = UpstreamProxy.new_session(connect_timeout=5, read_timeout=5, pool_timeout=5, max_connections=4)

    async def handle(request: web.Request) -> web.StreamResponse:
        proxy = UpstreamProxy(backends[0].url, session=session, reserved_headers=(), cookie_names=(),
                              send_timeout=5, backend_auth=auth)
        try:
            return await proxy.forward(request, Forward(request.method, request.raw_path, (), "alice"))
        except UpstreamError as exc:
            return web.Response(status=exc.status, text=exc.message)

    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{tail:.*}", handle)
    server = await aiohttp_server(app)  # type: ignore[operator]
    yield server, auth, backends
    await session.close()


async def slow_body(first_delay: float, chunks: list[bytes]) -> AsyncIterator[bytes]:
    for i, chunk in enumerate(chunks):
        if i == 0:
            await asyncio.sleep(first_delay)
        yield chunk
        await asyncio.sleep(0.05)


async def test_a_refused_cookie_is_retried_afresh_for_a_bodiless_request(
    proxied: tuple[TestServer, KeptCookieFirst, list[Backend]],
) -> None:
    server, auth, backends = proxied
    async with Backend() as backend, aiohttp.ClientSession() as client:
        backends.append(backend)
        # The client's own cookies go on, the backend's cookie name never from a client.
        async with client.get(server.make_url("/x"), headers={"Cookie": "a=1; backend.auth=forged"}) as r:
            assert r.status == 200
    assert auth.begun == [("alice", False, False), ("alice", True, False)]
    assert b"cookie: a=1; backend.auth=kept" in backend.heads[0].lower()
    assert b"authorization: fresh token" in backend.heads[1].lower()
    assert b"backend.auth=kept" not in backend.heads[1].lower() and b"forged" not in b"".join(backend.heads)


async def test_an_upload_refused_before_its_body_was_read_is_retried_with_the_whole_body(
    proxied: tuple[TestServer, KeptCookieFirst, list[Backend]],
) -> None:
    server, auth, backends = proxied
    data = b"a" * 1000 + b"b" * 1000
    async with Backend() as backend:
        backends.append(backend)
        # A raw client, so that the head goes out alone (aiohttp's sends it with the first chunk).
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"PUT /f HTTP/1.1\r\nHost: gw\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.3)  # the backend has refused the kept cookie by now
        writer.write(data)
        await writer.drain()
        answer = await reader.read()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\n" + data)
    assert auth.begun == [("alice", False, True), ("alice", True, True)]


async def test_an_upload_refused_after_its_body_started_is_a_502(
    proxied: tuple[TestServer, KeptCookieFirst, list[Backend]],
) -> None:
    server, auth, backends = proxied
    async with Backend(read_first=1000) as backend, aiohttp.ClientSession() as client:
        backends.append(backend)
        headers = {"Content-Length": "2000"}
        async with client.put(server.make_url("/f"), data=slow_body(0, [b"a" * 1000, b"b" * 1000]), headers=headers) as r:
            assert r.status == 502
            assert await r.text() == "the backend refused the gateway's credentials"
    assert auth.begun == [("alice", False, True)]
