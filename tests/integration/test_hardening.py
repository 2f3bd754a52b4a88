"""Regression tests for defects found by fault and fuzz probing (issue 6).

Each test drives the real gateway over loopback sockets; where the fault is
the backend's, the backend is :class:`tests.faulty_backend.FaultyBackend`,
which writes raw bytes no framework would let through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from multidict import CIMultiDict
from yarl import URL

from tests.faulty_backend import Behaviour, Exchange, FaultyBackend, behaviours
from tests.integration.gwsetup import ServerFactory, Setup, mint, start_gateway

Start = Callable[..., Awaitable[tuple[Setup, FaultyBackend]]]


@pytest.fixture
async def faulty(tmp_path: Path, aiohttp_server: ServerFactory) -> AsyncIterator[Start]:
    """``await faulty(behaviour, backend_toml)``: a gateway in front of a misbehaving backend."""
    backends: list[FaultyBackend] = []

    async def start(behaviour: Callable[[Exchange], Awaitable[None]], backend_toml: str = "") -> tuple[Setup, FaultyBackend]:
        backend = FaultyBackend(behaviour)
        await backend.start()
        backends.append(backend)
        return await start_gateway(aiohttp_server, tmp_path, backend.url, backend=backend_toml), backend

    yield start
    for backend in backends:
        await backend.stop()


def seen(body: bytes) -> dict[str, list[str]]:
    """The echo behaviour's view of the forwarded headers, by lower-case name."""
    out: dict[str, list[str]] = {}
    for name, value in json.loads(body)["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


# -- 1, 2, 3: the session cookie ------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "x=1, hadoop.auth={t}",
        "hadoop.auth={t}, x=1",
        "x=1,hadoop.auth={t};y=2",
        'x=1; hadoop.auth="{t}"',
        "x=1;\thadoop.auth = {t} ,y=2",
        "HADOOP.AUTH=junk; hadoop.auth={t}",
    ],
)
async def test_the_session_cookie_never_reaches_the_backend(faulty: Start, template: str) -> None:
    s, _ = await faulty(behaviours.echo)
    token = mint("alice")
    resp, body = await s.get("/f?op=status", headers={"Cookie": template.format(t=token)})
    assert resp.status == 200
    forwarded = seen(body)
    assert json.loads(body)["target"] == "/f?op=status&user.name=alice"
    assert all(token not in v and "hadoop.auth" not in v.lower() for v in forwarded.get("cookie", [])), forwarded
    if "x=1" in template:
        assert forwarded["cookie"] and "x=1" in forwarded["cookie"][0]


async def test_every_cookie_line_is_read_and_scrubbed(faulty: Start) -> None:
    s, _ = await faulty(behaviours.echo)
    token = mint("alice")
    headers = CIMultiDict([("Cookie", "x=1"), ("Cookie", f"hadoop.auth={token}")])
    resp, body = await s.get("/f", headers=headers)
    assert resp.status == 200
    assert json.loads(body)["target"] == "/f?user.name=alice"
    assert seen(body)["cookie"] == ["x=1"]


async def test_the_first_copy_that_verifies_wins(faulty: Start) -> None:
    s, _ = await faulty(behaviours.echo)
    alice, bob = mint("alice"), mint("bob")
    resp, body = await s.get("/f", headers={"Cookie": f"hadoop.auth={alice}; hadoop.auth={bob}"})
    assert resp.status == 200
    assert json.loads(body)["target"] == "/f?user.name=alice"
    assert "Set-Cookie" not in resp.headers


@pytest.mark.parametrize("junk", ["junk", "", '"', "\u00ff", mint("mallory", keys=(b"x" * 48,))])
async def test_a_bad_copy_beside_a_good_one_neither_fails_nor_logs_out(faulty: Start, junk: str) -> None:
    s, _ = await faulty(behaviours.echo)
    good = mint("alice")
    for header in (f"hadoop.auth={good}; hadoop.auth={junk}", f"hadoop.auth={junk}; hadoop.auth={good}"):
        resp, body = await s.get("/f", headers={"Cookie": header})
        assert resp.status == 200, header
        assert json.loads(body)["target"] == "/f?user.name=alice"
        assert "Set-Cookie" not in resp.headers


