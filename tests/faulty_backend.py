"""A backend that misbehaves on purpose, on raw sockets.

An HTTP server framework would tidy up exactly the faults we need to show
the gateway (a 101 it did not ask for, a peer that stops reading, header
lines a parser would merge), so this one speaks HTTP/1.1 by hand: it reads
a request head and hands it to a *behaviour*, a coroutine that writes
whatever bytes it likes.  It records every head it received and reads the
kernel's table of its connections, so a test can see what reached it and
when the gateway let go.

Used by the integration tests and by ``scripts/soak``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn

__all__ = ("Behaviour", "Exchange", "FaultyBackend", "behaviours", "hang_up")


@dataclass
class Exchange:
    """One request as the backend saw it."""

    head: bytes
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    stopping: asyncio.Event  # set when the backend stops: stalled behaviours return

    @property
    def request_line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def target(self) -> str:
        return self.request_line.split(" ")[1]

    @property
    def headers(self) -> list[tuple[str, str]]:
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        return [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines if line)]

    def header(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    async def reply(self, status: str, body: bytes = b"", headers: tuple[str, ...] = ()) -> None:
        head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await self.writer.drain()

    async def drain_body(self) -> int:
        """Read a ``Content-Length`` body; return its size."""
        (length,) = self.header("Content-Length") or ["0"]
        await self.reader.readexactly(int(length))
        return int(length)


Behaviour = Callable[[Exchange], Awaitable[None]]


@dataclass
class FaultyBackend:
    behaviour: Behaviour
    heads: list[bytes] = field(default_factory=list)
    port: int = 0
    accepted: int = 0  # connections accepted, whatever came on them
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.AbstractServer | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        """Listen on ``port`` (0: a free one; the same again to come back after :meth:`stop`)."""
        self.stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.accepted += 1
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while not self.stopping.is_set():
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                self.heads.append(head)
                await self.behaviour(Exchange(head, reader, writer, self.stopping))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()

    def peer_connections(self) -> int:
        """Connections to this backend that the peer (the gateway) still holds open.

        Read from the kernel's table, not from this server's view: a backend
        that stops reading cannot see its peer hang up.
        """
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                    if remote_port == self.port and fields[3] == "01":  # ESTABLISHED
                        count += 1
        return count

    async def wait_released(self, timeout: float = 5.0) -> None:
        """Wait until the gateway holds no connection to this backend."""
        async with asyncio.timeout(timeout):
            while self.peer_connections():
                await asyncio.sleep(0.02)


class behaviours:
    """Ready-made behaviours."""

    @staticmethod
    async def echo(ex: Exchange, *extra: str) -> None:
        """200 with the request line and headers as JSON, after reading the body."""
        size = await ex.drain_body()
        doc = {"target": ex.target, "headers": ex.headers, "length": size}
        await ex.reply("200 OK", json.dumps(doc).encode(), ("Content-Type: application/json", *extra))

    @staticmethod
    def standby(drain: bool = False) -> Behaviour:
        """Answer as a NameNode in standby does, whatever was asked: 403 and a ``StandbyException``.
        With ``drain``, only after reading the request body (else before, as the NameNode does)."""

        async def behaviour(ex: Exchange) -> None:
            if drain:
                await ex.drain_body()
            doc = {"RemoteException": {
                "exception": "StandbyException", "javaClassName": "org.apache.hadoop.ipc.StandbyException",
                "message": "Operation category READ is not supported in state standby. "
                           "Visit https://s.apache.org/sbnn-error"}}
            await ex.reply("403 Forbidden", json.dumps(doc).encode(), ("Content-Type: application/json",))
            if not drain and (ex.header("Content-Length") not in ([], ["0"]) or ex.header("Transfer-Encoding")):
                # The body it did not read would be taken for the next request: take in whatever
                # comes until the gateway hangs up, as a server that closes after answering does.
                while await ex.reader.read(65536):
                    pass
                raise ConnectionAbortedError("the gateway hung up")

        return behaviour

    @staticmethod
    async def stall(ex: Exchange) -> None:
        """Read the head only, then neither read nor answer."""
        await ex.stopping.wait()

    @staticmethod
    def raw(response: bytes, then_stall: bool = False) -> Behaviour:
        """Read the body, write ``response`` verbatim; optionally hold the connection open."""

        async def behaviour(ex: Exchange) -> None:
            await ex.drain_body()
            ex.writer.write(response)
            await ex.writer.drain()
            if then_stall:
                await ex.stopping.wait()

        return behaviour

    @staticmethod
    def second_answer(body: bytes = b"ok", extra: bytes = b"SECRET") -> Behaviour:
        """Answer 200 with ``body``, and at once a second answer nobody asked for (``extra`` its body)
        on the same connection, then hold it open until the gateway hangs up."""
        second = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(extra), extra)
        return behaviours.raw_then_hold(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
                                        + second, 30.0)

    @staticmethod
    def oversized_head(header_bytes: int = 70 * 1024, lines: int = 1) -> Behaviour:
        """Answer 200 with ``lines`` header lines of ``header_bytes`` in all (a head no proxy should relay)."""
        each = max(1, header_bytes // max(lines, 1))
        head = b"".join(b"X-Big-%d: %b\r\n" % (i, b"a" * each) for i in range(lines))
        return behaviours.raw_then_hold(b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: 2\r\n\r\nok", 30.0)

    # -- for scripts/soak, which runs for minutes: one backend misbehaving by path, and
    # behaviours that hold a connection let go after a bounded time, not when it stops.

    @staticmethod
    def route(table: Mapping[str, Behaviour], default: Behaviour | None = None) -> Behaviour:
        """Pick the behaviour by the target's first path segment (``/stall/x`` -> ``table["stall"]``).

        A segment not in ``table`` goes to ``default``, or gets a 404 without one.
        """

        async def behaviour(ex: Exchange) -> None:
            first = ex.target.split("?", 1)[0].lstrip("/").split("/", 1)[0]
            chosen = table.get(first, default)
            if chosen is None:
                await ex.drain_body()
                await ex.reply("404 Not Found")
            else:
                await chosen(ex)

        return behaviour

    @staticmethod
    def reset(prefix: bytes = b"") -> Behaviour:
        """Write ``prefix`` (say, the start of an answer), then reset the connection without reading the body."""

        async def behaviour(ex: Exchange) -> None:
            if prefix:
                ex.writer.write(prefix)
                await ex.writer.drain()
            hang_up(ex)

        return behaviour

    @staticmethod
    def stall_for(seconds: float) -> Behaviour:
        """Like ``stall`` (read the head only, then neither read nor answer), but reset after ``seconds``."""

        async def behaviour(ex: Exchange) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ex.stopping.wait(), seconds)
            hang_up(ex)

        return behaviour

    @staticmethod
    def slow(delay: float, body: bytes, pieces: int = 1, interval: float = 0.0) -> Behaviour:
        """Read the body, stay silent ``delay`` seconds, then answer 200 with ``body`` in ``pieces`` writes
        ``interval`` seconds apart (the head goes with the first)."""

        async def behaviour(ex: Exchange) -> None:
            await ex.drain_body()
            await asyncio.sleep(delay)
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n"
            step = -(-len(body) // max(pieces, 1)) or 1
            ex.writer.write(head.encode("latin-1") + body[:step])
            await ex.writer.drain()
            for start in range(step, len(body), step):
                await asyncio.sleep(interval)
                ex.writer.write(body[start : start + step])
                await ex.writer.drain()

        return behaviour

    @staticmethod
    def raw_then_hold(response: bytes, seconds: float) -> Behaviour:
        """Like ``raw(response, then_stall=True)``, but the connection is held at most ``seconds``.

        Meanwhile whatever the gateway sends is read and dropped, so its
        hanging up ends the behaviour at once; after ``seconds`` the
        connection is reset.
        """

        async def behaviour(ex: Exchange) -> None:
            await ex.drain_body()
            ex.writer.write(response)
            await ex.writer.drain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    while await ex.reader.read(65536):
                        pass
                    raise ConnectionAbortedError("the gateway hung up")
            hang_up(ex)

        return behaviour


def hang_up(ex: Exchange) -> NoReturn:
    """Reset the connection (RST, not FIN) and end the exchange."""
    sock = ex.writer.get_extra_info("socket")
    if sock is not None and not ex.writer.transport.is_closing():
        with contextlib.suppress(OSError):  # the peer may have gone first
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ex.writer.transport.abort()
    raise ConnectionAbortedError("the behaviour hung up")
