"""The streaming reverse proxy core.

It knows nothing of authentication schemes or backend dialects: it is handed
a request, the raw target to send upstream and the headers the dialect wants
added, and it streams the body up and the response back in bounded memory.

What it does on every request:

* forwards the raw path and query byte for byte (no slash merging, no
  re-encoding), never follows redirects, never decompresses;
* drops hop-by-hop headers both ways (with every header named in any
  ``Connection`` line), the client's credentials (``Authorization``,
  ``Proxy-Authorization``, the session cookie, read as
  :mod:`gateway.cookieheader` reads it) and any header the dialect names as
  reserved (the identity headers) in every spelling: letter case, ``_`` for
  ``-``;
* drops every ``X-Forwarded-*``, ``Forwarded`` and ``X-Real-IP`` the client
  sent and sets its own ``X-Forwarded-For``, ``-Proto`` and ``-Host`` from
  the verified :class:`~gateway.forwarded.ClientView` (trusted proxies'
  hops only);
* sets ``X-Request-Id`` to the request's id (:func:`gateway.log.request_id`:
  the client's when well-formed, else a new one);
* never passes back the backend's own ``WWW-Authenticate`` or its
  ``hadoop.auth``/session ``Set-Cookie``;
* speaks HTTP/1.1 to the backend over a pool of keep-alive connections
  (:mod:`gateway.upstream`), and sends a bodiless idempotent request once
  more on a fresh connection when a kept-alive one turns out closed;
* with several backends, fails over between them as :mod:`gateway.failover`
  says (connection failures, Hadoop's ``StandbyException``; never once a
  byte of the body was read, never an unsafe method that may have reached
  a backend);
* maps a client that stops sending its body (:class:`~gateway.serving.BodyTimeoutError`) to 408,
  the backend's request aborted;
* maps an unreachable backend, a broken answer, a head over the backend's
  ``max_response_head_size`` or ``max_response_headers`` and a ``101``
  nobody asked for to 502; a backend that does not connect, answer or take the request
  body in time, and a pool with no free connection in time, to 504
  (``connect_timeout``, ``read_timeout``, ``send_timeout``, ``pool_timeout``);
  a backend that fails once the answer has started cuts the client's
  connection, never leaving it a body that looks complete;
* holds at most one chunk of a body in flight each way, so memory follows
  the number of connections, not their sizes or speeds;
* lets the dialect rewrite the response headers and, through the
  :class:`BodyRewriter` it may return for them, the body as it streams
  (``Content-Length`` is then dropped);
* when the backend wants credentials of the gateway's own, asks the
  :class:`BackendAuth` it was given for them on each exchange (never knowing
  their scheme), and sends a request it refused once more when the
  authenticator says so and no byte of the client's body has been read for
  it; a refusal it cannot retry is a 502.
"""

from __future__ import annotations

import asyncio
import enum
import re
import socket
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import hdrs, web
from multidict import CIMultiDict
from yarl import URL

from gateway.cookieheader import strip_cookies
from gateway.failover import STANDBY_BODY_LIMIT, Backend, BackendSet, Failure, is_standby_answer
from gateway.forwarded import client_view
from gateway.log import REQUEST_ID_HEADER, proxy_logger, request_id
from gateway.serving import BodyTimeoutError
from gateway.upstream import (
    DEFAULT_MAX_HEAD_SIZE, DEFAULT_MAX_HEADERS, BackendError, ConnectError, ConnectTimeoutError, Connection,
    HeadTooLargeError, InterimAnswerError, Origin, ResponseHead, UpstreamClient,
)

__all__ = (
    "AuthAttempt", "BackendAuth", "BodyRewriter", "Forward", "LocalBackend", "UpstreamError", "UpstreamHeaders",
    "UpstreamProxy", "Verdict", "fold_header_name", "origin_form",
)