async def _raw_request(url: str, request: bytes) -> bytes:
    u = URL(url)
    reader, writer = await asyncio.open_connection(u.host, u.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


@pytest.mark.parametrize("cookie", [b"hadoop.auth=\xff", b"hadoop.auth=\xc3\x28abc", b"x=\xff; hadoop.auth=\x80\x80"])
async def test_an_undecodable_cookie_is_401_and_cleared(faulty: Start, cookie: bytes) -> None:
    s, backend = await faulty(behaviours.echo)
    host = URL(s.url).raw_authority.encode()
    answer = await _raw_request(
        s.url, b"GET /f HTTP/1.1\r\nHost: " + host + b"\r\nCookie: " + cookie + b"\r\nConnection: close\r\n\r\n"
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 "), answer
    assert b"Set-Cookie: hadoop.auth=; Max-Age=0;" in head
    assert json.loads(body)["statusCode"] == 401
    assert backend.heads == []


async def test_a_valid_cookie_beside_undecodable_bytes_authenticates(faulty: Start) -> None:
    s, _ = await faulty(behaviours.echo)
    host = URL(s.url).raw_authority.encode()
    cookie = b"hadoop.auth=\xff; hadoop.auth=" + mint("alice").encode()
    answer = await _raw_request(
        s.url, b"GET /f HTTP/1.1\r\nHost: " + host + b"\r\nCookie: " + cookie + b"\r\nConnection: close\r\n\r\n"
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer
    assert json.loads(body)["target"] == "/f?user.name=alice"


# -- 7: informational answers from the backend ---------------------------------------


@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"HTTP/1.1 102 Processing\r\n\r\n",
        b"HTTP/1.1 199 Whatever\r\n\r\n",
    ],
)
async def test_an_unsolicited_1xx_is_a_502(faulty: Start, interim: bytes) -> None:
    s, backend = await faulty(behaviours.raw(interim, then_stall=True))
    resp, body = await asyncio.wait_for(s.get("/f?user.name=bob"), 10)
    assert resp.status == 502
    assert json.loads(body)["exception"] == "BackendUnavailableException"
    assert "Upgrade" not in resp.headers
    await backend.wait_released()


_PASSED_OVER = [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"]


@pytest.mark.parametrize("interim", _PASSED_OVER)
async def test_100_and_103_are_passed_over(faulty: Start, interim: bytes) -> None:
    final = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    s, _ = await faulty(behaviours.raw(interim + final))
    resp, body = await asyncio.wait_for(s.get("/f?user.name=bob"), 10)
    assert (resp.status, body) == (200, b"ok")


@pytest.mark.parametrize("interim", _PASSED_OVER)
async def test_silence_after_an_interim_answer_is_504(faulty: Start, interim: bytes) -> None:
    # aiohttp stops its read timer on any 1xx; read_timeout (1 s here) must still hold.
    s, backend = await faulty(behaviours.raw(interim, then_stall=True))
    resp, body = await asyncio.wait_for(s.get("/f?user.name=bob"), 10)
    assert resp.status == 504
    assert json.loads(body)["exception"] == "BackendTimeoutException"
    await backend.wait_released()


# -- 8: Connection header lines -------------------------------------------------------


async def test_every_connection_line_is_honoured_both_ways(faulty: Start) -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nConnection: X-Back-Secret\r\n"
        b"X-Back-Secret: hop\r\nX-Kept: yes\r\n\r\nok"
    )
    echoed: list[Exchange] = []

    async def behaviour(ex: Exchange) -> None:
        echoed.append(ex)
        await behaviours.raw(reply)(ex)

    s, _ = await faulty(behaviour)
    headers = CIMultiDict(
        [("Connection", "keep-alive"), ("Connection", "X-Secret"), ("X-Secret", "s3"), ("X-Other", "o")]
    )
    resp, body = await s.get("/f?user.name=bob", headers=headers)
    assert (resp.status, body) == (200, b"ok")
    (ex,) = echoed
    assert ex.header("X-Secret") == [] and ex.header("X-Other") == ["o"]
    assert "X-Back-Secret" not in resp.headers and resp.headers["X-Kept"] == "yes"


# -- 10: redirects -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "rewritten"),
    [
        ("http://127.0.0.1:{port}/a?x=1", "{gw}/a?x=1"),
        ("http://localhost:{port}/a?x=1", "{gw}/a?x=1"),
        ("HTTP://LOCALHOST:{port}/a", "{gw}/a"),
        ("http://[::1]:{port}/a", "{gw}/a"),
        ("http://127.0.0.1:{port}", "{gw}"),
        ("http://127.0.0.1:{other}/a", "http://127.0.0.1:{other}/a"),
        ("http://elsewhere.example/a", "http://elsewhere.example/a"),
        ("/relative?x", "/relative?x"),
    ],
)
async def test_backend_addresses_in_location_headers_are_rewritten(
    faulty: Start, location: str, rewritten: str
) -> None:
    captured: dict[str, str] = {}

    async def behaviour(ex: Exchange) -> None:
        loc = location.format(port=captured["port"], other=int(captured["port"]) + 1)
        await ex.reply("307 Temporary Redirect", b"", (f"Location: {loc}", f"Content-Location: {loc}"))

    s, backend = await faulty(behaviour)
    captured["port"] = str(backend.port)
    resp, _ = await s.get("/f?user.name=bob")
    expected = rewritten.format(gw=s.url, other=backend.port + 1)
    assert resp.status == 307
    assert resp.headers["Location"] == expected
    assert resp.headers["Content-Location"] == expected



