"""gateway.upstream's answer parsing, fed by hand: every split of an answer, interim
answers, framing by length, chunks and close, HEAD, and when a connection may be reused.

The connection gets a fake transport, so each ``data_received`` is exactly the
bytes the test chose (over a socket the kernel would join them at will).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.upstream import BackendError, Connection, InterimAnswerError, Origin, UpstreamClient


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.aborted = False
        self.paused = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return self.aborted

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def client() -> UpstreamClient:
    return UpstreamClient(connect_timeout=1, read_timeout=5, pool_timeout=1, max_connections=4)


def connection(c: UpstreamClient) -> tuple[Connection, FakeTransport]:
    """A connection as :meth:`UpstreamClient.connect` would hand it out."""
    c._in_use += 1
    conn = Connection(c, Origin.from_url("http://backend.example:8080"))
    transport = FakeTransport()
    conn.connection_made(transport)
    conn._held = True
    return conn, transport


def pooled(c: UpstreamClient, conn: Connection) -> bool:
    return any(conn in idle for idle in c._idle.values())


CL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: a\r\n\r\nhello"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3;ext=1\r\nllo\r\n0\r\nX-Trailer: t\r\n\r\n"
INTERIM = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n" + CL


@pytest.mark.parametrize("answer", [CL, CHUNKED, INTERIM], ids=["length", "chunked", "interim"])
async def test_an_answer_split_at_every_byte_boundary(answer: bytes) -> None:
    c = client()
    for cut in range(1, len(answer)):
        conn, transport = connection(c)
        conn.send("GET", "/x", [], body=False, length=None)
        conn.data_received(answer[:cut])
        conn.data_received(answer[cut:])
        head = await conn.response()
        assert (head.status, head.reason) == (200, "OK"), cut
        assert await conn.read_all() == b"hello", cut
        conn.release()
        assert pooled(c, conn) and not transport.aborted, cut
        c._idle.clear()
    assert c._in_use == 0


@pytest.mark.parametrize("answer", [CL, CHUNKED, INTERIM], ids=["length", "chunked", "interim"])
async def test_an_answer_byte_by_byte(answer: bytes) -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("GET", "/x", [], body=False, length=None)
    for i in range(len(answer)):
        conn.data_received(answer[i : i + 1])
    assert (await conn.response()).status == 200
    assert await conn.read_all() == b"hello"
    conn.release()
    assert pooled(c, conn)


async def test_the_request_head_is_written_as_given() -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("DELETE", "/a//b%2F?x=1+2;y", [("X-One", "1"), ("Cookie", "a=b"), ("X-One", "2")], body=False, length=None)
    assert b"".join(transport.written) == (
        b"DELETE /a//b%2F?x=1+2;y HTTP/1.1\r\nHost: backend.example:8080\r\nX-One: 1\r\nCookie: a=b\r\nX-One: 2\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    conn.abort()


async def test_a_body_of_unknown_length_is_chunked() -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("PUT", "/f", [], body=True, length=None)

    async def sender(out: Connection) -> None:
        await out.write(b"abc")
        await out.write(b"0123456789abcdef")

    conn.upload(sender)
    await asyncio.sleep(0)
    conn.data_received(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    assert (await conn.response()).status == 201
    assert await conn.read_all() == b""
    assert b"".join(transport.written).endswith(b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n")
    conn.release()
    assert pooled(c, conn)


async def test_an_answer_before_the_body_is_all_sent_keeps_the_connection_out_of_the_pool() -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("PUT", "/f", [("Content-Length", "10")], body=True, length=10)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def sender(out: Connection) -> None:
        await out.write(b"12345")
        await never

    conn.upload(sender)
    await asyncio.sleep(0)
    conn.data_received(b"HTTP/1.1 413 Too Large\r\nContent-Length: 2\r\n\r\nno")
    assert (await conn.response()).status == 413
    assert await conn.read_all() == b"no"
    conn.release()
    assert transport.aborted and not pooled(c, conn) and c._in_use == 0


@pytest.mark.parametrize("code", [102, 150, 199])
async def test_other_interim_answers_fail(code: int) -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("GET", "/x", [], body=False, length=None)
    conn.data_received(f"HTTP/1.1 {code} Whatever\r\n\r\n".encode())
    with pytest.raises(InterimAnswerError):
        await conn.response()
    assert transport.aborted


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nxx",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ],
)
async def test_a_101_is_handed_over_and_never_reused(answer: bytes) -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("GET", "/x", [], body=False, length=None)
    conn.data_received(answer)
    assert (await conn.response()).status == 101
    conn.release()
    assert transport.aborted and not pooled(c, conn)


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    ],
)
async def test_a_garbled_answer_fails(answer: bytes) -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("GET", "/x", [], body=False, length=None)
    conn.data_received(answer)
    with pytest.raises(BackendError):
        await conn.response()
    assert transport.aborted


async def test_a_close_mid_body_fails_the_read() -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("GET", "/x", [], body=False, length=None)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
    await conn.response()
    assert await conn.read() == [b"12345"]
    conn.connection_lost(None)
    with pytest.raises(BackendError):
        await conn.read()


async def test_an_answer_without_length_runs_until_close() -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("GET", "/x", [], body=False, length=None)
    conn.data_received(b"HTTP/1.1 200 OK\r\n\r\nabc")
    head = await conn.response()
    assert head.content_length is None
    assert await conn.read() == [b"abc"]
    conn.data_received(b"def")
    assert await conn.read() == [b"def"]
    conn.eof_received()
    assert await conn.read() == []
    conn.release()
    assert not pooled(c, conn)


@pytest.mark.parametrize("status", [204, 304])
async def test_bodiless_statuses_end_at_their_head(status: int) -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("GET", "/x", [], body=False, length=None)
    conn.data_received(f"HTTP/1.1 {status} X\r\nContent-Length: 7\r\n\r\n".encode())
    assert (await conn.response()).content_length == 7
    assert await conn.read_all() == b""
    conn.release()
    assert pooled(c, conn)


@pytest.mark.parametrize(("after", "reused"), [(b"", True), (b"unasked body", False)])
async def test_a_head_answer_has_no_body(after: bytes, reused: bool) -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("HEAD", "/x", [], body=False, length=None)
    conn.data_received(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" + after)
    head = await conn.response()
    assert (head.status, head.content_length) == (200, 99)
    assert await conn.read_all() == b""
    conn.release()
    assert pooled(c, conn) is reused


@pytest.mark.parametrize(
    "answer",
    [
        CL + b"HTTP/1.1 200 OK\r\n",  # something after the answer
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    ],
)
async def test_what_may_not_be_reused_is_dropped(answer: bytes) -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("GET", "/x", [], body=False, length=None)
    conn.data_received(answer)
    await conn.response()
    assert await conn.read_all() == b"hello"
    conn.release()
    assert transport.aborted and not pooled(c, conn) and c._in_use == 0


async def test_an_idle_connection_that_speaks_is_dropped() -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("GET", "/x", [], body=False, length=None)
    conn.data_received(CL)
    await conn.response()
    await conn.read_all()
    conn.release()
    assert pooled(c, conn)
    conn.data_received(b"HTTP/1.1 200 OK\r\n")
    assert transport.aborted
    conn.connection_lost(None)
    assert not pooled(c, conn)


async def test_the_backend_is_not_read_while_the_reader_is_away() -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("GET", "/x", [], body=False, length=None)
    heading = asyncio.ensure_future(conn.response())
    await asyncio.sleep(0)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nabc")
    assert not transport.paused  # the reader comes at once for what came with the head
    conn.data_received(b"def")  # a second batch before the reader ran (libuv reads many in one go)
    assert transport.paused
    await heading
    assert await conn.read() == [b"abc", b"def"]
    reading = asyncio.ensure_future(conn.read())
    await asyncio.sleep(0)
    assert not transport.paused  # back for more
    conn.data_received(b"ghi")
    assert not transport.paused
    assert await reading == [b"ghi"]
    conn.data_received(b"jkl")  # while the reader writes "ghi" to its client
    assert transport.paused
    assert await conn.read() == [b"jkl"]
    reading = asyncio.ensure_future(conn.read())
    await asyncio.sleep(0)
    assert not transport.paused
    conn.data_received(b"mno")
    assert await reading == [b"mno"]
    assert await conn.read() == []
    conn.release()
    assert pooled(c, conn)


async def test_abort_frees_the_slot_once() -> None:
    c = client()
    conn, transport = connection(c)
    conn.send("GET", "/x", [], body=False, length=None)
    conn.abort()
    conn.abort()
    conn.release()
    assert transport.aborted and c._in_use == 0


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "header", "prefix"),
    [
        ("http://backend:14001", "backend", 14001, False, "backend:14001", ""),
        ("http://backend", "backend", 80, False, "backend", ""),
        ("https://backend:443/", "backend", 443, True, "backend", ""),
        ("http://[::1]:8080/api/", "::1", 8080, False, "[::1]:8080", "/api"),
        ("http://10.0.0.7:80/a%2Fb", "10.0.0.7", 80, False, "10.0.0.7", "/a%2Fb"),
    ],
)
def test_an_origin_names_the_backend_as_aiohttp_did(url: str, host: str, port: int, tls: bool, header: str, prefix: str) -> None:
    assert Origin.from_url(url) == Origin(host, port, tls, header, prefix)
