"""Serving limits: how many client connections at once, and a bounded drain at shutdown.

:class:`ConnectionLimit` stands between the listening socket and aiohttp's
protocol factory.  Past ``limit`` open connections a new one is answered at
once with ``503`` and closed, so the memory the gateway holds follows the
configured limit, not the load (each connection's buffers are bounded).
Connections still in their TLS handshake count once it is done.

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
from http import HTTPStatus
from typing import cast

from aiohttp import web

from gateway.log import server_logger
from gateway.wire import Fault, hoop

__all__ = ("ConnectionLimit", "InFlight")


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


def _canned_503(message: str) -> bytes:
    body = json.dumps(hoop.body(Fault.UNAVAILABLE, message)).encode()
    head = (
        f"HTTP/1.1 503 {HTTPStatus(503).phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
    )
    return head.encode("ascii") + body


class ConnectionLimit:
    """A protocol factory for ``loop.create_server`` that admits at most ``limit`` connections."""

    def __init__(self, server: web.Server, limit: int) -> None:
        self._server = server
        self._limit = limit
        # Accepted in this turn of the loop, not yet registered by aiohttp
        # (connection_made runs on the next turn).
        self._pending = 0
        self._answer = _canned_503("the gateway has too many connections; try again")
        self._warned = False

    def __call__(self) -> asyncio.BaseProtocol:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._settle)
        if len(self._server.connections) + self._pending >= self._limit:
            if not self._warned:
                server_logger.warning("server.max_connections (%d) reached: refusing connections", self._limit)
                self._warned = True
            return _Refusal(self._answer)
        self._warned = False
        self._pending += 1
        return self._server()

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
        if self.draining:  # no keep-alive: nothing new may start on this connection
            response.force_close()

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
