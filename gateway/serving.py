"""Serving limits: connections, request heads, idle time, and a bounded drain at shutdown.

:class:`ConnectionLimit` stands between the listening socket and aiohttp's
protocol factory.  Past ``limit`` open connections a new one is answered at
once with ``503`` and closed, so the memory the gateway holds follows the
configured limit, not the load (each connection's buffers are bounded).
Connections still in their TLS handshake count once it is done.  One client
address (the TCP peer; trusted proxies are exempt, they carry everyone's
connections) may hold at most ``per_peer`` of them, or gets ``503`` too.

Every connection is a :class:`Connection`, aiohttp's protocol with the
bounds nginx puts on a request head (``client_header_timeout``,
``large_client_header_buffers``): a head must be complete within
``head_timeout`` seconds (counted from the connection's start for its first
request, from its first byte for later ones) and ``max_head_size`` bytes,
or the connection is answered ``408`` or ``431`` and closed (closed
silently when nothing of a head came: an idle connection is not a request).
A head being received holds at most ``max_head_size`` bytes, plus, for one
pipelined behind a request in the same read, the rest of that read.  The
idle time between requests is aiohttp's ``keepalive_timeout``.

A request body may go ``body_timeout`` seconds without a byte while the
gateway waits for it (nginx's ``client_body_timeout``): its reader then
gets :class:`BodyTimeoutError`, which the gateway and the embedded backend
answer ``408`` in the route's format, aborting the backend's request; when
the answer has begun already, the connection is closed instead.  Only time
a reader waits for the body counts: while the gateway does not read (a slow
backend holding the upload back, a request still being authenticated, an
``Expect: 100-continue`` not yet answered) the client is not late.

All of it costs one timer per connection (rearmed lazily, not per request
nor per read) and a few attribute reads per read from the socket.  A
request whose body is still arriving when its head is complete costs a look
at the clock and, mostly, moving that timer closer (about 2 us measured);
then one look per quarter of ``body_timeout`` while the body arrives.

:class:`InFlight` tracks the gateway's requests in progress.  At shutdown
the listening sockets close first (new connections are refused by the
kernel), requests in progress get until the drain bound, and whatever is
still running then is cut: answered ``503`` if nothing of its response has
left yet, otherwise its connection is aborted.  aiohttp then gives the
clients of cut uploads a short lingering close (``_AFTER_DRAIN`` in the CLI)
to read their 503 before the process exits.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

from aiohttp import hdrs, web
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestHandler

from gateway.forwarded import TrustedProxies
from gateway.log import server_logger
from gateway.wire import Fault, hoop

__all__ = ("BodyTimeoutError", "Connection", "ConnectionLimit", "HeadLimits", "InFlight")


class _Refusal(asyncio.Protocol):
    """Answers one connection with a canned 503, then closes it.

    The answer is followed by a half-close, and what the client still sends
    is read and dropped until it closes too (at most ``_LINGER`` seconds):
    closing with unread bytes would reset the connection and could destroy
    the answer before the client reads it.
    """

    def __init__(self, answer: bytes) -> None:
        self._answer = answer
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        transport.write(self._answer)
        if transport.can_write_eof():
            transport.write_eof()
            self._timer = asyncio.get_running_loop().call_later(_LINGER, transport.abort)
        else:  # TLS: no half-close
            transport.close()

    def data_received(self, data: bytes) -> None:
        pass  # dropped

    def eof_received(self) -> bool:
        return False  # close now: the client is done

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()


_LINGER = 2.0  # seconds a refused client has to finish sending and read its 503


def _canned(status: int, message: str, exception: str, extra: str = "") -> bytes:
    """A whole answer that closes its connection, in Hoop's failure format (no route is known yet)."""
    body = json.dumps(hoop.failure_body(status, message, exception)).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nServer: {SERVER_NAME}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    )
    return head.encode("ascii") + body


def _canned_503(message: str) -> bytes:
    return _canned(503, message, hoop.TABLE[Fault.UNAVAILABLE][1], "Retry-After: 1\r\n")


SERVER_NAME = "authgateway"
"""The ``Server`` header of every answer: the name only, as nginx's ``server_tokens off``."""