# RFC 9110 7.6.1, plus the legacy ones proxies have always dropped.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
     "proxy-authenticate", "proxy-authorization"}
)
_REQUEST_DROP = _HOP_BY_HOP | {
    "authorization",  # the client's credentials are ours, not the backend's
    "expect",  # the gateway already answered 100-continue
    "host",
    "content-length",  # re-added when the client sent one
    "forwarded",  # the client's claims about hops: ours are set below from what was verified
    "x-real-ip",
    "x-request-id",  # replaced by the id the gateway logs
}
_RESPONSE_DROP = _HOP_BY_HOP | {
    "www-authenticate",
    "server",  # a backend's name and version are not the client's business (nginx's proxy_hide_header default)
    # A backend's CORS grants (Hadoop's CrossOriginFilter) would let another origin's page send the
    # CSRF header (gateway.csrf) with the user's credentials, or read its answers: the gateway grants none.
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-headers",
    "access-control-allow-methods",
    "access-control-allow-private-network",
    "access-control-expose-headers",
    "access-control-max-age",
}
_SMALL_BODY = 64 * 1024
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})  # RFC 9110 9.2.2


_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


def origin_form(target: str) -> str | None:
    """The path and query of a request target, or ``None`` if it has none.

    Origin-form (``/a//b?x``) is kept byte for byte.  Absolute-form
    (``http://host/a?x``), which HTTP/1.1 servers must accept, yields its
    path and query: the gateway forwards to its one backend whatever host
    was named.  Authority-form (``CONNECT``) and ``*`` have no path.
    """
    if target.startswith("/"):
        return target
    match = _ABSOLUTE_FORM.match(target)
    if match is None:
        return None
    rest = target[match.end() :]
    return rest if rest.startswith("/") else "/" + rest


def connection_tokens(lines: Iterable[str]) -> frozenset[str]:
    """The header names listed in the ``Connection`` lines given, in lower case (RFC 9110 7.6.1)."""
    return frozenset(token.strip().lower() for line in lines for token in line.split(","))


class _TimedBody:
    """The client's request body, streamed to a backend that must keep taking it.

    Each chunk must be taken within ``send_timeout`` (else the exchange
    fails with ``TimeoutError``).  While the backend does not take it, the
    gateway does not read from the client either, and so would not notice
    the client hang up: the client's socket is looked at every second, and a
    client gone aborts both sides.
    """

    _out: Connection | None = None
    _blocked_since: float | None = None  # loop time the pending write began
    _watch_handle: asyncio.TimerHandle
    touched = False  # some of the body was read from the client: it cannot be sent again
    _running: asyncio.Event | None = None  # set when a send ends

    def __init__(self, request: web.Request, send_timeout: float) -> None:
        self._content = request.content
        self._length = request.content_length
        self._client = request.transport
        self._send_timeout = send_timeout
        self._period = min(_LIVENESS_PERIOD, send_timeout)

    async def send(self, out: Connection) -> None:
        """Stream the body to ``out`` (a :data:`gateway.upstream.BodySender`)."""
        self._out = out
        loop = asyncio.get_running_loop()
        self._watch_handle = loop.call_later(self._period, self._watch)
        remaining = self._length
        ended = self._running = asyncio.Event()
        try:
            while chunk := await self._content.readany():
                self.touched = True  # no await since readany returned: nothing is read unnoticed
                if remaining is not None:
                    chunk = chunk[:remaining]
                    remaining -= len(chunk)
                if chunk:
                    self._blocked_since = loop.time()
                    await out.write(chunk)
                    self._blocked_since = None
                chunk = b""  # not held while the client is slow to send more
                if remaining == 0:
                    break
        finally:
            self._blocked_since = None
            self._out = None
            self._watch_handle.cancel()
            ended.set()

    async def settled(self) -> None:
        """Wait until a send cut short (its connection aborted) has ended, so the body can be read anew."""
        if self._running is not None:
            await self._running.wait()

    def _watch(self) -> None:
        """Once a period: stop an upload the backend stopped taking, or whose client left."""
        out = self._out
        if out is None:
            return
        since = self._blocked_since
        if since is not None:
            if _peer_gone(self._client, self._content.is_eof()):
                if self._client is not None:
                    self._client.abort()
                out.fail(ConnectionResetError("the client went away during the upload"))
                return
            if asyncio.get_running_loop().time() - since >= self._send_timeout:
                out.fail(TimeoutError("the backend stopped taking the request body"))
                return
        self._watch_handle = asyncio.get_running_loop().call_later(self._period, self._watch)