# -- 4: a backend that stops reading an upload ---------------------------------------


def _upload_head(s: Setup, size: int) -> bytes:
    return (
        f"PUT /f?op=create&user.name=bob HTTP/1.1\r\nHost: {URL(s.url).raw_authority}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
    ).encode()


async def _start_upload(
    s: Setup, size: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.Future[None]]:
    """An upload of ``size`` bytes over a raw socket, pushed for as long as the gateway takes it."""
    u = URL(s.url)
    reader, writer = await asyncio.open_connection(u.host, u.port)
    writer.write(_upload_head(s, size))
    return reader, writer, asyncio.ensure_future(_push(writer, size))


def _reset(writer: asyncio.StreamWriter) -> None:
    """Hang up with RST: with unsent bytes queued, a FIN would wait behind them forever."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _push(writer: asyncio.StreamWriter, total: int) -> None:
    """Write ``total`` bytes for as long as the peer takes them."""
    block = b"u" * 2**16
    with contextlib.suppress(ConnectionError):
        while total > 0:
            writer.write(block[: min(total, len(block))])
            total -= len(block)
            await writer.drain()


async def test_a_backend_that_stops_reading_gets_504_after_send_timeout(faulty: Start) -> None:
    s, backend = await faulty(behaviours.stall, "send_timeout = 1.0")
    reader, writer, pusher = await _start_upload(s, 256 * 2**20)
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 504 "), head
        assert b"Connection: close" in head
        await backend.wait_released()
        # The gateway then closes the client side too, after aiohttp's lingering
        # close (10 s of reading and dropping, so the client can read the 504).
        await asyncio.wait_for(pusher, 20)
    finally:
        pusher.cancel()
        writer.close()


async def test_a_client_that_hangs_up_releases_its_backend_connection(faulty: Start) -> None:
    s, backend = await faulty(behaviours.stall, "send_timeout = 60.0")
    reader, writer, pusher = await _start_upload(s, 256 * 2**20)
    async with asyncio.timeout(10):  # until the upload is stuck with the backend
        while not (backend.heads and backend.peer_connections()):
            await asyncio.sleep(0.02)
    pusher.cancel()
    _reset(writer)
    await backend.wait_released()


async def test_a_full_pool_is_504_after_pool_timeout(faulty: Start) -> None:
    s, backend = await faulty(behaviours.stall, "read_timeout = 60.0\nsend_timeout = 60.0\nmax_connections = 2\npool_timeout = 1.0\nconnect_timeout = 1.0")
    held = [await _start_upload(s, 64 * 2**20) for _ in range(2)]
    try:
        async with asyncio.timeout(10):
            while len(backend.heads) < 2:
                await asyncio.sleep(0.02)
        resp, body = await asyncio.wait_for(s.get("/f?user.name=bob"), 10)
        assert resp.status == 504
        assert json.loads(body)["message"] == "the backend did not answer in time"
    finally:
        for _, writer, pusher in held:
            pusher.cancel()
            _reset(writer)
    await backend.wait_released()


# -- issue 16, item 11: what a backend should never send -----------------------------------

SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECRET"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + SMUGGLED,  # a second answer nobody asked for
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokSECRET",  # bytes that are no answer
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + SMUGGLED,
    ],
)
async def test_bytes_after_a_complete_answer_are_never_relayed(faulty: Start, answer: bytes) -> None:
    s, backend = await faulty(behaviours.raw(answer, then_stall=True))
    resp, body = await s.get("/f?user.name=bob")
    assert (resp.status, body) == (200, b"ok")
    await backend.wait_released()  # the connection is dropped, never pooled with a stale answer in it
    resp, body = await s.get("/f?user.name=bob")
    assert (resp.status, body) == (200, b"ok")
    assert backend.accepted == 2


async def test_a_second_answer_is_never_relayed(faulty: Start) -> None:
    s, backend = await faulty(behaviours.second_answer())
    for _ in range(3):
        resp, body = await s.get("/f?user.name=bob")
        assert (resp.status, body) == (200, b"ok")
    await backend.wait_released()
    assert backend.accepted == 3  # never a kept-alive connection with a stale answer in it


async def test_bytes_after_a_complete_answer_drop_the_connection_mid_stream(faulty: Start) -> None:
    big = b"x" * (256 * 1024)  # streamed, not read whole
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(big), big) + SMUGGLED
    s, backend = await faulty(behaviours.raw(answer, then_stall=True))
    resp, body = await s.get("/f?user.name=bob")
    assert resp.status == 200 and body == big
    await backend.wait_released()


@pytest.mark.parametrize(
    "behaviour",
    [
        behaviours.oversized_head(70 * 1024),
        behaviours.oversized_head(5000 * 2, lines=5000),
        behaviours.raw(b"HTTP/1.1 200 OK\r\nX-Endless: " + b"a" * 1024 * 1024, then_stall=True),  # bounded as it comes
    ],
    ids=["70KiB", "5000-lines", "endless"],
)
async def test_a_backend_head_over_the_limits_is_a_502(faulty: Start, behaviour: Behaviour) -> None:
    s, backend = await faulty(behaviour)
    resp, body = await s.get("/f?user.name=bob")
    assert resp.status == 502, body[:200]
    assert json.loads(body)["message"] == "the backend's answer head is too large"
    assert str(backend.port).encode() not in body and b"127.0.0.1" not in body
    await backend.wait_released()


async def test_a_backend_head_within_the_limits_passes(faulty: Start) -> None:
    cookie = b"a" * 7 * 1024  # a Kerberos-sized header (aiohttp's client reads 8 KiB lines at most)
    head = b"HTTP/1.1 200 OK\r\nX-Big: " + cookie + b"\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(90))
    s, _ = await faulty(behaviours.raw(head + b"Content-Length: 2\r\n\r\nok"))
    resp, body = await s.get("/f?user.name=bob")
    assert (resp.status, body) == (200, b"ok")
    assert resp.headers["X-Big"] == cookie.decode()


async def test_the_backend_head_limits_are_configurable(faulty: Start) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(20)) + b"Content-Length: 2\r\n\r\nok"
    s, _ = await faulty(behaviours.raw(head), "max_response_headers = 10")
    resp, _ = await s.get("/f?user.name=bob")
    assert resp.status == 502
    head = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 2000 + b"\r\nContent-Length: 2\r\n\r\nok"
    s, _ = await faulty(behaviours.raw(head), "max_response_head_size = 1024")
    resp, _ = await s.get("/f?user.name=bob")
    assert resp.status == 502