def hide_server_version() -> None:
    """Make every answer aiohttp prepares say ``Server: authgateway``, not Python's and aiohttp's versions.

    aiohttp sets the header, when a response has none, from this module
    global, read as each response is prepared: changing it once at start-up
    costs nothing per request (a signal handler would cost a coroutine per
    answer).  tests/e2e/test_hostile_heads.py checks every kind of answer.
    """
    from aiohttp import web_response

    web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]


class BodyTimeoutError(Exception):
    """What reading a request body raises once the client has sent none of it for ``server.body_timeout``."""


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """The bounds on request heads and bodies of one listener's connections
    (server.head_timeout, server.max_head_size, server.body_timeout)."""

    head_timeout: float  # seconds
    max_head_size: int  # bytes of request line and headers
    body_timeout: float = 60.0  # seconds without a byte of body while the gateway waits for it

    def answers(self) -> tuple[bytes, bytes]:
        """The canned 408 and 431."""
        late = _canned(
            408, f"the request head did not arrive within {self.head_timeout:g} s", "GatewayException"
        )
        large = _canned(
            431, f"the request head is larger than {self.max_head_size} bytes", "GatewayException"
        )
        return late, large


class _Peers:
    """How many connections each client address holds in this worker, for the per-address share."""

    __slots__ = ("_count", "_limit", "_trusted", "_warned", "answer")

    def __init__(self, limit: int, trusted: TrustedProxies | None) -> None:
        self._limit = limit  # 0: none
        self._trusted = trusted
        self._count: dict[str, int] = {}
        self._warned: set[str] = set()
        self.answer = _canned_503("too many connections from your address; try again")

    def admit(self, transport: asyncio.BaseTransport) -> str | None:
        """The address to count ``transport`` under ("" when not counted), or ``None`` to refuse it."""
        if not self._limit:
            return ""
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else ""
        if not host or (self._trusted is not None and self._trusted.trusts(host)):
            return ""  # a unix socket, or a proxy that carries many clients' connections
        held = self._count.get(host, 0)
        if held >= self._limit:
            if host not in self._warned:
                self._warned.add(host)
                server_logger.warning(
                    "%s holds %d connections, its share of server.max_connections_per_peer in this worker: "
                    "refusing its new ones", host, held,
                )
            return None
        self._count[host] = held + 1
        return host

    def release(self, host: str) -> None:
        held = self._count[host] - 1
        if held:
            self._count[host] = held
        else:
            del self._count[host]
            self._warned.discard(host)


class _Rules:
    """What every :class:`Connection` of one listener shares (built once per listener and worker)."""

    __slots__ = ("body_look", "body_timeout", "head_timeout", "late", "large", "max_head_size", "peers")

    def __init__(self, head: HeadLimits, peers: _Peers) -> None:
        self.head_timeout = head.head_timeout
        self.max_head_size = head.max_head_size
        self.body_timeout = head.body_timeout
        self.body_look = head.body_timeout / _BODY_LOOKS
        self.late, self.large = head.answers()
        self.peers = peers


_OVER = 1 << 62  # Connection._head_size of a head refused while a request was in progress
_SOON = 0.05  # seconds between looks at such a connection, until its request is answered
# Looks at a body arriving per body_timeout: a late client is cut at most a
# quarter of the bound late, and at most that much of the time a reader was
# busy elsewhere (a slow backend) can be counted as waiting.
_BODY_LOOKS = 4


