"""HTTP/1.1 to a backend at the protocol level: keep-alive pools and one exchange at a time per connection.

The proxy core (:mod:`gateway.proxy`) decides what to send and what to pass
back; this module only speaks the protocol, on asyncio (uvloop in the
workers) with httptools, the C llhttp parser.  It replaces aiohttp's
``ClientSession``, whose per-request machinery cost twice the whole server
side of a small proxied request.

What it holds to:

* a pool per backend origin of at most ``max_connections`` connections in
  use (a :class:`UpstreamClient` is shared by its origins), waiting at most
  ``pool_timeout`` for one to come free and ``connect_timeout`` to connect
  (``TimeoutError`` for both, :class:`ConnectTimeoutError` for the second;
  :class:`ConnectError` when it cannot connect);
* the request head as given: the target byte for byte, the headers in
  order, ``Host`` first as the backend was addressed; a body of known
  length sent as it is, one of unknown length chunked;
* ``read_timeout`` for every read while an answer is awaited, and none
  while the reader has paused the backend (see :meth:`Connection.read`);
* ``100`` and ``103`` passed over, any other interim answer an
  :class:`InterimAnswerError`, ``101`` handed over as a final answer (the
  connection is then never reused);
* a broken, garbled or cut-short answer a :class:`BackendError`; an answer
  without a length read until the backend closes;
* a head (status line and header lines, interim heads included) of at most
  ``max_head_size`` bytes and ``max_headers`` lines, as nginx's
  ``proxy_buffer_size`` bounds it: a larger one is a
  :class:`HeadTooLargeError`, found while it comes, so no more of it is held;
* the answer ends where its framing says: a byte after it (a second answer
  nobody asked for, or garbage) is never parsed nor handed over, and the
  connection is dropped at once;
* a connection back in the pool only after a complete answer to a complete
  request, with keep-alive on both sides and nothing after it; everything
  else, cancellation included, aborts it (never a graceful close: that
  would wait for a backend that stopped reading).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final, cast

import httptools
from yarl import URL

__all__ = (
    "DEFAULT_MAX_HEADERS", "DEFAULT_MAX_HEAD_SIZE", "BackendError", "BodySender", "ConnectError", "ConnectTimeoutError",
    "Connection", "HeadTooLargeError", "InterimAnswerError", "Origin", "ResponseHead", "UpstreamClient",
)

IDLE_TIMEOUT: Final = 15.0  # seconds an unused keep-alive connection is kept (as aiohttp's client)
_PASSED_OVER = frozenset({100, 103})  # RFC 9110 15.2.1 and RFC 8297: safe to drop
_BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # no Content-Length: 0 added for these
_HEAD_END = b"\r\n\r\n"
# Bytes of an answer's head: nginx's proxy_buffer_size is 4-8 KiB; Kerberos headers want more.
DEFAULT_MAX_HEAD_SIZE: Final = 32 * 1024
DEFAULT_MAX_HEADERS: Final = 100  # header lines of an answer (Apache's LimitRequestFields for requests)


class BackendError(Exception):
    """The backend's answer is broken: garbled, cut short, or the connection closed before it came."""


