"""Soak the gateway: hold mixed, partly abusive load for a while; watch memory and errors.

Not part of CI.  Two real ``authgateway serve`` processes run on loopback:

* "embedded", in front of its default embedded backend;
* "faulty", in front of tests/faulty_backend.py, which runs inside this
  process and misbehaves by path: it stops reading uploads, answers slowly
  or too late, resets connections before or in the middle of an answer,
  sends a 101 or other 1xx nobody asked for (and, for contrast, answers
  normally).

For --duration seconds a bounded number of concurrent clients, each
request bounded in time, exercise them:

* normal clients (aiohttp, pseudo auth ``?user.name=`` once, then the cookie
  jar): create, read, append, status, list and delete small and multi-MiB
  files in their home directories, every read checked by sha256;
* slow clients (raw sockets): uploads that send part of a declared
  Content-Length body and pause, or trickle all of it; request heads sent a
  byte at a time; downloads read very slowly to the end or given up on;
  clients that hang up mid-upload and mid-download, by RST and by FIN;
  idle keep-alive connections, before and between requests;
* clients of the faulty gateway, one route after another;
* bad input (raw sockets): garbage session cookies (non-UTF-8 bytes among
  them), bad user names, malformed queries and malformed requests;
* hostile clients (issue 16), from other loopback addresses (127.0.0.2;
  slowloris from 127.0.0.3) so that a per-address share of the connection
  limit (half of it: the soak doubles the limit) can tell them apart:
  slowloris (as many unfinished heads as the gateway's connection limit,
  one header line every few seconds), oversized unfinished heads, trees
  1000 levels deep made and deleted recursively, pathological list filters
  (``*a*a*a*a*a*a*a*a*a*a*b``, 1,500 nested braces), big listings requested
  by clients that never read, malformed Alluxio option bodies, ``;`` path
  parameters against a route's ``users`` rule, and CSRF-style browser POSTs.

Every few seconds it samples each gateway's VmRSS and open file
descriptors (VmHWM at the end) and prints a row; at the end it counts the
answers per status class per scenario.  A 502/504 from the faulty route is
the backend's fault and expected; any other 5xx, a request that got no
outcome in time, an exception, a wrong status for a normal request, a read
whose sha256 differs, a traceback in a gateway's log, a gateway that died
or stopped answering, and a partial upload left behind are failures.

The verdicts: flat memory (no gateway's RSS grew by more than
--max-growth-mib: the largest sample of the last quarter of the run against
the largest of the first), no 5xx caused by clients, the normal clients'
p99 latency (time to the answer's head of their requests without a body)
under --max-p99-ms, no event loop stall past 50 ms (the gateways log them:
gateway.loopwatch), no gateway that died, and a restart of the embedded
gateway on its data after the run that succeeds.  Each hostile scenario's
outcome is reported on a line of its own.

Exit status: 0 when every verdict passed; 1 otherwise; 2 when the gateways
would not start.
Run through scripts/soak, which installs what is missing.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUICK_SECONDS = 60


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    run = parser.add_argument_group("the run")
    length = run.add_mutually_exclusive_group()
    length.add_argument("--duration", type=float, default=600.0, help="seconds of load (default %(default)g)")
    length.add_argument("--quick", action="store_true", help=f"the same with {QUICK_SECONDS} seconds of load")
    run.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples (default %(default)g)")
    run.add_argument(
        "--max-growth-mib", type=float, default=32.0,
        help="RSS growth allowed from the first to the last quarter of the run (default %(default)g)",
    )
    run.add_argument("--seed", type=int, default=6, help="seed of every random choice (default %(default)s)")
    run.add_argument("--workdir", type=Path, help="keep configurations, logs and data here (default: a temp dir, "
                     "removed unless something failed)")
    load = parser.add_argument_group("the load (all concurrent)")
    load.add_argument("--clients", type=int, default=4, help="normal clients (default %(default)s)")
    load.add_argument("--slow-clients", type=int, default=4, help="slow and hanging-up clients (default %(default)s)")
    load.add_argument("--idle-connections", type=int, default=16, help="idle keep-alive connections "
                      "(default %(default)s)")
    load.add_argument("--faulty-clients", type=int, default=3, help="clients of the faulty gateway "
                      "(default %(default)s)")
    load.add_argument("--bad-clients", type=int, default=2, help="clients sending bad input (default %(default)s)")
    load.add_argument("--large-mib", type=int, default=8, help="size of the largest files (default %(default)s)")
    load.add_argument("--slow-seconds", type=float, default=15.0,
                      help="how long a slow client pauses, trickles or reads (default %(default)g)")
    load.add_argument("--idle-seconds", type=float, default=20.0, help="how long an idle connection stays quiet "
                      "(default %(default)g)")
    load.add_argument("--request-timeout", type=float, default=60.0,
                      help="seconds a normal request may take before it counts as failed (default %(default)g)")
    hostile = parser.add_argument_group("hostile clients (issue 16; beside the normal load, from 127.0.0.2)")
    hostile.add_argument("--no-hostile", dest="hostile", action="store_false", help="leave them out")
    hostile.add_argument("--slowloris", type=int, default=0,
                         help="unfinished heads held at once; 0 (the default): the embedded gateway's whole "
                         "server.max_connections, which one address must not be able to take")
    hostile.add_argument("--slowloris-interval", type=float, default=5.0,
                         help="seconds between the header lines of an unfinished head (default %(default)g)")
    hostile.add_argument("--head-bound", type=float, default=65.0,
                         help="seconds within which the gateway must close an unfinished head (nginx's "
                         "client_header_timeout is 60; default %(default)g)")
    hostile.add_argument("--big-heads", type=int, default=8,
                         help="connections holding an unfinished head of 100 lines of 60 KB (default %(default)s)")
    hostile.add_argument("--max-head-mib", type=float, default=1.0,
                         help="RSS one such connection may add (default %(default)g; nginx buffers 4 x 8 KiB)")
    hostile.add_argument("--deep-levels", type=int, default=1000,
                         help="components of the deep path made with one mkdirs (default %(default)s)")
    hostile.add_argument("--wide-entries", type=int, default=20000,
                         help="entries of the directory the non-reading clients list (default %(default)s)")
    hostile.add_argument("--non-readers", type=int, default=6,
                         help="clients that ask for that listing and never read (default %(default)s)")
    hostile.add_argument("--max-p99-ms", type=float, default=50.0,
                         help="bound on the normal clients' p99 latency (default %(default)g)")
    gw = parser.add_argument_group(
        "gateway settings",
        "Timeouts go to the faulty gateway, --backend-connections to both; a setting whose key this "
        "tree's gateway/config.py lacks is skipped with a note.",
    )
    gw.add_argument("--connect-timeout", type=float, default=2.0, help="backend.connect_timeout (default %(default)g)")
    gw.add_argument("--read-timeout", type=float, default=3.0, help="backend.read_timeout (default %(default)g)")
    gw.add_argument("--send-timeout", type=float, default=3.0, help="backend.send_timeout (default %(default)g)")
    gw.add_argument("--pool-timeout", type=float, default=5.0, help="backend.pool_timeout (default %(default)g)")
    gw.add_argument("--backend-connections", type=int, default=32,
                    help="backend.max_connections (default %(default)s)")
    gw.add_argument("--max-client-connections", type=int, default=0,
                    help="server.max_connections; 0 (the default) sets twice as many as the soak opens at once, "
                    "so connections the gateway loses count of end in 503s")
    gw.add_argument("--shutdown-timeout", type=float, default=5.0,
                    help="server.shutdown_timeout; the soak stops each gateway with SIGTERM at the end and kills "
                    "it after 10 s (default %(default)g)")
    gw.add_argument(
        "--set", action="append", default=[], metavar="[GATEWAY:]SECTION.KEY=VALUE",
        help="any other setting, for both gateways or one (embedded: or faulty:); VALUE is read as TOML, "
        "else as a string. Repeatable, e.g. --set faulty:backend.read_timeout=10 --set server.access_log=false",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = float(QUICK_SECONDS)
    overrides = []
    for item in args.set:
        match = re.fullmatch(r"(?:(embedded|faulty):)?([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)+)=(.*)", item, re.S)
        if match is None:
            parser.error(f"--set {item!r}: expected [embedded:|faulty:]SECTION.KEY=VALUE")
        overrides.append(match.groups())
    args.set = overrides  # (gateway or None, section.key, value's text)
    if args.large_mib < 1:
        parser.error("--large-mib must be at least 1")
    return args


if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    parse_args()  # prints the help and exits before anything outside the standard library is needed

import asyncio  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tomllib  # noqa: E402
import typing  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from collections.abc import AsyncIterator, Awaitable, Callable, Container, Iterator, Mapping  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import aiohttp  # noqa: E402

from tests.conftest import GatewayProcess, deep_merge, process_tree, start_gateway, tree_memory  # noqa: E402
from tests.faulty_backend import Behaviour, FaultyBackend, behaviours  # noqa: E402

T = TypeVar("T")
MiB = 2**20
CHUNK = 64 * 1024
ANY_ANSWER = range(200, 500)  # bad input may be refused or, harmlessly, served: anything but 5xx
REFUSED = range(400, 500)
GATEWAYS = ("embedded", "faulty")
FAULTY_USER = "soakf"
HOSTILE = "127.0.0.2"  # hostile clients connect from here, every other client from 127.0.0.1
# The slowloris client has an address of its own: the gateway holds it to its share of the connections
# (server.max_connections_per_peer), which would otherwise also refuse the other hostile scenarios.
SLOWLORIS = "127.0.0.3"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
# The embedded gateway's routes: the defaults, and one that admits hdfs alone (for ';' path parameters).
ROUTES = [
    {"prefix": "/restricted/", "dialect": "hoop", "users": ["hdfs"]},
    {"prefix": "/webhdfs/v1/", "dialect": "webhdfs"},
    {"prefix": "/api/v1/", "dialect": "alluxio"},
    {"prefix": "/", "dialect": "hoop"},
]
LOOP_STALL_BOUND_MS = 50  # tests/conftest.py's LOOP_STALL_BOUND
CSRF_BODY = b"what a forged browser request must not change\n"
ALLUXIO_BODIES = (
    ("[ x 50,000", b"[" * 50000),
    ('{"mode":{"ownerBits":[]}}', b'{"mode":{"ownerBits":[]}}'),
    ('{"mode":{"groupBits":{}}}', b'{"mode":{"groupBits":{}}}'),
    ("not JSON", b"{mode: 7"),
)


# -- the tally ----------------------------------------------------------------------

COLUMNS = ("1xx", "2xx", "3xx", "4xx", "5xx backend", "5xx other", "closed", "cut", "hung up", "failed")


class Tally:
    """Outcomes per scenario: status classes, connection fates, failures with their reasons."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.reasons: Counter[tuple[str, str]] = Counter()
        self.events = 0

    def outcome(self, scenario: str, column: str) -> None:
        self.counts[scenario][column] += 1
        self.events += 1

    def fail(self, scenario: str, why: str) -> None:
        """A failure on top of an outcome already counted."""
        self.counts[scenario]["failed"] += 1
        self.reasons[(scenario, why)] += 1

    def error(self, scenario: str, why: str) -> None:
        """A failure that is the whole outcome (an exception, no answer in time)."""
        self.events += 1
        self.fail(scenario, why)

    def status(
        self, scenario: str, status: int, want: Container[int], backend_fault: Container[int] = (), what: str = ""
    ) -> bool:
        """Count an answer; ``True`` when it is one of ``want`` or an expected 5xx of the backend's.

        ``what``, if given, names the request in the reason of a failure.
        """
        of = f" ({what})" if what else ""
        if 500 <= status <= 599:
            if status in backend_fault:
                self.outcome(scenario, "5xx backend")
                return True
            self.outcome(scenario, "5xx other")
            self.fail(scenario, f"{status}, not the backend's fault{of}")
            return False
        if 100 <= status <= 499:
            self.outcome(scenario, f"{status // 100}xx")
        else:
            self.events += 1
        if status not in want:
            self.fail(scenario, f"status {status}{of}")
            return False
        return True

    @property
    def failures(self) -> int:
        return sum(self.reasons.values())


def describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:100]}" if text else type(exc).__name__


@dataclass(frozen=True)
class Bad:
    """A request with something wrong in it."""

    scenario: str
    label: str
    data: bytes
    want: Container[int]  # what it may be answered (any 5xx is a failure anyway)


# -- raw connections ---------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated one keeps its last value


class RawConnection:
    """One client connection on a raw socket, for what aiohttp's client will not do."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, *, rcvbuf: int = 0, source: str = "") -> RawConnection:
        """Connect; ``rcvbuf`` shrinks the receive buffers (kernel and ours), to read slowly for real.

        ``source``: the local address to connect from (another loopback address for hostile clients).
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if source:
                sock.bind((source, 0))
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock, limit=rcvbuf or 2**16)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def head(self) -> Head | None:
        """The next answer's status and headers; ``None`` when the connection closed first."""
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP status line: {lines[0][:80]!r}")
        headers = {n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in lines[1:] if line)}
        return Head(int(parts[1]), headers)

    async def body(
        self, head: Head, *, method: str = "GET", sink: Callable[[bytes], object] | None = None,
        rate: float = 0.0, piece: int = CHUNK, until: float | None = None,
    ) -> tuple[int, bool]:
        """Read the answer's body into ``sink``: (bytes read, complete).

        ``rate`` bounds the bytes per second; at loop time ``until``, or when
        the connection breaks, reading stops and the body is incomplete.
        """
        got = 0

        async def take(n: int) -> bool:
            nonlocal got
            while n > 0:
                data = await self.reader.read(min(n, piece))
                if not data:
                    return False
                got += len(data)
                n -= len(data)
                if sink is not None:
                    sink(data)
                if rate:
                    await asyncio.sleep(len(data) / rate)
            return True

        async def framed() -> bool:
            if method == "HEAD" or head.status in (204, 304) or 100 <= head.status < 200:
                return True
            if "chunked" in head.headers.get("transfer-encoding", "").lower():
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        while await self.reader.readuntil(b"\r\n") != b"\r\n":
                            pass
                        return True
                    if not await take(size):
                        return False
                    await self.reader.readexactly(2)
            if "content-length" in head.headers:
                return await take(int(head.headers["content-length"]))
            await take(2**62)  # until the connection closes, which ends this body
            return True

        try:
            async with asyncio.timeout_at(until):
                complete = await framed()
            return got, complete
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return got, False

    async def exchange(self, request: bytes) -> tuple[Head | None, bytes]:
        """Send a whole request; its answer's head and body (``None`` when closed without one)."""
        with contextlib.suppress(ConnectionError):  # refused before it was all sent: the answer may be there
            await self.send(request)
        head = await self.head()
        if head is None:
            return None, b""
        parts: list[bytes] = []
        await self.body(head, sink=parts.append)
        return head, b"".join(parts)

    async def upload(self, head: bytes, chunks: AsyncIterator[bytes]) -> Head | None:
        """Send a request while watching for an answer, which may come before the body is all sent."""
        answer = asyncio.ensure_future(self.head())

        async def push() -> None:
            with contextlib.suppress(ConnectionError):
                await self.send(head)
                async for chunk in chunks:
                    await self.send(chunk)

        pusher = asyncio.ensure_future(push())
        try:
            await asyncio.wait({answer, pusher}, return_when=asyncio.FIRST_COMPLETED)
            return await answer
        finally:
            pusher.cancel()
            answer.cancel()

    def reset(self) -> None:
        """Hang up with a RST."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    def fin(self) -> None:
        """Half-close: a FIN, the read side stays open."""
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.write_eof()

    def close(self) -> None:
        self.writer.transport.abort()


def request(method: str, target: str | bytes, port: int, *headers: str | bytes, body: bytes = b"",
            close: bool = True) -> bytes:
    lines = [method.encode() + b" " + (target.encode() if isinstance(target, str) else target) + b" HTTP/1.1",
             f"Host: 127.0.0.1:{port}".encode()]
    lines += [h.encode("latin-1") if isinstance(h, str) else h for h in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}".encode())
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# -- content ---------------------------------------------------------------------------


def blocks(seed: int, size: int) -> Iterator[bytes]:
    """``size`` pseudo-random bytes, the same for the same seed."""
    rng = random.Random(seed)
    while size > 0:
        n = min(CHUNK, size)
        yield rng.randbytes(n)
        size -= n


async def stream(seed: int, size: int, hasher: hashlib._Hash) -> AsyncIterator[bytes]:
    for block in blocks(seed, size):
        hasher.update(block)
        yield block


async def paced(data: bytes, *, first: int, pause: float, pieces: int, over: float) -> AsyncIterator[bytes]:
    """``data[:first]``, a pause, then the rest in ``pieces`` spread over ``over`` seconds."""
    if first:
        yield data[:first]
        await asyncio.sleep(pause)
    rest = data[first:]
    step = max(1, -(-len(rest) // max(1, pieces)))
    for start in range(0, len(rest), step):
        yield rest[start : start + step]
        await asyncio.sleep(over / max(1, pieces))


# -- the gateways ------------------------------------------------------------------------


def known_keys() -> set[str]:
    """``section.key`` for every key this tree's configuration has (it grows while issue 6 is fixed)."""
    from gateway.config import Config

    hints = typing.get_type_hints(Config)
    keys: set[str] = set()
    for section in dataclasses.fields(Config):
        tp = hints[section.name]
        if dataclasses.is_dataclass(tp):
            keys |= {f"{section.name}.{f.name}" for f in dataclasses.fields(tp)}
    return keys


# (option, key, gateways it is set on)
KNOBS = (
    ("connect_timeout", "backend.connect_timeout", ("faulty",)),
    ("read_timeout", "backend.read_timeout", ("faulty",)),
    ("send_timeout", "backend.send_timeout", ("faulty",)),
    ("pool_timeout", "backend.pool_timeout", ("faulty",)),
    ("backend_connections", "backend.max_connections", GATEWAYS),
    ("max_client_connections", "server.max_connections", GATEWAYS),
    ("shutdown_timeout", "server.shutdown_timeout", GATEWAYS),
)


PER_PEER = "server.max_connections_per_peer"


def client_connections(args: argparse.Namespace, gateway: str) -> int:
    """Twice as many connections as the soak opens to ``gateway`` at once, give or take."""
    if args.max_client_connections:
        return int(args.max_client_connections)
    peak: int
    if gateway == "faulty":
        peak = 2 * args.faulty_clients + 2
    else:  # aiohttp clients may hold a second connection; slow clients verify through one more
        peak = 2 * args.clients + 2 * args.slow_clients + args.idle_connections + args.bad_clients + 2
    return 2 * peak + 16


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    *path, key = dotted.split(".")
    tree: dict[str, Any] = {key: value}
    for part in reversed(path):
        tree = {part: tree}
    return tree