class Connection(RequestHandler):
    """aiohttp's protocol for one client connection, with bounds on the time and size of request heads.

    The head of a request is counted from the first read after the previous
    request's head and body (or from the start): ``_head_size`` is its bytes
    so far, ``-1`` while the previous request's body is still arriving.
    ``_deadline`` is when the head in progress must be complete, ``None``
    when none is; one timer checks it and is rearmed only when it fires.
    While a body arrives the same timer looks at it every quarter of
    ``body_timeout``: ``_body_seen`` is its bytes at the last look and
    ``_body_since`` the last look that found it moving (or not waited for).
    This relies on aiohttp 3.14's ``RequestHandler`` internals (``_messages``,
    ``_request_count``, ``_waiter``, ``_current_request``,
    ``_process_keepalive``) and ``StreamReader._waiter``;
    tests/e2e/test_hostile_heads.py and test_hostile_bodies.py would notice a change.
    """

    __slots__ = ("_body", "_body_seen", "_body_since", "_deadline", "_head_size", "_peer", "_rules", "_timer")

    def __init__(self, manager: web.Server, rules: _Rules, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._rules = rules
        self._peer: str | None = None
        self._head_size = 0
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._body: StreamReader = EMPTY_PAYLOAD
        self._body_seen = 0
        self._body_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = self._rules.peers.admit(transport)
        if peer is None:
            refusal = _Refusal(self._rules.peers.answer)
            transport.set_protocol(refusal)
            refusal.connection_made(transport)
            return
        self._peer = peer
        super().connection_made(transport)
        # The first head is due head_timeout after the connection starts, as in nginx.
        self._deadline = self._loop.time() + self._rules.head_timeout
        self._timer = self._loop.call_at(self._deadline, self._check)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = None
        if self._peer:
            self._rules.peers.release(self._peer)
        self._peer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        size = self._head_size
        if size < 0:
            if not self._body.is_eof():  # the previous request's body
                count = self._request_count
                super().data_received(data)
                if self._request_count != count:
                    self._head_done()
                return
            size = 0
        if not size and self._deadline is None:  # the first bytes of a head
            self._deadline = self._loop.time() + self._rules.head_timeout
            if self._timer is None:
                self._timer = self._loop.call_at(self._deadline, self._check)
        count = self._request_count
        if size + len(data) > self._rules.max_head_size:
            if size == _OVER:
                return  # refused already, the answer waits for the request in progress: dropped
            # Only what fits may reach the parser; if the head ends in it, the rest is fed after.
            fits = self._rules.max_head_size - size
            super().data_received(data[:fits])
            if self._request_count == count:
                # 431, after the answer in progress if there is one (pipelined behind it).
                self._head_size = _OVER
                self._deadline = self._loop.time()
                self._check()
                return
            self._head_done()
            self.data_received(data[fits:])
            return
        self._head_size = size + len(data)
        super().data_received(data)
        if self._request_count != count:
            self._head_done()

    def _process_keepalive(self) -> None:
        # aiohttp's idle timer (keepalive_timeout) is for between requests:
        # while a head is due, its deadline rules (the first head's from the
        # connection's start, as in nginx).  aiohttp arms the timer again
        # after the next answer.
        if self._deadline is not None:
            self._keepalive_handle = None
            return
        super()._process_keepalive()

    def _head_done(self) -> None:
        """A head (or several, pipelined) is complete: no deadline until the next one starts.

        A body still to come is looked at within a quarter of ``body_timeout``.
        """
        self._deadline = None
        self._head_size = -1
        body = self._body = self._messages[-1][1] if self._messages else EMPTY_PAYLOAD
        if body.is_eof():
            return  # no body, or all of it came with the head: the common case costs nothing more
        now = self._loop.time()
        self._body_seen = body.total_bytes
        self._body_since = now
        due = now + self._rules.body_look
        timer = self._timer
        if timer is None or timer.when() > due:  # a head's timer may be due much later
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(due, self._check)

    def _check(self) -> None:
        self._timer = None
        if self._head_size < 0:
            if not self._body.is_eof() and self.transport is not None:
                self._check_body(self._body)
            return  # else the next head's first byte arms the timer again
        deadline = self._deadline
        if deadline is None or self.transport is None:
            return
        now = self._loop.time()
        if now < deadline:
            self._timer = self._loop.call_at(deadline, self._check)
            return
        waiter = self._waiter
        if waiter is None or waiter.done():
            # A request is in progress: the head pipelined behind it waits for
            # its answer (a refusal is looked at again soon, a slow head later).
            self._deadline = now + (_SOON if self._head_size == _OVER else self._rules.head_timeout)
            self._timer = self._loop.call_at(self._deadline, self._check)
            return
        if self._head_size == _OVER:
            self._answer_and_close(self._rules.large)
        elif self._head_size > 0:
            self._answer_and_close(self._rules.late)
        else:  # nothing of a request came: close, as nginx does (a 408 could answer a request in flight)
            self.force_close()

    def _check_body(self, body: StreamReader) -> None:
        """Cut the body if the gateway has waited for it ``body_timeout`` with none of it coming."""
        now = self._loop.time()
        seen = body.total_bytes
        # aiohttp sets the reader's _waiter while something awaits more of the body.
        if seen != self._body_seen or body._waiter is None:
            self._body_seen = seen
            self._body_since = now
        elif now - self._body_since >= self._rules.body_timeout:
            self._cut_body(body)
            return
        self._timer = self._loop.call_at(
            min(now + self._rules.body_look, self._body_since + self._rules.body_timeout), self._check
        )

    def _cut_body(self, body: StreamReader) -> None:
        """The client is late with its body: its reader gets :class:`BodyTimeoutError` (the handler
        answers 408), or, once the answer has begun, the connection is closed."""
        server_logger.info(
            "no byte of a request body for %g s (server.body_timeout): cutting the request", self._rules.body_timeout
        )
        request = self._current_request
        if request is None or request.writer.output_size:
            self.force_close()  # the handler (if any) is cancelled, the backend's request aborted
            return
        body.set_exception(BodyTimeoutError(f"no byte of the request body came for {self._rules.body_timeout:g} s"))
        # Once answered, close: aiohttp would otherwise read on for the rest of the body (and meet the error).
        self._lingering_time = 0.0

    def _answer_and_close(self, answer: bytes) -> None:
        """Hand the connection over to a :class:`_Refusal` with ``answer``; aiohttp lets go of it."""
        transport = self.transport
        if transport is None:
            return
        refusal = _Refusal(answer)
        transport.set_protocol(refusal)
        self.transport = None  # so aiohttp's teardown below leaves the transport open for the answer
        self.connection_lost(None)
        refusal.connection_made(transport)


class ConnectionLimit:
    """A protocol factory for ``loop.create_server``: at most ``limit`` connections, as :class:`Connection`.

    ``limit`` ``None`` admits any number; ``per_peer`` (0: none) bounds one
    client address's, ``trusted`` (the proxies that are exempt) apart.
    ``handler_args`` are aiohttp's ``RequestHandler`` arguments (as given to
    ``web.Server``).
    """

    def __init__(
        self,
        server: web.Server,
        limit: int | None,
        *,
        head: HeadLimits,
        per_peer: int = 0,
        trusted: TrustedProxies | None = None,
        handler_args: dict[str, Any],
    ) -> None:
        self._server = server
        self._limit = limit
        # Accepted in this turn of the loop, not yet registered by aiohttp
        # (connection_made runs on the next turn).
        self._pending = 0
        self._answer = _canned_503("the gateway has too many connections; try again")
        self._warned = False
        self._rules = _Rules(head, _Peers(per_peer, trusted))
        self._handler_args = handler_args

    def __call__(self) -> asyncio.BaseProtocol:
        if self._limit is not None:
            if not self._pending:
                asyncio.get_running_loop().call_soon(self._settle)
            if len(self._server.connections) + self._pending >= self._limit:
                if not self._warned:
                    server_logger.warning("server.max_connections (%d) reached: refusing connections", self._limit)
                    self._warned = True
                return _Refusal(self._answer)
            self._warned = False
            self._pending += 1
        return Connection(self._server, self._rules, loop=asyncio.get_running_loop(), **self._handler_args)

    def _settle(self) -> None:
        self._pending = 0


class InFlight:
    """The requests a gateway app is handling, for a bounded drain."""

    __slots__ = ("_idle", "_tasks", "cutting", "draining")

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self._idle: asyncio.Event | None = None
        self.draining = False  # set at shutdown: answers close their connections
        self.cutting = False  # set once the drain bound has passed

    def __len__(self) -> int:
        return len(self._tasks)

    def enter(self, task: asyncio.Task[object]) -> None:
        self._tasks.add(task)

    def leave(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not self._tasks and self._idle is not None:
            self._idle.set()

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        # No keep-alive when draining (nothing new may start on this connection), nor
        # after a body cut by server.body_timeout (the rest of it would be read as a request).
        if self.draining or request.content.exception() is not None:
            response.force_close()
            # aiohttp 3.14 has chosen its Connection header before this hook runs.
            response.headers[hdrs.CONNECTION] = "close"

    async def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for every request to end; cut the rest. Return how many were cut."""
        self._idle = asyncio.Event()
        self.draining = True
        if not self._tasks:
            return 0
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
            return 0
        except TimeoutError:
            pass
        self.cutting = True
        cut = list(self._tasks)
        for task in cut:
            task.cancel()
        # Each cut request answers or aborts at once; do not wait on a stuck one.
        await asyncio.wait(cut, timeout=5.0)
        return len(cut)