class ConnectError(BackendError):
    """The backend could not be connected to; ``os_error`` says why."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(str(os_error))
        self.os_error = os_error


class ConnectTimeoutError(TimeoutError):
    """The backend did not accept the connection within ``connect_timeout`` (the request never reached it)."""


class InterimAnswerError(BackendError):
    """The backend sent a 1xx that a proxy can neither relay nor pass over."""


class HeadTooLargeError(BackendError):
    """The backend's answer head is over ``max_head_size`` bytes or ``max_headers`` lines."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where requests for one base URL go, and how the backend is named in them."""

    host: str
    port: int
    tls: bool
    host_header: str  # as aiohttp's client wrote it: the port only when not the scheme's default
    prefix: str  # the base URL's path, without its trailing slash, put before every target

    @classmethod
    def from_url(cls, base_url: str) -> Origin:
        url = URL(base_url.rstrip("/"), encoded=True)
        if url.scheme not in ("http", "https") or not url.raw_host or url.port is None:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        authority = url.host_port_subcomponent
        assert authority is not None
        host = url.raw_host[1:-1] if url.raw_host.startswith("[") else url.raw_host
        return cls(host, url.port, url.scheme == "https", authority, url.raw_path.rstrip("/"))


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """The final answer's status line and header lines, in order, as the backend sent them."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    content_length: int | None


class _Stop(Exception):
    """Raised from a parser callback to stop parsing (the reason is kept on the connection)."""


BodySender = Callable[["Connection"], Awaitable[None]]


class Connection(asyncio.Protocol):
    """One keep-alive connection to a backend, carrying one exchange at a time.

    Use: :meth:`send`, then (when there is a body) :meth:`upload`, then
    :meth:`response` and :meth:`read` until it returns nothing; always
    :meth:`release` at the end, or :meth:`abort` on any failure.
    """

    reused = False  # came from the pool (a failure before any answer may then be retried)
    _held = False  # handed out by the client: counts against its limit until released or aborted

    def __init__(self, client: UpstreamClient, origin: Origin) -> None:
        self._client = client
        self.origin = origin
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._closed = False
        self._idle_since = 0.0
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self._parser: httptools.HttpResponseParser | None = None
        self._active = False
        self._head_only = False
        self._chunked = False
        self._sent = False  # the whole request went out
        self._received = False  # any byte of an answer came
        self._head: ResponseHead | None = None
        self._head_waiter: asyncio.Future[None] | None = None
        self._pieces: list[bytes] = []
        self._body_waiter: asyncio.Future[None] | None = None
        self._complete = False
        self._keep_alive = False
        self._needs_eof = False
        self._after = False  # something followed the answer
        self._error: BaseException | None = None
        self._upload_task: asyncio.Task[None] | None = None
        self._reading_paused = False
        self._timing = False
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._status_line = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._heads = 0  # heads parsed in this exchange, interim ones included (for HEAD)
        self._seen: list[bytes] = []  # what came, for a HEAD request only
        self._fed = 0  # bytes that came while no final head was complete

    @property
    def answered(self) -> bool:
        """Whether any byte of an answer to the current request came."""
        return self._received

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are no subclass, but one in kind

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:  # an idle connection has nothing to say
            self._abort_transport()
            return
        self._received = True
        if self._head is None:
            self._fed += len(data)  # all head, or the head and more: only past the limit is it measured
        if self._timing:
            self._last_read = self._loop.time()
        if self._head_only:
            self._seen.append(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._after = True  # a 101 with Upgrade: its head is out; the connection is done
        except httptools.HttpParserError as exc:
            if self._error is None:
                if self._head_only and self._complete:
                    self._check_head_end()
                elif self._head is not None and self._head.status == 101:
                    self._after = True
                elif self._complete:
                    # Bytes after a complete answer: never parsed nor handed over.
                    self._after = True
                    self._abort_transport()
                else:
                    self._fail(BackendError(f"the backend's answer is garbled: {exc}"))
            else:
                self._fail(self._error)  # set by a callback (an interim answer, a head too large)
        if self._head is None and self._error is None and self._fed > self._client.max_head_size:
            # No head yet from more bytes than a head may have (llhttp holds a header line until it ends).
            self._fail(HeadTooLargeError(f"the answer's head is over {self._client.max_head_size} bytes"))
        self._wake()

    def eof_received(self) -> bool | None:
        self._end_of_stream()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._end_of_stream()
        self._client._forget(self)
        self._stop_timer()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            self._after = True
            raise _Stop  # a second answer: not one byte of it is parsed
        self._status_line = b""
        self._raw_headers = []

    def on_status(self, status: bytes) -> None:
        self._status_line += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._heads += 1
        code = self._parser.get_status_code()
        if 100 <= code < 200 and code != 101:
            if code in _PASSED_OVER:
                return
            self._error = InterimAnswerError(f"unexpected interim answer {code}")
            raise _Stop
        client = self._client
        if len(self._raw_headers) > client.max_headers:
            self._error = HeadTooLargeError(f"the answer has over {client.max_headers} header lines")
            raise _Stop
        headers: list[tuple[str, str]] = []
        length: int | None = None
        te: str | None = None
        if self._fed > client.max_head_size and _head_size(self._status_line, self._raw_headers) > client.max_head_size:
            self._error = HeadTooLargeError(f"the answer's head is over {client.max_head_size} bytes")
            raise _Stop
        for raw_name, raw_value in self._raw_headers:
            name = raw_name.decode("utf-8", "surrogateescape")
            value = raw_value.decode("utf-8", "surrogateescape").strip(" \t")
            headers.append((name, value))
            folded = name.lower()
            if folded == "content-length":
                length = int(value)  # llhttp let only digits through, and only one value
            elif folded == "transfer-encoding":
                te = value if te is None else f"{te}, {value}"
        self._raw_headers = []
        self._head = ResponseHead(code, self._status_line.decode("utf-8", "surrogateescape"), headers, length)
        bodiless = self._head_only or code in (101, 204, 304)
        chunked = te is not None and te.rsplit(",", 1)[-1].strip().lower() == "chunked"
        # As llhttp frames it: an unknown transfer coding, or no length at all, ends at close.
        self._needs_eof = not bodiless and not chunked and (te is not None or length is None)
        if self._head_only:
            self._complete = True
            self._keep_alive = self._parser.should_keep_alive()
            raise _Stop  # llhttp would wait for a body a HEAD answer does not have

    def on_body(self, body: bytes) -> None:
        self._pieces.append(body)

    def on_message_complete(self) -> None:
        assert self._parser is not None
        if self._head is None:  # an interim answer passed over
            return
        if not self._complete:
            self._complete = True
            self._keep_alive = self._parser.should_keep_alive()

    # -- the exchange ------------------------------------------------------------------------

    def send(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], *, body: bool, length: int | None
    ) -> None:
        """Write the request head; ``body`` says whether :meth:`upload` follows (chunked without ``length``)."""
        assert self._transport is not None and not self._active
        self._active = True
        self._head_only = method == "HEAD"
        self._parser = httptools.HttpResponseParser(self)
        lines = [f"{method} {self.origin.prefix}{target} HTTP/1.1\r\nHost: {self.origin.host_header}\r\n"]
        for name, value in headers:
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError("a line break in a request header")
            lines.append(f"{name}: {value}\r\n")
        if body and length is None:
            self._chunked = True
            lines.append("Transfer-Encoding: chunked\r\n")
        elif not body and length is None and method not in _BODILESS_METHODS:
            lines.append("Content-Length: 0\r\n")
        lines.append("\r\n")
        self._transport.write("".join(lines).encode("utf-8", "surrogateescape"))
        if not body:
            self._request_sent()

    def upload(self, sender: BodySender) -> None:
        """Send the body in a task of its own: ``sender`` calls :meth:`write` for each piece.

        The answer may come before the body is all sent; a failure before
        it fails the exchange, one after it only keeps the connection from
        the pool.
        """
        self._upload_task = self._loop.create_task(self._upload(sender))

    async def _upload(self, sender: BodySender) -> None:
        try:
            await sender(self)
            if self._error is not None:
                return
            if self._chunked:
                self._write(b"0\r\n\r\n")
            self._request_sent()
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # reported through the exchange, not by this task
            if self._head is None:
                # fail, not _fail: whatever waits for the answer must learn of it now.
                if isinstance(exc, (TimeoutError, BackendError, OSError)):
                    self.fail(exc)
                else:
                    failure = BackendError(f"sending the request body failed: {type(exc).__name__}")
                    failure.__cause__ = exc
                    self.fail(failure)

    async def write(self, chunk: bytes) -> None:
        """Send one piece of the request body, waiting while the backend is not taking it."""
        if self._error is not None:
            raise self._error
        if self._closed:
            raise BackendError("the backend closed the connection")
        self._write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if self._chunked else chunk)
        if self._write_paused:
            waiter = self._drain_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._drain_waiter = None
            if self._error is not None:
                raise self._error
            if self._closed:
                raise BackendError("the backend closed the connection")

    def fail(self, exc: BaseException) -> None:
        """End the exchange with ``exc`` (what waits for it raises it) and drop the connection."""
        self._fail(exc)
        self._wake()

    async def response(self) -> ResponseHead:
        """The final answer's head (interim ones passed over)."""
        if self._head is None and self._error is None:
            waiter = self._head_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._head_waiter = None
        if self._head is None:
            assert self._error is not None
            raise self._error
        return self._head

    async def read(self) -> list[bytes]:
        """The pieces of the body that came since the last call, as parsed; ``[]`` at its end.

        While the caller is away (writing the last pieces to a slow client)
        the backend is not read, so at most one batch is held.
        """
        if not self._pieces and not self._complete and self._error is None:
            if self._reading_paused:
                self._resume_reading()
            waiter = self._body_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._body_waiter = None
        if self._pieces:
            pieces, self._pieces = self._pieces, []
            return pieces
        if self._error is not None:
            raise self._error
        return []

    async def read_all(self) -> bytes:
        """The whole body (for small ones)."""
        pieces: list[bytes] = []
        while batch := await self.read():
            pieces += batch
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def release(self) -> None:
        """End the exchange: back to the pool if it was clean, else dropped."""
        if not self._held:
            return
        clean = (
            self._complete and self._keep_alive and self._sent and not self._after and self._error is None
            and not self._closed and (self._upload_task is None or self._upload_task.done())
        )
        if not clean:
            self.abort()
            return
        self._stop_timer()
        if self._reading_paused:
            self._resume_reading()
            self._stop_timer()
        self._reset()
        self._held = False
        self._client._put_back(self)

    def abort(self) -> None:
        """Drop the connection at once, unsent bytes and all, and end the exchange."""
        task = self._upload_task
        if task is not None and not task.done():
            task.cancel()
        if self._error is None:
            self._error = BackendError("the exchange was abandoned")
        self._abort_transport()
        self._stop_timer()
        if self._held:
            self._held = False
            self._client._done_with(self)

    # -- inner workings ----------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    def _request_sent(self) -> None:
        self._sent = True
        if self._error is None and not self._complete and not self._reading_paused:
            self._start_timer()

    def _wake(self) -> None:
        done = self._complete or self._error is not None
        waiter = self._head_waiter if self._head_waiter is not None else self._body_waiter
        if waiter is not None and not waiter.done():
            if self._head is None and self._error is None:
                pass
            elif waiter is self._head_waiter or self._pieces or done:
                waiter.set_result(None)
        elif self._pieces and not done and self._head is not None and not self._reading_paused:
            # The reader is away (writing what it took to its client), or has not yet
            # run since the last batch (libuv reads a socket many times in one go):
            # read no more until it comes back, so at most one batch waits for it.
            self._reading_paused = True
            self._timing = False
            if self._transport is not None and not self._closed:
                self._transport.pause_reading()
        if done:
            self._stop_timer()
        elif self._head is not None and not self._reading_paused and not self._timing:
            self._start_timer()  # an answer came before the body was all sent: its reads are timed too

    def _resume_reading(self) -> None:
        self._reading_paused = False
        if self._transport is not None and not self._closed:
            self._transport.resume_reading()
        self._start_timer()

    def _start_timer(self) -> None:
        self._timing = True
        self._last_read = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_at(self._last_read + self._client.read_timeout, self._on_timer)

    def _stop_timer(self) -> None:
        self._timing = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if not self._timing or self._complete or self._error is not None:
            return
        due = self._last_read + self._client.read_timeout
        if self._loop.time() < due:  # data came meanwhile: wait from the last read
            self._timer = self._loop.call_at(due, self._on_timer)
            return
        self.fail(TimeoutError("the backend did not answer within read_timeout"))

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._abort_transport()
        self._stop_timer()

    def _abort_transport(self) -> None:
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.abort()

    def _end_of_stream(self) -> None:
        """The backend closed its side: the end of an answer that runs until close, else a failure."""
        if not self._active or self._complete or self._error is not None:
            return
        if self._head is not None and self._needs_eof:
            self._complete = True
            self._keep_alive = False
        elif self._head is not None and self._head.status == 101:
            self._after = True
        else:
            self._error = BackendError("the backend closed the connection before the answer was complete")
        self._stop_timer()
        self._wake()

    def _check_head_end(self) -> None:
        """After a HEAD answer: whatever came after its head makes the connection unusable."""
        seen = b"".join(self._seen)
        end = -len(_HEAD_END)
        for _ in range(self._heads):
            end = seen.find(_HEAD_END, end + len(_HEAD_END))
            if end < 0:
                self._after = True
                return
        if end + len(_HEAD_END) != len(seen):
            self._after = True