def settings(args: argparse.Namespace, known: set[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The settings of each gateway beyond start_gateway's defaults, and notes on what was skipped."""
    out: dict[str, dict[str, Any]] = {name: {} for name in GATEWAYS}
    notes = []
    for option, key, targets in KNOBS:
        if key not in known:
            notes.append(f"--{option.replace('_', '-')}: this gateway has no {key}; not set")
            continue
        for name in targets:
            value = client_connections(args, name) if option == "max_client_connections" else getattr(args, option)
            out[name] = deep_merge(out[name], _nest(key, value))
            if option == "max_client_connections" and PER_PEER in known and args.hostile and name == "embedded":
                # Twice the places, half of them at most for one address: the normal clients, all from
                # 127.0.0.1, fit in their half; slowloris (an address of its own) asks for them all and may
                # hold only its half, the other hostile clients (127.0.0.2) their own share.
                out[name] = deep_merge(out[name], _nest(key, 2 * value))
                out[name] = deep_merge(out[name], _nest(PER_PEER, value))
    for target, key, text in args.set:
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        for name in (target,) if target else GATEWAYS:
            out[name] = deep_merge(out[name], _nest(key, value))
    return out, notes


def setting(tables: Mapping[str, Any], dotted: str) -> Any:
    """The value of ``section.key`` in a gateway's settings, or the configuration's default."""
    from gateway.config import Config

    section, key = dotted.split(".")
    return tables.get(section, {}).get(key, getattr(getattr(Config(), section), key, None))


@dataclass(frozen=True)
class Patience:
    """How long the faulty gateway and its backend wait for each other."""

    read: float  # backend.read_timeout: the backend answers too late after twice that
    answer_within: float  # the gateway must have answered by then: its timeouts, plus slack
    hold: float  # the faulty backend lets go of a connection after that, long after the gateway should have

    @classmethod
    def of(cls, faulty: Mapping[str, Any]) -> Patience:
        timeouts = [setting(faulty, f"backend.{k}") for k in ("read_timeout", "send_timeout", "connect_timeout")]
        read, send, connect = (float(t) if t is not None else 0.0 for t in timeouts)
        within = max(read, send) + connect + 5
        return cls(read, within, 2 * within + 5)


SLOW_BODY = bytes(range(256)) * 1024  # 256 KiB
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def fault_routes(patience: Patience) -> Behaviour:
    """The faulty backend's behaviour, chosen by the first path segment."""
    read, hold = patience.read, patience.hold
    return behaviours.route({
        "echo": behaviours.echo,
        "stall": behaviours.stall_for(hold),  # stops reading an upload
        "slow-ok": behaviours.slow(read / 2, SLOW_BODY, pieces=8, interval=read / 4),
        "slow-late": behaviours.slow(read * 2, b"late"),
        "reset": behaviours.reset(),
        "cut": behaviours.reset(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"c" * 262144),
        "switch": behaviours.raw_then_hold(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", hold),
        "processing": behaviours.raw_then_hold(b"HTTP/1.1 102 Processing\r\n\r\n", hold),
        "hints-then-silence": behaviours.raw_then_hold(b"HTTP/1.1 103 Early Hints\r\n\r\n", hold),
        "early-hints": behaviours.raw(b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n" + OK),
        "continue": behaviours.raw(b"HTTP/1.1 100 Continue\r\n\r\n" + OK),
    })


# -- memory ------------------------------------------------------------------------------


def vm(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM in MiB of ``pid`` and its worker processes, summed (empty once it has exited).

    The workers hold the connections and their buffers: the supervisor's own figures alone would hide them.
    """
    out: dict[str, float] = {}
    for member in process_tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{member}/status") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    out[name] = out.get(name, 0.0) + int(value.split()[0]) / 1024
    return out


def open_fds(pid: int) -> int:
    """Open file descriptors of ``pid`` and its workers; -1 once it has exited."""
    total = -1
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            total = max(total, 0) + len(os.listdir(f"/proc/{member}/fd"))
    return total


@dataclass
class Sample:
    t: float
    rss: dict[str, float]
    fds: dict[str, int]
    own_rss: float
    rate: float  # outcomes per second since the previous sample
    failures: int


def growth(values: Sequence[float]) -> float | None:
    """Max of the last quarter minus max of the first; ``None`` with too few samples to tell."""
    if len(values) < 4:
        return None
    q = len(values) // 4
    return max(values[-q:]) - max(values[:q])


# -- the soak ------------------------------------------------------------------------------


@dataclass
class Soak:
    args: argparse.Namespace
    gateways: dict[str, GatewayProcess]
    backend: FaultyBackend
    patience: Patience
    tally: Tally = field(default_factory=Tally)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    cookie: str = ""  # hdfs's session cookie on the embedded gateway, "name=value"
    latency: list[float] = field(default_factory=list)  # seconds to the head of normal bodiless requests
    files: dict[str, tuple[int, str]] = field(default_factory=dict)  # read-only files: size, sha256
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # each gateway's, beyond the defaults
    notes: dict[str, dict[str, str]] = field(default_factory=dict)  # per hostile scenario: figures by kind
    note_took: dict[tuple[str, str], float] = field(default_factory=dict)  # how long each kept figure's took

    def port(self, gateway: str) -> int:
        return self.gateways[gateway].port

    def url(self, gateway: str, target: str) -> str:
        return f"http://127.0.0.1:{self.port(gateway)}{target}"

    def rng(self, kind: str, index: int) -> random.Random:
        return random.Random(f"{self.args.seed}-{kind}-{index}")

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # unsafe: keep cookies from an IP address
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self.args.request_timeout),
            auto_decompress=False,
        )

    async def attempt(self, scenario: str, action: Awaitable[T], timeout: float, what: str = "") -> T | None:
        """Run one bounded action; an exception or no outcome in ``timeout`` is a failure of ``scenario``."""
        of = f" ({what})" if what else ""
        try:
            async with asyncio.timeout(timeout):
                return await action
        except TimeoutError:
            self.tally.error(scenario, f"no outcome within {timeout:g} s{of}")
        except Exception as exc:  # a soak reports whatever went wrong, and goes on
            self.tally.error(scenario, describe(exc) + of)
        await asyncio.sleep(0.2)  # a failure that comes at once must not spin
        return None

    async def pause(self, seconds: float) -> bool:
        """Sleep, but wake when the run stops; ``True`` if it has."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return self.stop.is_set()

    async def forever(self, body: Callable[[], Awaitable[None]]) -> None:
        """Repeat ``body`` until the run stops; a bug in the soak itself is counted, not fatal."""
        while not self.stop.is_set():
            try:
                await body()
            except Exception as exc:
                self.tally.error("soak itself", describe(exc))
                await asyncio.sleep(1)

    # -- set-up ---------------------------------------------------------------------

    async def set_up(self, admin: aiohttp.ClientSession) -> None:
        """Log hdfs in, make the users' homes and the files that slow readers read."""
        conn = await RawConnection.open(self.port("embedded"))
        try:
            head, _ = await conn.exchange(request("GET", "/?op=homedir&user.name=hdfs", self.port("embedded")))
        finally:
            conn.close()
        cookie = head.headers.get("set-cookie", "") if head else ""
        if head is None or head.status != 200 or "=" not in cookie:
            raise RuntimeError(f"no session cookie for hdfs: {head}")
        self.cookie = cookie.split(";", 1)[0]

        async def expect(method: str, target: str, status: int, data: Any = None) -> None:
            async with admin.request(method, self.url("embedded", target), data=data,
                                     headers={"Content-Type": "application/octet-stream"}) as r:
                body = await r.read()
                if r.status != status:
                    raise RuntimeError(f"set-up: {method} {target}: {r.status} {body[:200]!r}")

        await expect("GET", "/?op=homedir&user.name=hdfs", 200)
        for i in range(self.args.clients):
            await expect("POST", f"/user/soak{i}?op=mkdirs", 200)
            await expect("PUT", f"/user/soak{i}?op=setowner&owner=soak{i}&group=soak{i}", 200)
        await expect("POST", "/soak?op=mkdirs", 200)
        for name, size in (("big.bin", self.args.large_mib * MiB), ("medium.bin", MiB)):
            h = hashlib.sha256()
            await expect("POST", f"/soak/{name}?op=create&overwrite=true", 201, stream(len(name), size, h))
            self.files[f"/soak/{name}"] = (size, h.hexdigest())

    async def sha256(self, admin: aiohttp.ClientSession, target: str) -> tuple[int, str]:
        h, n = hashlib.sha256(), 0
        async with admin.get(self.url("embedded", target)) as r:
            if r.status != 200:
                raise RuntimeError(f"GET {target}: {r.status}")
            async for chunk in r.content.iter_chunked(CHUNK):
                h.update(chunk)
                n += len(chunk)
        return n, h.hexdigest()

    # -- normal clients -------------------------------------------------------------

    def timed(self, started: float) -> None:
        """A normal client's request without a body got its answer's head (asked at ``started``)."""
        if not self.stop.is_set():
            self.latency.append(time.monotonic() - started)

    async def normal_client(self, index: int) -> None:
        rng, user = self.rng("normal", index), f"soak{index}"
        home = f"/user/{user}"
        files: dict[str, tuple[int, hashlib._Hash]] = {}  # what each file must hold
        t = self.args.request_timeout
        status = self.tally.status

        async def login(http: aiohttp.ClientSession) -> bool:
            started = time.monotonic()
            async with http.get(self.url("embedded", f"/?op=homedir&user.name={user}")) as r:
                self.timed(started)
                await r.read()
                if not status("normal/login", r.status, {200}):
                    return False
            if not any(c.key for c in http.cookie_jar):
                self.tally.fail("normal/login", "no session cookie")
                return False
            return True

        async def create(http: aiohttp.ClientSession, path: str) -> None:
            large = rng.random() < 0.15
            size = rng.randint(MiB, self.args.large_mib * MiB) if large else rng.randint(0, 256 * 1024)
            headers = {"Content-Type": "application/octet-stream"}
            if rng.random() < 0.5:
                headers["Content-Length"] = str(size)  # else chunked
            h = hashlib.sha256()
            files.pop(path, None)
            async with http.post(self.url("embedded", f"{path}?op=create&overwrite=true"), headers=headers,
                                 data=stream(rng.getrandbits(32), size, h), expect100=rng.random() < 0.3) as r:
                await r.read()
                if status("normal/create", r.status, {201}):
                    files[path] = (size, h)

        async def read(http: aiohttp.ClientSession, path: str) -> None:
            size, want = files[path]
            h, n = hashlib.sha256(), 0
            started = time.monotonic()
            async with http.get(self.url("embedded", path)) as r:
                self.timed(started)
                ok = status("normal/read", r.status, {200})
                async for chunk in r.content.iter_chunked(CHUNK):
                    h.update(chunk)
                    n += len(chunk)
            if ok and (n, h.hexdigest()) != (size, want.hexdigest()):
                self.tally.fail("normal/read", "content differs from what was written")

        async def append(http: aiohttp.ClientSession, path: str) -> None:
            size, h = files.pop(path)
            data = rng.randbytes(rng.randint(1, 64 * 1024))
            async with http.put(self.url("embedded", f"{path}?op=append"), data=data,
                                headers={"Content-Type": "application/octet-stream"}) as r:
                await r.read()
                if status("normal/append", r.status, {200}):
                    h = h.copy()
                    h.update(data)
                    files[path] = (size + len(data), h)

        async def stat(http: aiohttp.ClientSession, path: str) -> None:
            started = time.monotonic()
            async with http.get(self.url("embedded", f"{path}?op=status")) as r:
                self.timed(started)
                body = await r.read()
                if status("normal/status", r.status, {200}) and json.loads(body)["len"] != files[path][0]:
                    self.tally.fail("normal/status", "wrong length")

        async def listing(http: aiohttp.ClientSession) -> None:
            started = time.monotonic()
            async with http.get(self.url("embedded", f"{home}?op=list")) as r:
                self.timed(started)
                body = await r.read()
                if status("normal/list", r.status, {200}):
                    names = {entry["path"].rsplit("/", 1)[-1] for entry in json.loads(body)}
                    if not {p.rsplit("/", 1)[-1] for p in files} <= names:
                        self.tally.fail("normal/list", "a file is missing from the listing")

        async def delete(http: aiohttp.ClientSession, path: str) -> None:
            files.pop(path, None)
            started = time.monotonic()
            async with http.delete(self.url("embedded", f"{path}?op=delete")) as r:
                self.timed(started)
                body = await r.read()
                if status("normal/delete", r.status, {200}) and json.loads(body) != {"delete": True}:
                    self.tally.fail("normal/delete", f"answer {body[:80]!r}")

        async def missing(http: aiohttp.ClientSession) -> None:
            started = time.monotonic()
            async with http.get(self.url("embedded", f"{home}/never-{rng.getrandbits(32)}.bin")) as r:
                self.timed(started)
                await r.read()
                status("normal/missing", r.status, {404})

        async def session() -> None:
            async with self.session() as http:  # a fresh cookie jar now and then
                if not await self.attempt("normal/login", login(http), t):
                    await asyncio.sleep(1)
                    return
                for _ in range(rng.randint(10, 40)):
                    if self.stop.is_set():
                        return
                    path = f"{home}/f{rng.randrange(4)}.bin"
                    pick = rng.random()
                    if path not in files or pick < 0.25:
                        await self.attempt("normal/create", create(http, path), t)
                    elif pick < 0.5:
                        await self.attempt("normal/read", read(http, path), t)
                    elif pick < 0.65:
                        await self.attempt("normal/append", append(http, path), t)
                        if path in files:
                            await self.attempt("normal/read", read(http, path), t)
                    elif pick < 0.75:
                        await self.attempt("normal/status", stat(http, path), t)
                    elif pick < 0.85:
                        await self.attempt("normal/list", listing(http), t)
                    elif pick < 0.95:
                        await self.attempt("normal/delete", delete(http, path), t)
                    else:
                        await self.attempt("normal/missing", missing(http), t)

        await self.forever(session)

    # -- slow clients ------------------------------------------------------------------

    def _upload_head(self, target: str, size: int) -> bytes:
        return request("POST", target, self.port("embedded"), f"Cookie: {self.cookie}",
                       "Content-Type: application/octet-stream", f"Content-Length: {size}", close=False)

    async def slow_client(self, index: int, admin: aiohttp.ClientSession) -> None:
        rng, slow = self.rng("slow", index), self.args.slow_seconds
        port = self.port("embedded")
        status = self.tally.status
        mine = f"/soak/slow{index}.bin"

        async def verify_upload(scenario: str, head: Head | None, conn: RawConnection, data: bytes) -> None:
            if head is None:
                self.tally.outcome(scenario, "closed")
                return
            # 4xx: the gateway may refuse a client this slow (408); only a 5xx would be its fault.
            if status(scenario, head.status, {201} | set(REFUSED)) and head.status == 201:
                await conn.body(head)
                if await self.sha256(admin, mine) != (len(data), hashlib.sha256(data).hexdigest()):
                    self.tally.fail(scenario, "stored content differs from the upload")

        async def upload_pause() -> None:
            data = rng.randbytes(MiB)
            conn = await RawConnection.open(port)
            try:
                head = await conn.upload(self._upload_head(f"{mine}?op=create&overwrite=true", len(data)),
                                         paced(data, first=CHUNK, pause=slow / 2, pieces=16, over=slow / 2))
                await verify_upload("slow/upload-pause", head, conn, data)
            finally:
                conn.close()

        async def upload_trickle() -> None:
            data = rng.randbytes(256 * 1024)
            conn = await RawConnection.open(port)
            try:
                head = await conn.upload(self._upload_head(f"{mine}?op=create&overwrite=true", len(data)),
                                         paced(data, first=0, pause=0, pieces=256, over=slow))
                await verify_upload("slow/upload-trickle", head, conn, data)
            finally:
                conn.close()

        async def head_trickle() -> None:
            whole = request("GET", "/soak/medium.bin?op=status", port, f"Cookie: {self.cookie}")
            conn = await RawConnection.open(port)
            try:
                answer = await conn.upload(b"", paced(whole, first=0, pause=0, pieces=len(whole), over=slow))
                if answer is None:
                    self.tally.outcome("slow/head-trickle", "closed")
                else:
                    status("slow/head-trickle", answer.status, {200} | set(REFUSED))
            finally:
                conn.close()

        async def download(scenario: str, target: str, *, rate: float, seconds: float) -> None:
            size, want = self.files[target]
            conn = await RawConnection.open(port, rcvbuf=4096)
            try:
                await conn.send(request("GET", target, port, f"Cookie: {self.cookie}"))
                head = await conn.head()
                if head is None:
                    self.tally.error(scenario, "closed without an answer")
                    return
                if not status(scenario, head.status, {200}):
                    return
                h = hashlib.sha256()
                until = asyncio.get_running_loop().time() + seconds
                n, complete = await conn.body(head, sink=h.update, rate=rate, piece=4096, until=until)
                if complete and (n, h.hexdigest()) != (size, want):
                    self.tally.fail(scenario, "content differs")
                elif not complete:
                    gave_up = asyncio.get_running_loop().time() >= until
                    self.tally.outcome(scenario, "hung up" if gave_up else "cut")
            finally:
                conn.reset()

        async def download_complete() -> None:
            size = self.files["/soak/medium.bin"][0]
            await download("slow/download-complete", "/soak/medium.bin", rate=size / (slow * 0.8), seconds=slow * 2)

        async def download_give_up() -> None:
            await download("slow/download-give-up", "/soak/big.bin", rate=8192, seconds=slow)

        async def hang_up_upload(how: str) -> None:
            scenario = f"hang-up/upload-{how}"
            size = self.args.large_mib * MiB
            conn = await RawConnection.open(port)
            try:
                sent = asyncio.Event()

                async def chunks() -> AsyncIterator[bytes]:
                    for block in blocks(index, size // 4):
                        yield block
                    sent.set()
                    await asyncio.Event().wait()  # the rest never comes

                upload = asyncio.ensure_future(conn.upload(
                    self._upload_head(f"/soak/hang{index}.bin?op=create&overwrite=true", size), chunks()))
                waiter = asyncio.ensure_future(sent.wait())
                try:
                    await asyncio.wait({upload, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                if upload.done():  # answered before the hang-up
                    early = upload.result()
                    if early is None:
                        self.tally.outcome(scenario, "closed")
                    else:
                        status(scenario, early.status, REFUSED)
                    return
                if how == "rst":
                    upload.cancel()
                    conn.reset()
                    self.tally.outcome(scenario, "hung up")
                    return
                conn.fin()
                try:
                    async with asyncio.timeout(15):
                        answer = await upload
                except TimeoutError:
                    self.tally.error(scenario, "no answer or close within 15 s of the FIN")
                    return
                if answer is None:
                    self.tally.outcome(scenario, "closed")
                else:  # a truncated upload must never be a 201
                    status(scenario, answer.status, REFUSED)
            finally:
                conn.reset()

        async def hang_up_download(how: str) -> None:
            scenario = f"hang-up/download-{how}"
            conn = await RawConnection.open(port)
            try:
                await conn.send(request("GET", "/soak/big.bin", port, f"Cookie: {self.cookie}"))
                head = await conn.head()
                if head is None:
                    self.tally.error(scenario, "closed without an answer")
                    return
                if not status(scenario, head.status, {200}):
                    return
                await conn.reader.readexactly(256 * 1024)
                if how == "fin":
                    conn.fin()
                    with contextlib.suppress(ConnectionError):
                        async with asyncio.timeout(15):
                            while await conn.reader.read(CHUNK):
                                pass
                self.tally.outcome(scenario, "hung up")
            finally:
                conn.reset()

        scenarios: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("slow/upload-pause", upload_pause),
            ("slow/upload-trickle", upload_trickle),
            ("slow/head-trickle", head_trickle),
            ("slow/download-complete", download_complete),
            ("slow/download-give-up", download_give_up),
            ("hang-up/upload-rst", lambda: hang_up_upload("rst")),
            ("hang-up/upload-fin", lambda: hang_up_upload("fin")),
            ("hang-up/download-rst", lambda: hang_up_download("rst")),
            ("hang-up/download-fin", lambda: hang_up_download("fin")),
        ]

        turn = itertools.count(index * 2)  # in turn, so a short run sees each; clients start apart

        async def one() -> None:
            scenario, action = scenarios[next(turn) % len(scenarios)]
            await self.attempt(scenario, action(), 3 * slow + 45)

        await self.forever(one)

    async def idle_connection(self, index: int) -> None:
        rng, port = self.rng("idle", index), self.port("embedded")
        idle = self.args.idle_seconds
        ask = request("GET", "/?op=homedir", port, f"Cookie: {self.cookie}", close=False)

        async def connection() -> None:
            conn = await RawConnection.open(port)
            try:
                if rng.random() < 0.3 and await self.pause(rng.uniform(idle / 2, idle)):  # quiet before it asks
                    return
                while not self.stop.is_set():
                    await conn.send(ask)
                    head = await conn.head()
                    if head is None:  # the gateway closed it while it was idle: its right
                        self.tally.outcome("idle/keep-alive", "closed")
                        return
                    self.tally.status("idle/keep-alive", head.status, {200})
                    if not (await conn.body(head))[1] or head.headers.get("connection", "").lower() == "close":
                        return
                    if await self.pause(rng.uniform(idle / 2, idle)):
                        return
            finally:
                conn.close()

        async def one() -> None:
            await self.attempt("idle/keep-alive", connection(), self.args.duration + 60)

        await self.forever(one)

    # -- the faulty gateway ---------------------------------------------------------------

    async def faulty_client(self, index: int) -> None:
        rng, port = self.rng("faulty", index), self.port("faulty")
        within, patience = self.patience.answer_within, self.patience.hold + 10
        status = self.tally.status

        def in_time(scenario: str, started: float) -> None:
            took = time.monotonic() - started
            if took > within:
                self.tally.fail(scenario, f"answered after {took:.0f} s; its timeouts should have ended it by "
                                          f"{within:g} s")

        async def call(http: aiohttp.ClientSession, route: str, *, want: Container[int],
                       backend_fault: Container[int] = (), method: str = "GET", data: bytes | None = None,
                       cut_ok: bool = False, body: bytes | None = None) -> tuple[int, bytes] | None:
            scenario = f"faulty/{route}"
            started = time.monotonic()
            try:
                async with http.request(method, self.url("faulty", f"/{route}/{index}?op=open"), data=data) as r:
                    in_time(scenario, started)
                    ok = status(scenario, r.status, want, backend_fault)
                    if r.status == 101:
                        return None
                    try:
                        got = await r.read()
                    except aiohttp.ClientPayloadError:
                        self.tally.outcome(scenario, "cut")
                        if not cut_ok:
                            self.tally.fail(scenario, "answer cut short")
                        return None
                    if cut_ok and r.status == 200:
                        self.tally.fail(scenario, "a cut answer arrived whole")
                    if body is not None and r.status == 200 and got != body:
                        self.tally.fail(scenario, "the body differs from the backend's")
                    return (r.status, got) if ok else None
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # A broken backend is answered with 502/504, not a dropped client.
                self.tally.outcome(scenario, "closed")
                self.tally.fail(scenario, f"closed without an answer ({type(exc).__name__})")
                return None

        async def echo(http: aiohttp.ClientSession) -> None:
            data = rng.randbytes(rng.randint(0, 4096)) if rng.random() < 0.5 else None
            got = await call(http, "echo", want={200}, method="PUT" if data is not None else "GET", data=data)
            if got is None:
                return
            doc = json.loads(got[1])
            forwarded = {n.lower(): v for n, v in doc["headers"]}
            if f"user.name={FAULTY_USER}" not in doc["target"] or forwarded.get("x-forwarded-user") != FAULTY_USER:
                self.tally.fail("faulty/echo", "the identity did not reach the backend")
            if "hadoop.auth" in forwarded.get("cookie", ""):
                self.tally.fail("faulty/echo", "the session cookie reached the backend")
            if doc["length"] != len(data or b""):
                self.tally.fail("faulty/echo", "the body did not reach the backend whole")

        async def stop_reading() -> None:
            scenario = "faulty/stall"
            size = 64 * MiB
            conn = await RawConnection.open(port)

            async def chunks() -> AsyncIterator[bytes]:
                block = b"u" * CHUNK
                for _ in range(size // CHUNK):
                    yield block

            try:
                started = time.monotonic()
                head = await conn.upload(
                    request("PUT", f"/stall/{index}?op=create&user.name={FAULTY_USER}", port,
                            "Content-Type: application/octet-stream", f"Content-Length: {size}", close=False),
                    chunks())
                in_time(scenario, started)
                if head is None:
                    self.tally.outcome(scenario, "closed")
                    self.tally.fail(scenario, "closed without an answer")
                else:
                    status(scenario, head.status, (), {502, 504})
            finally:
                conn.reset()

        async def login(http: aiohttp.ClientSession) -> bool:
            async with http.get(self.url("faulty", f"/echo/login?user.name={FAULTY_USER}")) as r:
                await r.read()
                return status("faulty/login", r.status, {200})

        async def session() -> None:
            async with self.session() as http:
                if not await self.attempt("faulty/login", login(http), patience):
                    await asyncio.sleep(1)
                    return
                steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                    ("faulty/echo", lambda: echo(http)),
                    ("faulty/echo", lambda: echo(http)),
                    ("faulty/stall", stop_reading),
                    ("faulty/slow-ok", lambda: call(http, "slow-ok", want={200}, body=SLOW_BODY)),
                    ("faulty/slow-late", lambda: call(http, "slow-late", want=(), backend_fault={504})),
                    ("faulty/reset", lambda: call(http, "reset", want=(), backend_fault={502})),
                    ("faulty/cut", lambda: call(http, "cut", want={200}, backend_fault={502}, cut_ok=True)),
                    ("faulty/switch", lambda: call(http, "switch", want=(), backend_fault={502})),
                    ("faulty/processing", lambda: call(http, "processing", want=(), backend_fault={502})),
                    ("faulty/hints-then-silence",
                     lambda: call(http, "hints-then-silence", want=(), backend_fault={504})),
                    ("faulty/early-hints", lambda: call(http, "early-hints", want={200}, backend_fault={502})),
                    ("faulty/continue",
                     lambda: call(http, "continue", want={200}, backend_fault={502}, method="PUT", data=b"x" * 100)),
                ]
                for _ in range(rng.randint(10, 40)):
                    if self.stop.is_set():
                        return
                    scenario, action = steps[rng.randrange(len(steps))]
                    await self.attempt(scenario, action(), patience)

        await self.forever(session)

    # -- bad input ----------------------------------------------------------------------

    def bad_requests(self) -> list[Bad]:
        """Requests with something wrong in them, and what each may be answered."""
        port = self.port("embedded")
        name, _, value = self.cookie.partition("=")
        good = f"Cookie: {self.cookie}"

        def get(target: str | bytes, *headers: str | bytes, method: str = "GET", body: bytes = b"") -> bytes:
            return request(method, target, port, *headers, body=body)

        out: list[Bad] = []
        bare = value.strip('"')
        flipped = value.replace(bare, bare[:-1] + ("A" if bare[-1:] != "A" else "B"))  # a bad signature
        garbage: list[tuple[str, bytes]] = [
            ("non-UTF-8", b"\xff\xfe\x80\x81 not utf-8"), ("invalid UTF-8", b"\xc3\x28" * 100),
            ("separators", b"=;=;;"), ("open quote", b'"unterminated'), ("empty quotes", b'""'),
            ("random", os.urandom(24).hex().encode()), ("bad signature", flipped.encode()),
            ("truncated", value[: len(value) // 2].encode()),
            ("forged", b"u=hdfs&p=hdfs&t=simple&e=9999999999999&s=AAAAAAAAAAAAAAAAAAAA"), ("60 KB", b"a" * 60000),
        ]
        for label, junk in garbage:
            cookie = name.encode() + b"=" + junk
            out.append(Bad("bad/cookie", f"{label} cookie", get("/?op=homedir", b"Cookie: " + cookie), {401}))
            out.append(Bad("bad/cookie", f"{label} cookie and user.name",
                           get("/?op=homedir&user.name=hdfs", b"Cookie: " + cookie), {200}))
            out.append(Bad("bad/cookie", f"{label} cookie among others",
                           get("/?op=homedir", b"Cookie: x=1, " + cookie + b"; y=2"), {401}))
        # Control characters are not allowed in a header at all (RFC 9110 5.5): the parser's 400 is right.
        out.append(Bad("bad/cookie", "control characters", get("/?op=homedir", b"Cookie: hadoop.auth=\x01\x02\x7f"),
                       {400, 401}))
        out.append(Bad("bad/cookie", "a bad copy before the good one",
                       get("/?op=homedir", b"Cookie: " + name.encode() + b"=\xff; " + self.cookie.encode()), {200}))
        out.append(Bad("bad/cookie", "non-UTF-8 header", get("/?op=homedir", b"Cookie: \xff\xfe\xfd"), {401}))
        out.append(Bad("bad/cookie", "two Cookie lines", get("/?op=homedir", good, good), {200}))
        for user in ["", "%00", "%ff%fe", "..%2F..%2Fetc", "a%20b", "x" * 300, "%0d%0aX-Injected:%201", "%C3%BC",
                     "hdfs&user.name=root", "1abc", "-rf", "a" * 30000, "hdfs%00", "%", "%zz", "root"]:
            label = f"user.name={user[:20]}" + ("..." if len(user) > 20 else "")
            out.append(Bad("bad/user", label, get(f"/?op=homedir&user.name={user}"), ANY_ANSWER))
            out.append(Bad("bad/user", label + " doas", get(f"/soak?op=list&user.name={user}&doas=hdfs"), ANY_ANSWER))
        for target in [
            "/?op=%zz", "/?%", "/?op=list&&&==&", "/?op=", "/?op=LIST", "/?op=bogus", "/?=", "/soak?op=list&filter=[",
            "/soak?op=list&filter={a,{b", "/soak/big.bin?op=open&offset=-5", "/soak/big.bin?op=open&offset=abc",
            "/soak/big.bin?op=open&offset=99999999999999999999999", "/soak/big.bin?op=open&len=-2",
            "/soak/big.bin?op=open&offset=999999999", "/?op=list&x=%ff%fe", "/%2e%2e/%2e%2e/etc/passwd",
            "/.authgateway/cookie.secret", "/soak/%00?op=status", "/soak//big.bin?op=status",
            "/?op=list&" + "a=b&" * 5000, "/?op=homedir&doas=root", "/soak?op=list&op=delete",
            "/soak/medium.bin?op=setreplication&replication=x", "/soak?op=list#frag", "/soak/../..?op=list",
        ]:
            out.append(Bad("bad/query", target[:40], get(target, good), ANY_ANSWER))
        out.append(Bad("bad/query", "non-UTF-8 path", get(b"/soak/\xff\xfe?op=status", good), ANY_ANSWER))
        for method, target in [("POST", "/?op=list"), ("GET", "/soak/x?op=create"), ("PUT", "/soak/x?op=delete"),
                               ("DELETE", "/?op=mkdirs"), ("PATCH", "/soak?op=list"), ("OPTIONS", "*"),
                               ("CONNECT", "127.0.0.1:1"), ("GET", "http://elsewhere.example/soak?op=list")]:
            out.append(Bad("bad/query", f"{method} {target}", get(target, good, method=method), ANY_ANSWER))
        raw: list[tuple[str, bytes]] = [
            ("garbage", b"GARBAGE\r\n\r\n"), ("HTTP/9.9", b"GET / HTTP/9.9\r\n\r\n"), ("HTTP/0.9", b"GET /\r\n\r\n"),
            ("no colon", get("/?op=homedir", good, b"No colon here")),
            ("space in name", get("/?op=homedir", good, b"Bad Name: x")),
            ("Content-Length -1", get("/?op=homedir", good, b"Content-Length: -1")),
            ("Content-Length abc", get("/?op=homedir", good, b"Content-Length: abc")),
            ("Content-Length and chunked", get("/soak/x?op=create", good, b"Content-Length: 5",
                                               b"Transfer-Encoding: chunked", method="POST",
                                               body=b"zz\r\nhello\r\n0\r\n\r\n")),
            ("bad chunk size", get("/soak/x?op=create&overwrite=true", good, b"Transfer-Encoding: chunked",
                                   method="POST") + b"zz\r\nhello\r\n0\r\n\r\n"),
            ("gzip, chunked", get("/?op=homedir", good, b"Transfer-Encoding: gzip, chunked") + b"0\r\n\r\n"),
            ("Expect: bogus", get("/?op=homedir", good, b"Expect: bogus")),
            ("NUL in a header", get("/?op=homedir", good, b"X-Nul: a\x00b")),
            ("70 KB header", get("/?op=homedir", good, b"X-Big: " + b"b" * 70000)),
            ("300 headers", get("/?op=homedir", good, *[f"X-Many-{i}: {i}".encode() for i in range(300)])),
            ("folded header", get("/?op=homedir", good, b"X-Folded: a", b" continued")),
            ("Upgrade", get("/?op=homedir", good, b"Upgrade: websocket", b"Connection: Upgrade")),
        ]
        out += [Bad("bad/request", label, data, ANY_ANSWER) for label, data in raw]
        return out

    async def bad_client(self, index: int) -> None:
        rng, port = self.rng("bad", index), self.port("embedded")
        table = self.bad_requests()

        async def send(bad: Bad) -> None:
            conn = await RawConnection.open(port)
            try:
                head, _ = await conn.exchange(bad.data)
            finally:
                conn.close()
            if head is None:  # refusing to talk is fine for bad input
                self.tally.outcome(bad.scenario, "closed")
            else:
                self.tally.status(bad.scenario, head.status, bad.want, what=bad.label)

        async def one() -> None:
            bad = table[rng.randrange(len(table))]
            await self.attempt(bad.scenario, send(bad), 15, what=bad.label)
            await asyncio.sleep(0.01)

        await self.forever(one)

    # -- hostile clients (issue 16) ---------------------------------------------------------

    def note(self, scenario: str, text: str, took: float = 0.0) -> None:
        """A figure for a hostile scenario's line in the report: of each kind, the one that ``took`` longest."""
        kind = text.split(":", 1)[0]
        notes = self.notes.setdefault(scenario, {})
        if took >= self.note_took.get((scenario, kind), 0.0):
            notes[kind] = text
            self.note_took[(scenario, kind)] = took

    async def hostile_set_up(self, admin: aiohttp.ClientSession) -> None:
        """What the hostile clients aim at: names a backtracking glob chokes on, a wide directory, targets."""

        async def expect(method: str, target: str, statuses: Container[int], data: Any = None) -> None:
            async with admin.request(method, self.url("embedded", target), data=data,
                                     headers={"Content-Type": "application/octet-stream"}) as r:
                body = await r.read()
                if r.status not in statuses:
                    raise RuntimeError(f"set-up: {method} {target}: {r.status} {body[:200]!r}")

        for i in range(4):  # 32 characters: *a*a*a*a*a*a*a*a*a*a*b backtracks for seconds over each
            await expect("POST", f"/soak/names/{'a' * 31}{i}?op=mkdirs", {200})
        await expect("POST", "/soak/wide?op=mkdirs", {200})
        wide = self.gateways["embedded"].root / "soak" / "wide"

        def fill() -> None:  # straight into the embedded backend's root: as many requests would take minutes
            for i in range(self.args.wide_entries):
                (wide / f"entry-{i:08d}").touch()

        await asyncio.to_thread(fill)
        await expect("POST", "/restricted/x?op=mkdirs", {200})
        await expect("POST", "/soak/csrf/target.bin?op=create&overwrite=true", {201}, CSRF_BODY)

    async def hostile_exchange(self, data: bytes, *, timeout: float = 60) -> Head | None:
        conn = await RawConnection.open(self.port("embedded"), source=HOSTILE)
        try:
            async with asyncio.timeout(timeout):
                head, _ = await conn.exchange(data)
            return head
        finally:
            conn.close()

    def hostile_status(self, scenario: str, head: Head | None, want: Container[int], what: str) -> bool:
        if head is None:
            self.tally.outcome(scenario, "closed")
            return False
        return self.tally.status(scenario, head.status, want, what=what)

    async def slowloris(self) -> None:
        """As many unfinished heads as the gateway takes connections, one header line every few seconds."""
        scenario, port = "hostile/slowloris", self.port("embedded")
        count = self.args.slowloris or int(setting(self.settings["embedded"], "server.max_connections"))
        bound, interval = self.args.head_bound, self.args.slowloris_interval

        async def one(i: int) -> float | None:
            """Seconds until the gateway answered or closed; ``None`` when still open at the bound."""
            opened = time.monotonic()
            try:
                conn = await RawConnection.open(port, source=SLOWLORIS)
            except OSError:
                return 0.0  # refused at once: the gateway's right
            try:
                await conn.send(f"GET /?op=homedir HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
                line = 0
                while time.monotonic() - opened < bound:
                    try:
                        async with asyncio.timeout(interval):
                            await conn.reader.read(CHUNK)  # an answer (408, 503...) or the close: either ends it
                        return time.monotonic() - opened
                    except TimeoutError:
                        await conn.send(f"X-Slow-{line}: {line}\r\n".encode())
                        line += 1
                return None
            except ConnectionError:
                return time.monotonic() - opened
            finally:
                conn.close()

        async def round_() -> None:
            gathered = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
            for failed in [r for r in gathered if isinstance(r, BaseException)]:
                self.tally.error(scenario, describe(failed))
            still = sum(r is None for r in gathered)
            closed = [r for r in gathered if isinstance(r, float)]
            for _ in closed:
                self.tally.outcome(scenario, "closed")
            if still:
                self.tally.error(scenario, f"{still} of {count} unfinished heads still open after {bound:g} s")
            self.note(scenario, f"heads: {count} at once from {SLOWLORIS}, {still} still open after {bound:g} s"
                      + (f", the others closed after {min(closed):.0f}-{max(closed):.0f} s" if closed else ""))

        # From half-way: the first half shows the other scenarios' outcomes unclouded; each round is judged
        # even after the load stopped.
        if await self.pause(self.args.duration / 2):
            return
        while True:
            await round_()
            if await self.pause(bound):
                return

    async def big_heads(self) -> None:
        """Unfinished heads of 100 lines of 60 KB: what each costs the gateway in memory."""
        scenario, port, n = "hostile/big-heads", self.port("embedded"), self.args.big_heads
        line = b"X-Big: " + b"b" * 60000 + b"\r\n"
        pid = self.gateways["embedded"].proc.pid
        while not await self.pause(5):
            before = tree_memory(pid, "VmRSS") / MiB
            conns: list[RawConnection] = []
            refused = 0
            try:
                for _ in range(n):
                    conn = await RawConnection.open(port, source=HOSTILE)
                    conns.append(conn)
                    try:
                        async with asyncio.timeout(20):
                            await conn.send(f"GET /?op=homedir HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
                            for _ in range(100):
                                await conn.send(line)
                    except (ConnectionError, TimeoutError):
                        refused += 1  # refused or no longer read: what a bound on heads does
                await asyncio.sleep(2)
                per = (tree_memory(pid, "VmRSS") / MiB - before) / n
            finally:
                for conn in conns:
                    conn.close()
            self.tally.outcome(scenario, "closed" if refused == n else "hung up")
            self.note(scenario, f"memory: {per:+.1f} MiB per unfinished 6 MB head ({refused} of {n} cut off)")
            if per > self.args.max_head_mib:
                self.tally.fail(scenario, f"an unfinished head cost {per:.1f} MiB (bound {self.args.max_head_mib:g})")
            if await self.pause(20):
                return

    async def deep_tree(self) -> None:
        """mkdirs of a path --deep-levels deep in one request, then a recursive delete of it."""
        scenario, port, levels = "hostile/deep-tree", self.port("embedded"), self.args.deep_levels
        cookie = f"Cookie: {self.cookie}"
        for k in itertools.count():
            if self.stop.is_set():
                return
            top = f"/soak/deep{k}"
            target = top + "/d" * (levels - 2)  # soak, deepK and the d's: --deep-levels components
            started = time.monotonic()
            head = await self.attempt(scenario, self.hostile_exchange(
                request("POST", f"{target}?op=mkdirs", port, cookie), timeout=280), 300, "mkdirs")
            took = time.monotonic() - started
            made = head is not None and head.status == 200
            if head is not None:
                self.hostile_status(scenario, head, {200} | set(REFUSED), f"mkdirs {levels} levels")
                self.note(scenario, f"mkdirs: {levels} levels answered {head.status} in {took:.2f} s (slowest)", took)
            if made:
                started = time.monotonic()
                head = await self.attempt(scenario, self.hostile_exchange(
                    request("DELETE", f"{top}?op=delete&recursive=true", port, cookie), timeout=280), 300, "delete")
                if head is not None:
                    took = time.monotonic() - started
                    self.hostile_status(scenario, head, {200}, f"recursive delete of {levels} levels")
                    self.note(scenario, f"delete: answered {head.status} in {took:.2f} s (slowest)", took)
            if await self.pause(5):
                return

    async def hostile_client(self) -> None:
        """One after another: list filters, Alluxio bodies, ';' parameters, CSRF, a listing never read."""
        port, cookie = self.port("embedded"), f"Cookie: {self.cookie}"
        status = self.hostile_status

        async def timed(scenario: str, label: str, data: bytes, want: Container[int]) -> None:
            started = time.monotonic()
            head = await self.hostile_exchange(data, timeout=120)
            status(scenario, head, want, label)
            if head is not None:
                took = time.monotonic() - started
                self.note(scenario, f"{label}: {head.status} in {took:.2f} s (slowest)", took)

        async def glob() -> None:
            await timed("hostile/list-filter", "*a*a*a*a*a*a*a*a*a*a*b over 32-character names",
                        request("GET", "/soak/names?op=list&filter=*a*a*a*a*a*a*a*a*a*a*b", port, cookie),
                        {200, 400})

        async def braces() -> None:
            nested = "%7B" * 1500 + "a" + "%7D" * 1500
            await timed("hostile/list-filter", "1,500 nested braces",
                        request("GET", f"/soak/names?op=list&filter={nested}", port, cookie), REFUSED)

        async def alluxio() -> None:
            for label, body in ALLUXIO_BODIES:
                head = await self.hostile_exchange(request(
                    "POST", "/api/v1/paths//soak/alluxio-made/create-directory", port, cookie,
                    "Content-Type: application/json", body=body))
                status("hostile/alluxio-options", head, REFUSED, label)

        async def path_parameters() -> None:
            scenario = "hostile/path-parameters"
            for target in ("/restricted;/x", "/restricted;jsessionid=1/x", "/restricted/x"):
                head = await self.hostile_exchange(request("GET", f"{target}?op=status&user.name=alice", port))
                if head is None or head.status in (400, 403) or head.status >= 500:
                    status(scenario, head, {400, 403}, target)
                    continue
                # Jetty and Tomcat (HttpFS, the NameNode) serve /restricted;/x as /restricted/x.
                self.tally.outcome(scenario, f"{head.status // 100}xx")
                self.tally.fail(scenario, f"alice got {head.status} for {target}: a route other than /restricted/ "
                                          "served it, past that route's users rule (hdfs alone)")

        async def csrf() -> None:
            scenario = "hostile/csrf"
            browser = (cookie, f"User-Agent: {BROWSER}", "Origin: http://evil.example",
                       "Content-Type: application/x-www-form-urlencoded")
            forged = [
                ("WebHDFS TRUNCATE", request("POST", "/webhdfs/v1/soak/csrf/target.bin?op=TRUNCATE&newlength=0",
                                             port, *browser)),
                ("Hoop create overwrite", request("POST", "/soak/csrf/target.bin?op=create&overwrite=true", port,
                                                  *browser, body=b"forged=1")),
                ("Alluxio delete", request("POST", "/api/v1/paths//soak/csrf/target.bin/delete", port, *browser)),
            ]
            for label, data in forged:
                status(scenario, await self.hostile_exchange(data), REFUSED, label)
                head, body = await self.exchange_embedded(request("GET", "/soak/csrf/target.bin?op=status", port,
                                                                  cookie))
                if head is None or head.status != 200:
                    self.tally.fail(scenario, f"after a forged browser POST ({label}) the target could not be "
                                              f"checked: {'no answer' if head is None else head.status}")
                elif json.loads(body).get("len") != len(CSRF_BODY):
                    self.tally.fail(scenario, f"a forged browser POST ({label}) changed or removed the target")
                    await self.exchange_embedded(request("POST", "/soak/csrf/target.bin?op=create&overwrite=true",
                                                         port, cookie, "Content-Type: application/octet-stream",
                                                         body=CSRF_BODY))

        steps = [("hostile/list-filter", glob), ("hostile/list-filter", braces),
                 ("hostile/alluxio-options", alluxio), ("hostile/path-parameters", path_parameters),
                 ("hostile/csrf", csrf)]
        for turn in itertools.count():
            if self.stop.is_set():
                return
            scenario, action = steps[turn % len(steps)]
            await self.attempt(scenario, action(), 150)
            if await self.pause(1):
                return

    async def exchange_embedded(self, data: bytes) -> tuple[Head | None, bytes]:
        """A request of the soak's own (from 127.0.0.1), to check what a hostile one did."""
        return await self.exchange_on(self.port("embedded"), data)

    async def non_reader(self, index: int) -> None:
        """Asks for the big listing and never reads a byte of it; lets go after a while."""
        scenario, port = "hostile/non-reader", self.port("embedded")
        ask = request("GET", "/webhdfs/v1/soak/wide?op=LISTSTATUS", port, f"Cookie: {self.cookie}")

        async def one() -> None:
            conn = await RawConnection.open(port, rcvbuf=4096, source=HOSTILE)
            try:
                await conn.send(ask)
                await self.pause(20)
                self.tally.outcome(scenario, "hung up")
            finally:
                conn.reset()

        await asyncio.sleep(index)  # not all at once
        while not self.stop.is_set():
            await self.attempt(scenario, one(), 60)

    # -- after the load ----------------------------------------------------------------------

    async def check_health(self) -> None:
        async with self.session() as http:
            for gateway, target in (("embedded", "/?op=homedir&user.name=hdfs"),
                                    ("faulty", f"/echo/health?user.name={FAULTY_USER}")):
                scenario = f"after/{gateway}-answers"

                async def probe() -> None:
                    async with http.get(self.url(gateway, target)) as r:
                        await r.read()
                        self.tally.status(scenario, r.status, {200})

                await self.attempt(scenario, probe(), 15)

    async def check_leftovers(self) -> None:
        tmp = self.gateways["embedded"].root / ".authgateway" / "tmp"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            left = list(tmp.iterdir()) if tmp.exists() else []
            if not left:
                self.tally.outcome("after/no-partial-uploads", "2xx")
                return
            await asyncio.sleep(0.5)
        self.tally.error("after/no-partial-uploads", f"{len(left)} partial upload(s) left in {tmp}")

    async def check_stop(self, name: str, gw: GatewayProcess) -> None:
        """Stop a gateway as an operator would (SIGTERM); it must exit by itself, cleanly."""
        scenario = f"after/{name}-stops"
        if gw.proc.poll() is not None:
            self.tally.error(scenario, f"had already exited with {gw.proc.returncode}")
            return
        started = time.monotonic()
        await asyncio.to_thread(gw.stop)  # SIGTERM, then SIGKILL after 10 s
        took, code = time.monotonic() - started, gw.proc.returncode
        print(f"{name} gateway: SIGTERM to exit {took:.1f} s, exit status {code}")
        if code != 0:
            self.tally.error(scenario, f"exit status {code} after SIGTERM ({took:.1f} s)")
        else:
            self.tally.outcome(scenario, "2xx")

    def check_loops(self) -> None:
        """Every event loop stall a gateway logged past the bound is a failure (gateway.loopwatch)."""
        for name, gw in self.gateways.items():
            scenario = f"after/{name}-loop"
            stalls = [held for _, held in gw.loop_stalls() if held * 1000 > LOOP_STALL_BOUND_MS]
            if stalls:
                self.tally.error(scenario, f"{len(stalls)} event loop stall(s) past {LOOP_STALL_BOUND_MS} ms, "
                                           f"the longest {max(stalls) * 1000:.0f} ms")
            else:
                self.tally.outcome(scenario, "2xx")

    def check_latency(self) -> tuple[float, float, float] | None:
        """The normal clients' p50, p99 and max (seconds to the head); beyond --max-p99-ms is a failure."""
        if not self.latency:
            self.tally.error("after/normal-p99", "no normal request was timed")
            return None
        ordered = sorted(self.latency)
        p50, p99 = ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        if p99 * 1000 > self.args.max_p99_ms:
            self.tally.error("after/normal-p99", f"p99 {p99 * 1000:.0f} ms (bound {self.args.max_p99_ms:g} ms)")
        else:
            self.tally.outcome("after/normal-p99", "2xx")
        return p50, p99, ordered[-1]

    async def check_restart(self, workdir: Path) -> None:
        """Start the embedded gateway again on the data the run left: it must start and answer."""
        scenario = "after/embedded-restarts"
        again = deep_merge(self.settings["embedded"], {"embedded": {"root": str(self.gateways["embedded"].root)}})
        try:
            gw = await asyncio.to_thread(start_gateway, workdir / "embedded-restart", **again)
        except RuntimeError as exc:
            last = [line for line in str(exc).splitlines() if line.strip()][-1:]
            self.tally.error(scenario, f"the gateway does not start again on its data: {' '.join(last)[:150]}")
            return
        try:
            head, _ = await self.exchange_on(gw.port, request("GET", "/?op=homedir&user.name=hdfs", gw.port))
            if head is None:
                self.tally.error(scenario, "started again, but closed without an answer")
            else:
                self.tally.status(scenario, head.status, {200})
        finally:
            await asyncio.to_thread(gw.stop)

    @staticmethod
    async def exchange_on(port: int, data: bytes) -> tuple[Head | None, bytes]:
        conn = await RawConnection.open(port)
        try:
            async with asyncio.timeout(30):
                return await conn.exchange(data)
        finally:
            conn.close()

    def check_logs(self) -> list[str]:
        """Count tracebacks in the gateways' logs as failures; their first lines, for the report."""
        seen: list[str] = []
        for gateway, gw in self.gateways.items():
            lines = gw.log().splitlines()
            for i, line in enumerate(lines):
                if line.startswith("Traceback (most recent call last)") or "exception was never retrieved" in line:
                    last = next((lines[j] for j in range(i + 1, min(i + 200, len(lines)))
                                 if lines[j] and not lines[j].startswith((" ", "Traceback"))), line)
                    self.tally.error(f"after/{gateway}-log", f"traceback: {last[:120]}")
                    seen.append(f"{gateway}: {last[:160]}")
        return seen


# -- running it ------------------------------------------------------------------------------


def print_row(s: Sample) -> None:
    cells = [f"{s.t:>6.0f}"]
    for name in GATEWAYS:
        cells.append(f"{s.rss.get(name, float('nan')):>9.1f} {s.fds.get(name, -1):>5}")
    cells.append(f"{s.own_rss:>9.1f} {s.rate:>8.1f} {s.failures:>8}")
    print("  ".join(cells), flush=True)


def print_header() -> None:
    print(f"{'t/s':>6}  " + "  ".join(f"{name + ' MiB':>9} {'fds':>5}" for name in GATEWAYS)
          + f"  {'soak MiB':>9} {'events/s':>8} {'failures':>8}", flush=True)


async def sampler(soak: Soak, samples: list[Sample], t0: float) -> None:
    last_t, last_events = t0, 0
    while True:
        now = time.monotonic()
        rss = {name: vm(gw.proc.pid).get("VmRSS", float("nan")) for name, gw in soak.gateways.items()}
        fds = {name: open_fds(gw.proc.pid) for name, gw in soak.gateways.items()}
        rate = (soak.tally.events - last_events) / max(now - last_t, 1e-9)
        last_t, last_events = now, soak.tally.events
        sample = Sample(now - t0, rss, fds, vm(os.getpid()).get("VmRSS", 0.0), rate, soak.tally.failures)
        samples.append(sample)
        print_row(sample)
        soak.backend.heads.clear()  # the soak has no use for them and they would pile up
        for name, gw in soak.gateways.items():
            if gw.proc.poll() is not None and not soak.stop.is_set():
                soak.tally.error(f"after/{name}-alive", f"exited with {gw.proc.returncode} during the load")
                soak.stop.set()
        await asyncio.sleep(soak.args.sample)


def report(soak: Soak, samples: list[Sample], final: Sample, hwm: dict[str, float], tracebacks: list[str],
           latency: tuple[float, float, float] | None) -> bool:
    """Print the summary; ``True`` when the run passed."""
    args = soak.args
    ok = True
    if latency is not None:
        p50, p99, worst = (x * 1000 for x in latency)
        print(f"\nNormal clients, time to the answer's head ({len(soak.latency)} requests without a body): "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (bound {args.max_p99_ms:g}), max {worst:.0f} ms")
    for name, gw in soak.gateways.items():
        stalls = [held for _, held in gw.loop_stalls()]
        past = [h for h in stalls if h * 1000 > LOOP_STALL_BOUND_MS]
        print(f"{name} gateway: {len(stalls)} event loop stall(s) logged, {len(past)} past {LOOP_STALL_BOUND_MS} ms"
              + (f", the longest {max(stalls) * 1000:.0f} ms" if stalls else ""))
    hostile = sorted(sc for sc in soak.tally.counts if sc.startswith("hostile/"))
    if hostile:
        print("\nHostile clients (from " + HOSTILE + "), each scenario's outcome:")
        for scenario in hostile:
            row = soak.tally.counts[scenario]
            whys = [(why, n) for (sc, why), n in soak.tally.reasons.items() if sc == scenario]
            done = ", ".join(f"{row[c]} {c}" for c in COLUMNS if row[c] and c != "failed")
            print(f"  {'FAIL' if whys else 'PASS'}  {scenario}: {done or 'nothing completed'}")
            for text in soak.notes.get(scenario, {}).values():
                print(f"          {text}")
            for why, n in sorted(whys, key=lambda item: -item[1]):
                print(f"          {n} x {why}")
    print("\nRSS (MiB): first-quarter max, last-quarter max, growth; VmHWM; fds at start and after the load")
    for name in GATEWAYS:
        values = [s.rss[name] for s in samples if name in s.rss]
        q = max(1, len(values) // 4)
        grew = growth(values)
        verdict = "too few samples to judge"
        if grew is not None:
            verdict = f"{grew:+.1f} (bound {args.max_growth_mib:g})"
            if grew > args.max_growth_mib:
                verdict += "  TOO MUCH"
                ok = False
        fds = [s.fds[name] for s in samples]
        print(f"  {name:<9} {max(values[:q]):>7.1f} {max(values[-q:]):>7.1f}  {verdict};  "
              f"VmHWM {hwm.get(name, float('nan')):.1f};  fds {fds[0]} -> {final.fds[name]}"
              f" (load max {max(fds)});  RSS after the load {final.rss[name]:.1f}")
    print(f"\nThe faulty backend's peer still holds {soak.backend.peer_connections()} connection(s) to it"
          " (pooled keep-alive ones are fine)")

    counts = soak.tally.counts
    width = max(len(s) for s in counts) if counts else 10
    print(f"\n{'scenario':<{width}}  " + " ".join(f"{c:>{max(len(c), 5)}}" for c in COLUMNS))
    for scenario in sorted(counts):
        row = counts[scenario]
        print(f"{scenario:<{width}}  " + " ".join(
            f"{(row[c] if row[c] else '.'):>{max(len(c), 5)}}" for c in COLUMNS))
    totals: Counter[str] = Counter()
    for row in counts.values():
        totals.update(row)
    print(f"{'total':<{width}}  " + " ".join(f"{totals[c]:>{max(len(c), 5)}}" for c in COLUMNS))
    print("(5xx backend: 502/504 from the faulty backend's routes, expected; 5xx other: failures. closed: the "
          "gateway closed without an answer; cut: an answer cut short; hung up: the client's own doing;\n"
          " after/*: checks once the load stopped, 2xx = passed)")

    if soak.tally.reasons:
        ok = False
        print(f"\nFailures ({soak.tally.failures}):")
        for (scenario, why), n in soak.tally.reasons.most_common():
            print(f"  {n:>6}  {scenario}: {why}")
    for line in tracebacks[:10]:
        print(f"  log: {line}")
    return ok


async def soak_main(args: argparse.Namespace) -> int:
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="authgateway-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"authgateway soak: {args.duration:g} s of load; configurations, logs and data in {workdir}", flush=True)
    per_gateway, notes = settings(args, known_keys())
    for note in notes:
        print(f"note: {note}")
    if args.hostile and "routes" not in per_gateway["embedded"]:
        per_gateway["embedded"]["routes"] = ROUTES
    patience = Patience.of(per_gateway["faulty"])
    backend = FaultyBackend(fault_routes(patience))
    await backend.start()
    key = workdir / "cookie.key"
    key.write_bytes(os.urandom(48).hex().encode())
    key.chmod(0o600)
    gateways: dict[str, GatewayProcess] = {}
    passed = False
    try:
        try:
            gateways["embedded"] = await asyncio.to_thread(start_gateway, workdir / "embedded",
                                                           **per_gateway["embedded"])
            faulty = deep_merge(
                {"backend": {"url": backend.url}, "cookie": {"secret_files": [str(key)]}}, per_gateway["faulty"])
            gateways["faulty"] = await asyncio.to_thread(start_gateway, workdir / "faulty", **faulty)
        except RuntimeError as exc:
            print(f"soak: {exc}", file=sys.stderr)
            return 2
        for name, gw in gateways.items():
            print(f"{name} gateway: pid {gw.proc.pid}, {gw.url}, config {gw.config_path}")
        soak = Soak(args, gateways, backend, patience, settings=per_gateway)

        def unhandled(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            soak.tally.error("soak itself", f"unhandled: {context.get('message')}: {context.get('exception')!r}"[:160])
            loop.default_exception_handler(context)

        asyncio.get_running_loop().set_exception_handler(unhandled)
        async with soak.session() as admin:
            await soak.set_up(admin)
            if args.hostile:
                await soak.hostile_set_up(admin)
            workers: list[Awaitable[None]] = []
            workers += [soak.normal_client(i) for i in range(args.clients)]
            workers += [soak.slow_client(i, admin) for i in range(args.slow_clients)]
            workers += [soak.idle_connection(i) for i in range(args.idle_connections)]
            workers += [soak.faulty_client(i) for i in range(args.faulty_clients)]
            workers += [soak.bad_client(i) for i in range(args.bad_clients)]
            if args.hostile:
                workers += [soak.slowloris(), soak.deep_tree(), soak.hostile_client()]
                workers += [soak.non_reader(i) for i in range(args.non_readers)]
                if args.big_heads:
                    workers.append(soak.big_heads())
            print_header()
            samples: list[Sample] = []
            t0 = time.monotonic()
            sampling = asyncio.ensure_future(sampler(soak, samples, t0))
            tasks = [asyncio.ensure_future(w) for w in workers]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(soak.stop.wait(), args.duration)
            soak.stop.set()
            # Let what is under way finish (each is bounded), but not for long; unfinished heads get
            # their bound, to be judged.
            settle = max(20.0, args.head_bound + args.slowloris_interval + 10) if args.hostile else 20.0
            _, pending = await asyncio.wait(tasks, timeout=settle)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
            load = [s for s in samples if s.t <= args.duration]
            print(f"load stopped after {time.monotonic() - t0:.0f} s; letting the gateways settle", flush=True)
            await asyncio.sleep(5)
            await soak.check_health()
            await soak.check_leftovers()
            final = Sample(time.monotonic() - t0,
                           {n: vm(gw.proc.pid).get("VmRSS", float("nan")) for n, gw in gateways.items()},
                           {n: open_fds(gw.proc.pid) for n, gw in gateways.items()}, vm(os.getpid()).get("VmRSS", 0.0),
                           0.0, soak.tally.failures)
            print_row(final)
            hwm = {n: vm(gw.proc.pid).get("VmHWM", float("nan")) for n, gw in gateways.items()}
        for name, gw in gateways.items():
            await soak.check_stop(name, gw)
        tracebacks = soak.check_logs()
        soak.check_loops()
        latency = soak.check_latency()
        await soak.check_restart(workdir)
        passed = report(soak, load or samples, final, hwm, tracebacks, latency)
        print(f"\n{'PASS' if passed else 'FAIL'}")
        if not passed:
            print(f"logs: {', '.join(str(gw.log_path) for gw in gateways.values())}")
        return 0 if passed else 1
    finally:
        for gw in gateways.values():
            await asyncio.to_thread(gw.stop)
        await backend.stop()
        if passed and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    args = parse_args()
    return asyncio.run(soak_main(args))


if __name__ == "__main__":
    raise SystemExit(main())