_LIVENESS_PERIOD = 1.0  # seconds between looks at a stalled uploader's socket
_TCP_ESTABLISHED, _TCP_CLOSE_WAIT = 1, 8


def _peer_gone(transport: asyncio.BaseTransport | None, body_complete: bool) -> bool:
    """True when the TCP peer of ``transport`` has reset or closed its side.

    A peer that only shut down its sending side after the whole body (a
    half-close) is still waiting for the answer.
    """
    if transport is None or transport.is_closing():
        return True
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6) or not hasattr(socket, "TCP_INFO"):
        return False
    try:
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    except OSError:
        return True
    return not (state == _TCP_ESTABLISHED or (state == _TCP_CLOSE_WAIT and body_complete))


def fold_header_name(name: str) -> str:
    """The spelling-independent form of a header name (case, ``_`` for ``-``)."""
    return name.lower().replace("_", "-")


@dataclass(slots=True)
class _Early:
    """What was read of an answer's body before deciding to pass it on; ``complete``: all of it."""

    pieces: list[bytes]
    complete: bool


class _AttemptError(Exception):
    """One backend gave no answer: ``error`` for the client, ``failure`` when another backend may be tried."""

    def __init__(self, error: UpstreamError, failure: Failure | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.failure = failure


class UpstreamError(Exception):
    """The backend could not be reached (502) or did not answer in time (504)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Forward:
    """What the dialect asks the proxy to send upstream."""

    method: str
    target: str  # raw path and query, e.g. "/a//b%2F?op=list&user.name=bob"
    headers: tuple[tuple[str, str], ...]  # added after scrubbing
    user: str = ""  # on whose behalf (what a BackendAuth keys its state by)


class Verdict(enum.Enum):
    """What a :class:`BackendAuth` makes of the backend's answer to an exchange."""

    ACCEPTED = "accepted"  # pass the answer on
    RETRY = "retry"  # a remembered credential was refused: send again with a fresh one (once)
    REFUSED = "refused"  # the gateway's own credentials were refused: the client gets a 502


class AuthAttempt(Protocol):
    """The credentials of one exchange: ``headers`` go on the request (a ``Cookie`` joins the client's)."""

    @property
    def headers(self) -> tuple[tuple[str, str], ...]: ...


class BackendAuth(Protocol):
    """How the gateway proves itself to a backend that wants more than the identity header.

    The proxy calls :meth:`begin` before each exchange and :meth:`finish` with
    the answer's head; what the credentials are is the implementation's
    business (:mod:`gateway.backendauth`).
    """

    @property
    def cookie_names(self) -> frozenset[str]:
        """The backend's cookies (lower case) no client may see or send: the proxy strips them both ways."""
        ...

    def begin(self, origin: Origin, user: str, *, fresh: bool, body: bool) -> AuthAttempt:
        """Credentials for an exchange with the backend at ``origin`` on behalf of ``user``;
        ``fresh``: none remembered may be used.

        ``body``: the request has a body, so a refusal could not be retried.
        Raises :class:`UpstreamError` when there are none to be had.
        """
        ...

    def finish(self, attempt: AuthAttempt, status: int, headers: list[tuple[str, str]]) -> Verdict:
        """Learn from the answer to ``attempt`` (a cookie to remember, a mutual-authentication token)."""
        ...


class BodyRewriter(Protocol):
    """Rewrites one response body as it streams, holding a bounded amount of it."""

    def feed(self, chunk: bytes) -> bytes:
        """The rewritten bytes ready to send after ``chunk`` (possibly none yet)."""
        ...

    def finish(self) -> bytes:
        """The rest, at the end of the body."""
        ...


class UpstreamHeaders:
    """The request headers a backend gets: the client's, less hop-by-hop and reserved ones and
    the session cookie, with ``X-Forwarded-*`` and the dialect's own."""

    def __init__(self, *, reserved_headers: Collection[str], cookie_names: Collection[str]) -> None:
        self._reserved = frozenset(fold_header_name(h) for h in reserved_headers)
        self._cookie_names = frozenset(n.lower() for n in cookie_names)

    def upstream_headers(self, request: web.Request, extra: tuple[tuple[str, str], ...]) -> CIMultiDict[str]:
        out: CIMultiDict[str] = CIMultiDict()
        hop = connection_tokens(request.headers.getall(hdrs.CONNECTION, ()))
        for name, value in request.headers.items():
            folded = fold_header_name(name)
            if folded in _REQUEST_DROP or folded in self._reserved or folded in hop or folded.startswith("x-forwarded-"):
                continue
            if folded == "cookie":
                value = strip_cookies(value, self._cookie_names)
                if not value:
                    continue
            out.add(name, value)
        if request.content_length is not None:
            out[hdrs.CONTENT_LENGTH] = str(request.content_length)
        client = client_view(request)
        out[hdrs.X_FORWARDED_FOR] = ", ".join(client.chain)
        out[hdrs.X_FORWARDED_PROTO] = client.scheme
        out[hdrs.X_FORWARDED_HOST] = client.host
        out[REQUEST_ID_HEADER] = request_id(request)
        for name, value in extra:
            out[name] = value
        return out


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LocalBackend(UpstreamHeaders):
    """A backend that is a handler of this process (the embedded backend in each worker).

    The request is handed over instead of sent: a clone with the target and
    the headers a remote backend would get (the signed identity among them),
    sharing the client's connection, so the body is read and the answer
    written without a second HTTP exchange.  The handler builds its URLs from
    the ``X-Forwarded-*`` headers, so nothing needs rewriting; and since it
    answers on the gateway's request, the gateway's response hooks (the
    session cookie, the drain) run as for any answer.
    """

    def __init__(self, handler: Handler, *, reserved_headers: Collection[str], cookie_names: Collection[str]) -> None:
        super().__init__(reserved_headers=reserved_headers, cookie_names=cookie_names)
        self._handler = handler

    async def forward(
        self,
        request: web.Request,
        fwd: Forward,
        rewrite_headers: Callable[[CIMultiDict[str], web.Request], BodyRewriter | None] | None = None,
    ) -> web.StreamResponse:
        handed = request.clone(
            method=fwd.method,
            rel_url=URL(fwd.target, encoded=True),
            headers=self.upstream_headers(request, fwd.headers),
        )
        return await self._handler(handed)


def _add_credentials(
    headers: CIMultiDict[str], credentials: tuple[tuple[str, str], ...], client_cookie: str | None
) -> None:
    """Put an exchange's credentials on ``headers``: a ``Cookie`` after the client's own (which
    had the backend's cookie names stripped), anything else in place of what an earlier attempt set."""
    for name, value in credentials:
        if name.lower() == "cookie":
            headers[name] = f"{client_cookie}; {value}" if client_cookie else value
        else:
            headers[name] = value
    if not any(name.lower() == "authorization" for name, _ in credentials):
        headers.popall(hdrs.AUTHORIZATION, None)
    if not any(name.lower() == "cookie" for name, _ in credentials):
        if client_cookie:
            headers[hdrs.COOKIE] = client_cookie
        else:
            headers.popall(hdrs.COOKIE, None)


class UpstreamProxy(UpstreamHeaders):
    """Streams requests to a backend over a pool of keep-alive connections (:mod:`gateway.upstream`),
    failing over between the backends of a :class:`~gateway.failover.BackendSet`."""

    def __init__(
        self,
        backend: str | BackendSet,
        *,
        session: UpstreamClient,
        reserved_headers: Collection[str],
        cookie_names: Collection[str],
        send_timeout: float,
        backend_auth: BackendAuth | None = None,
    ) -> None:
        if backend_auth is not None:
            cookie_names = {*cookie_names, *backend_auth.cookie_names}
        super().__init__(reserved_headers=reserved_headers, cookie_names=cookie_names)
        self._client = session
        self._backends = backend if isinstance(backend, BackendSet) else BackendSet.single(backend)
        self._send_timeout = send_timeout
        self._auth = backend_auth

    @staticmethod
    def new_session(
        *,
        connect_timeout: float,
        read_timeout: float,
        pool_timeout: float,
        max_connections: int,
        max_head_size: int = DEFAULT_MAX_HEAD_SIZE,
        max_headers: int = DEFAULT_MAX_HEADERS,
    ) -> UpstreamClient:
        return UpstreamClient(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            pool_timeout=pool_timeout,
            max_connections=max_connections,
            max_head_size=max_head_size,
            max_headers=max_headers,
        )

    def _response_headers(self, upstream: ResponseHead) -> CIMultiDict[str]:
        out: CIMultiDict[str] = CIMultiDict()
        hop = connection_tokens(line for name, line in upstream.headers if name.lower() == "connection")
        for name, value in upstream.headers:
            folded = name.lower()
            if folded in _RESPONSE_DROP or folded in hop:
                continue
            if folded == "set-cookie" and value.split("=", 1)[0].strip().lower() in self._cookie_names:
                continue
            out.add(name, value)
        return out

    async def _exchange(self, request: web.Request, fwd: Forward) -> tuple[Connection, ResponseHead, _Early | None]:
        """A connection with the request sent and the final answer's head in, from the first backend
        that gives one (:mod:`gateway.failover`), with what was read of its body; raises :class:`UpstreamError`."""
        headers = self.upstream_headers(request, fwd.headers)
        body = _TimedBody(request, self._send_timeout) if request.body_exists else None
        target = fwd.target.partition("#")[0]  # a fragment is the client's own, as aiohttp's client held
        client_cookie: str | None = None  # what of the client's cookies the backend gets, its own cookie joining
        if self._auth is not None:
            client_cookie = "; ".join(headers.getall(hdrs.COOKIE, ())) or None
        backends = self._backends
        candidates = backends.order()
        for index, backend in enumerate(candidates):
            last = index + 1 == len(candidates)
            if body is not None:
                await body.settled()  # a send cut short on the previous backend has let go of the body
            try:
                conn, head = await self._attempt(backend, request, fwd, target, headers, body, client_cookie)
            except _AttemptError as exc:
                if exc.failure is None:
                    raise exc.error from exc.__cause__
                backends.failed(backend)
                if last or not exc.failure.moves_on(fwd.method, body is not None and body.touched):
                    raise exc.error from exc.__cause__
                proxy_logger.warning(
                    "backend %s:%s %s for %s %s; trying the next",
                    backend.origin.host, backend.origin.port, exc.failure.value, fwd.method, request.path,
                )
                continue
            early: _Early | None = None
            if head.status == 403 and not last and fwd.method != hdrs.METH_HEAD:
                early = await self._peek(conn, request, fwd)
                standby = early.complete and is_standby_answer(head.status, b"".join(early.pieces))
                if standby and Failure.STANDBY.moves_on(fwd.method, body is not None and body.touched):
                    conn.release()
                    backends.failed(backend)
                    proxy_logger.warning(
                        "backend %s:%s %s for %s %s; trying the next",
                        backend.origin.host, backend.origin.port, Failure.STANDBY.value, fwd.method, request.path,
                    )
                    continue
            backends.succeeded(backend)
            return conn, head, early
        raise AssertionError("unreachable: the last candidate returns or raises")

    async def _peek(self, conn: Connection, request: web.Request, fwd: Forward) -> _Early:
        """Up to :data:`~gateway.failover.STANDBY_BODY_LIMIT` of an answer's body, to tell a standby's refusal."""
        early = _Early([], False)
        size = 0
        try:
            while size <= STANDBY_BODY_LIMIT:
                batch = await conn.read()
                if not batch:
                    early.complete = True
                    break
                early.pieces += batch
                size += sum(len(piece) for piece in batch)
        except (BackendError, OSError) as exc:
            conn.abort()
            proxy_logger.warning("backend stream broke off for %s %s: %s", fwd.method, request.path, type(exc).__name__)
            raise UpstreamError(504 if isinstance(exc, TimeoutError) else 502, "the backend stream broke off") from exc
        except BaseException:
            conn.abort()
            raise
        return early

    async def _attempt(
        self,
        backend: Backend,
        request: web.Request,
        fwd: Forward,
        target: str,
        headers: CIMultiDict[str],
        body: _TimedBody | None,
        client_cookie: str | None,
    ) -> tuple[Connection, ResponseHead]:
        """The request sent to ``backend`` and the final answer's head in; raises :class:`_AttemptError`.

        With a :class:`BackendAuth`, ``client_cookie`` is what of the client's cookies the backend gets
        (its own cookie joins them).
        """
        retry = body is None and fwd.method in _IDEMPOTENT
        auth = self._auth
        attempt: AuthAttempt | None = None
        fresh = False  # the next attempt may not use a remembered credential
        while True:
            if auth is not None:
                attempt = auth.begin(backend.origin, fwd.user, fresh=fresh, body=body is not None)
                _add_credentials(headers, attempt.headers, client_cookie)
            try:
                conn = await self._client.connect(backend.origin)
            except TimeoutError as exc:
                proxy_logger.warning("backend timed out before answering %s %s", fwd.method, request.path)
                failure = Failure.CONNECT if isinstance(exc, ConnectTimeoutError) else None  # else: no pooled slot
                raise _AttemptError(UpstreamError(504, "the backend did not answer in time"), failure) from exc
            except ConnectError as exc:
                proxy_logger.error("backend unreachable: %s", exc.os_error)
                raise _AttemptError(UpstreamError(502, "the backend is unreachable"), Failure.CONNECT) from exc
            try:
                conn.send(fwd.method, target, headers.items(), body=body is not None, length=request.content_length)
                if body is not None:
                    conn.upload(body.send)
                head = await conn.response()
                if auth is None or attempt is None:
                    return conn, head
                verdict = auth.finish(attempt, head.status, head.headers)
                if verdict is Verdict.ACCEPTED:
                    return conn, head
                conn.abort()  # its answer (a refusal) is not the client's, nor worth reading
                if verdict is Verdict.RETRY and not fresh and (body is None or not body.touched):
                    proxy_logger.info("backend refused the gateway's kept credential; authenticating afresh")
                    fresh = True
                    if body is not None:
                        await body.settled()  # the cut send has let go of the (unread) body
                    continue
                proxy_logger.error("backend refused the gateway's credentials for %s %s", fwd.method, request.path)
                raise _AttemptError(UpstreamError(502, "the backend refused the gateway's credentials"), None)
            except TimeoutError as exc:
                conn.abort()
                proxy_logger.warning("backend timed out before answering %s %s", fwd.method, request.path)
                raise _AttemptError(UpstreamError(504, "the backend did not answer in time"), None) from exc
            except InterimAnswerError as exc:
                conn.abort()
                proxy_logger.error("backend answered %s %s with an %s", fwd.method, request.path, exc)
                raise _AttemptError(UpstreamError(502, "the backend sent an unexpected interim answer"), None) from exc
            except HeadTooLargeError as exc:
                conn.abort()
                proxy_logger.error("backend answered %s %s with a head too large: %s", fwd.method, request.path, exc)
                raise _AttemptError(UpstreamError(502, "the backend's answer head is too large"), None) from exc
            except (BackendError, OSError) as exc:
                conn.abort()
                if isinstance(exc.__cause__, BodyTimeoutError):  # the client, not the backend, stopped the upload
                    raise _AttemptError(UpstreamError(408, str(exc.__cause__)), None) from exc.__cause__
                if retry and conn.reused and not conn.answered:
                    # A kept-alive connection the backend had just closed: once more, on a fresh one.
                    proxy_logger.debug("backend dropped a kept-alive connection (%s); retrying", type(exc).__name__)
                    retry = False
                    continue
                proxy_logger.error("backend request failed: %s", type(exc).__name__)
                failure = None if conn.answered else Failure.BROKEN
                raise _AttemptError(UpstreamError(502, "the backend failed to answer"), failure) from exc
            except BaseException:
                conn.abort()
                raise

    async def forward(
        self,
        request: web.Request,
        fwd: Forward,
        rewrite_headers: Callable[[CIMultiDict[str], web.Request], BodyRewriter | None] | None = None,
    ) -> web.StreamResponse:
        """Send ``request`` upstream as ``fwd`` and stream the answer back.

        ``rewrite_headers`` may change the response headers in place and
        return a :class:`BodyRewriter` for the body.

        Raises :class:`UpstreamError` when no response could be had; once the
        response has started, a failure can only cut the client connection.
        """
        conn, upstream, early = await self._exchange(request, fwd)
        if upstream.status == 101:
            # A switch of protocols nobody asked for cannot be relayed.
            proxy_logger.error("backend answered %s %s with 101 Switching Protocols", fwd.method, request.path)
            conn.abort()
            raise UpstreamError(502, "the backend switched protocols unasked")
        response: web.StreamResponse | None = None
        released = False  # once back in the pool, the connection may already serve another request
        try:
            out_headers = self._response_headers(upstream)
            rewriter = rewrite_headers(out_headers, request) if rewrite_headers is not None else None
            length = upstream.content_length
            whole = early is not None and early.complete
            if whole or (length is not None and length <= _SMALL_BODY and request.method != hdrs.METH_HEAD):
                # Small and of known size (or already read): one write carries headers and body.
                out_headers.popall(hdrs.CONTENT_LENGTH, None)
                data = b"".join(early.pieces) if early is not None and whole else await conn.read_all()
                conn.release()
                released = True
                if rewriter is not None:
                    data = rewriter.feed(data) + rewriter.finish()
                return web.Response(status=upstream.status, reason=upstream.reason, headers=out_headers, body=data)
            if rewriter is not None:
                out_headers.popall(hdrs.CONTENT_LENGTH, None)
            # Content-Length, when the backend sent one, is in the copied headers;
            # otherwise aiohttp falls back to chunked encoding.
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=out_headers)
            await response.prepare(request)
            if request.method != hdrs.METH_HEAD:
                pending = early.pieces if early is not None else []  # read while telling a standby's answer
                while pieces := pending or await conn.read():  # as parsed: joining pieces would copy them
                    pending = []
                    for chunk in pieces:
                        if rewriter is not None:
                            chunk = rewriter.feed(chunk)
                        if chunk:
                            await response.write(chunk)
                    chunk = b""
                    pieces.clear()  # not held while the backend is slow to send more
                if rewriter is not None and (rest := rewriter.finish()):
                    await response.write(rest)
            await response.write_eof()
            conn.release()
            return response
        except (BackendError, OSError) as exc:  # OSError: TimeoutError, and a client gone mid-write
            proxy_logger.warning("backend stream broke off for %s %s: %s", fwd.method, request.path, type(exc).__name__)
            if not released:
                conn.abort()
            if response is None or not response.prepared:
                raise UpstreamError(504 if isinstance(exc, TimeoutError) else 502,
                                    "the backend stream broke off") from exc
            # Headers are out: the only honest signal left is an aborted response.
            if request.transport is not None:
                request.transport.abort()
            return response
        except BaseException:
            if not released:
                conn.abort()
            raise