def _head_size(status: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """The bytes of a head with this reason phrase and these header lines (as sent, give or take blanks)."""
    return len(status) + 15 + sum(len(name) + len(value) + 4 for name, value in headers)  # "HTTP/1.1 200 ", ": ", CRLFs


class UpstreamClient:
    """Keep-alive connections to backends, at most ``max_connections`` in use at once.

    One client may serve several origins (the data nodes); the limit and the
    timeouts are the client's.  Close it at the end (:meth:`close`).
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        pool_timeout: float,
        max_connections: int,
        max_head_size: int = DEFAULT_MAX_HEAD_SIZE,
        max_headers: int = DEFAULT_MAX_HEADERS,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.pool_timeout = pool_timeout
        self.max_connections = max_connections
        self.max_head_size = max_head_size
        self.max_headers = max_headers
        self._in_use = 0  # connections handed out or being opened
        self._waiters: list[asyncio.Future[None]] = []
        self._idle: dict[Origin, dict[Connection, None]] = {}
        self._tls: ssl.SSLContext | None = None
        self._closed = False
        self._sweeper: asyncio.TimerHandle | None = None

    async def connect(self, origin: Origin) -> Connection:
        """A connection to ``origin``, pooled or new.

        Raises ``TimeoutError`` when none came free within ``pool_timeout``,
        :class:`ConnectTimeoutError` when connecting took longer than
        ``connect_timeout``, and
        :class:`ConnectError` when the backend cannot be reached.
        """
        if self._closed:
            raise ConnectError(OSError("the upstream client is closed"))
        if self._in_use >= self.max_connections:
            await self._wait_for_slot()
        else:
            self._in_use += 1
        try:
            idle = self._idle.get(origin)
            if idle:
                now = asyncio.get_running_loop().time()
                while idle:
                    conn, _ = idle.popitem()
                    alive = not conn._closed and conn._transport is not None and not conn._transport.is_closing()
                    if alive and now - conn._idle_since < IDLE_TIMEOUT:
                        conn.reused = conn._held = True
                        return conn
                    conn._abort_transport()
            conn = await self._open(origin)
            conn._held = True
            return conn
        except BaseException:
            self._free_slot()
            raise

    async def close(self) -> None:
        """Drop every idle connection; those in use are dropped when they are done."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for idle in self._idle.values():
            for conn in list(idle):
                conn._abort_transport()
        self._idle.clear()

    async def _wait_for_slot(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.pool_timeout):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._free_slot()  # handed a slot just as we gave up: pass it on
            else:
                waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            raise

    def _free_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)  # the slot goes to the first in line
                return
        self._in_use -= 1

    async def _open(self, origin: Origin) -> Connection:
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if origin.tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(self, origin), origin.host, origin.port, ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )
        except TimeoutError as exc:
            raise ConnectTimeoutError(f"no connection within {self.connect_timeout:g} s") from exc
        except OSError as exc:
            raise ConnectError(exc) from exc
        return conn

    def _done_with(self, conn: Connection) -> None:
        """``conn``'s exchange ended without it going back to the pool."""
        self._free_slot()

    def _put_back(self, conn: Connection) -> None:
        if self._closed:
            conn._abort_transport()
        else:
            conn._idle_since = asyncio.get_running_loop().time()
            self._idle.setdefault(conn.origin, {})[conn] = None
            if self._sweeper is None:
                self._sweeper = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self._sweep)
        self._free_slot()

    def _forget(self, conn: Connection) -> None:
        idle = self._idle.get(conn.origin)
        if idle is not None:
            idle.pop(conn, None)

    def _sweep(self) -> None:
        """Drop connections idle longer than :data:`IDLE_TIMEOUT`."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        for idle in self._idle.values():
            for conn in [c for c in idle if now - c._idle_since >= IDLE_TIMEOUT]:
                idle.pop(conn, None)
                conn._abort_transport()
        if any(self._idle.values()):
            self._sweeper = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self._sweep)
