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
* sets ``X-Forwarded-For`` (appended), ``-Proto`` and ``-Host``;
* never passes back the backend's own ``WWW-Authenticate`` or its
  ``hadoop.auth``/session ``Set-Cookie``;
* maps an unreachable backend, a broken answer and a ``101`` nobody asked
  for to 502; a backend that does not connect, answer or take the request
  body in time, and a pool with no free connection in time, to 504
  (``connect_timeout``, ``read_timeout``, ``send_timeout``, ``pool_timeout``);
* holds at most one chunk of a body in flight each way, so memory follows
  the number of connections, not their sizes or speeds;
* lets the dialect rewrite the response headers and, through the
  :class:`BodyRewriter` it may return for them, the body as it streams
  (``Content-Length`` is then dropped).
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
from typing import Any, Protocol
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

import aiohttp
from aiohttp import hdrs, payload, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.client_proto import ResponseHandler
from aiohttp.http import RawResponseMessage
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from gateway.cookieheader import strip_cookies
from gateway.log import proxy_logger

__all__ = (
    "BodyRewriter", "Forward", "LocalBackend", "UpstreamError", "UpstreamHeaders", "UpstreamProxy", "fold_header_name",
    "origin_form",
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
    "x-forwarded-for",  # rewritten below
    "x-forwarded-proto",
    "x-forwarded-host",
}
_RESPONSE_DROP = _HOP_BY_HOP | {"www-authenticate"}
_SMALL_BODY = 64 * 1024


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


def connection_tokens(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """The header names listed in every ``Connection`` line, in lower case (RFC 9110 7.6.1)."""
    return frozenset(
        token.strip().lower() for line in headers.getall(hdrs.CONNECTION, ()) for token in line.split(",")
    )


class _InterimResponseError(aiohttp.ClientConnectionError):
    """The backend sent a 1xx that a proxy can neither relay nor pass over."""


_PASSED_OVER = frozenset({100, 103})  # RFC 9110 15.2.1 and RFC 8297: safe to drop


class _BackendProtocol(ResponseHandler):
    """aiohttp's client protocol, strict about interim (1xx) answers.

    aiohttp passes over every 1xx but 101 and, doing so, drops the read
    timeout: a backend that sends ``102`` and then nothing would hold the
    request forever.  Here 100 and 103 are passed over with the timeout kept
    running, and any other interim answer fails the request (a 502).
    """

    _interim_last = False

    def feed_data(self, data: tuple[RawResponseMessage, aiohttp.StreamReader], size: int = 0) -> None:
        code = data[0].code
        self._interim_last = 100 <= code < 200 and code != 101
        if self._interim_last and code not in _PASSED_OVER:
            self.set_exception(_InterimResponseError(f"unexpected interim answer {code}"))
            return
        super().feed_data(data, size)

    def data_received(self, data: bytes) -> None:
        self._interim_last = False
        super().data_received(data)
        if self._interim_last:  # aiohttp just dropped the timer for the final answer
            self.start_timeout()


class _TimedBody(payload.AsyncIterablePayload):
    """The client's request body, streamed to a backend that must keep taking it.

    aiohttp's client has no write timeout: a backend that stops reading
    would hold the request, its connection and the client forever.  Each
    chunk must be taken within ``send_timeout`` (else ``TimeoutError``).
    While the backend does not take it, the gateway does not read from the
    client either, and so would not notice the client hang up: the client's
    socket is looked at every second, and a client gone aborts both sides.
    """

    _upstream: asyncio.Transport | None = None
    _task: asyncio.Task[Any] | None = None
    _verdict: OSError | None = None  # why the watch stopped the upload
    _blocked_since: float | None = None  # loop time the pending write began
    _watch_handle: asyncio.TimerHandle

    def __init__(self, request: web.Request, send_timeout: float) -> None:
        super().__init__(request.content.iter_any())
        self._content = request.content
        self._client = request.transport
        self._send_timeout = send_timeout
        self._period = min(_LIVENESS_PERIOD, send_timeout)

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        chunks, self._iter = self._iter, None
        if chunks is None:
            return
        self._consumed = True
        # Kept: aiohttp forgets the transport when it starts a graceful close.
        self._upstream = getattr(writer, "transport", None)
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        self._watch_handle = loop.call_later(self._period, self._watch)
        remaining = content_length
        try:
            async for chunk in chunks:
                if remaining is not None:
                    chunk = chunk[:remaining]
                    remaining -= len(chunk)
                if chunk:
                    self._blocked_since = loop.time()
                    await writer.write(chunk)
                    self._blocked_since = None
                chunk = b""  # not held while the client is slow to send more
        except asyncio.CancelledError:
            if self._verdict is None or self._task is None:
                self.abort()
                raise
            self._task.uncancel()
            # aiohttp hands an OSError to the waiting request, which aborts.
            raise self._verdict from None
        except BaseException:
            self.abort()
            raise
        finally:
            self._blocked_since = None
            self._task = None
            self._watch_handle.cancel()

    def _watch(self) -> None:
        """Once a period: stop an upload the backend stopped taking, or whose client left."""
        if self._task is None:
            return
        since = self._blocked_since
        if since is not None:
            if _peer_gone(self._client, self._content.is_eof()):
                self._verdict = ConnectionResetError("the client went away during the upload")
                if self._client is not None:
                    self._client.abort()
                self._task.cancel()
                return
            if asyncio.get_running_loop().time() - since >= self._send_timeout:
                self._verdict = TimeoutError("the backend stopped taking the request body")
                self._task.cancel()
                return
        self._watch_handle = asyncio.get_running_loop().call_later(self._period, self._watch)

    def abort(self) -> None:
        """Drop the upstream connection at once, unsent bytes and all.

        aiohttp closes a failed connection gracefully, and a graceful close
        waits for the peer to take what is buffered: from a backend that
        stopped reading, forever.
        """
        if self._upstream is not None:
            self._upstream.abort()


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
        hop = connection_tokens(request.headers)
        for name, value in request.headers.items():
            folded = fold_header_name(name)
            if folded in _REQUEST_DROP or folded in self._reserved or folded in hop:
                continue
            if folded == "cookie":
                value = strip_cookies(value, self._cookie_names)
                if not value:
                    continue
            out.add(name, value)
        if request.content_length is not None:
            out[hdrs.CONTENT_LENGTH] = str(request.content_length)
        peer = request.remote or "unknown"  # as RFC 7239 writes a peer it cannot name
        prior = request.headers.get(hdrs.X_FORWARDED_FOR)
        out[hdrs.X_FORWARDED_FOR] = f"{prior}, {peer}" if prior else peer
        out[hdrs.X_FORWARDED_PROTO] = request.scheme
        out[hdrs.X_FORWARDED_HOST] = request.host
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


class UpstreamProxy(UpstreamHeaders):
    """Streams requests to one backend over a pool of keep-alive connections."""

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession,
        reserved_headers: Collection[str],
        cookie_names: Collection[str],
        send_timeout: float,
    ) -> None:
        super().__init__(reserved_headers=reserved_headers, cookie_names=cookie_names)
        self._base = base_url.rstrip("/")
        self._session = session
        self._send_timeout = send_timeout

    @staticmethod
    def new_session(
        *,
        connect_timeout: float,
        read_timeout: float,
        pool_timeout: float,
        max_connections: int,
    ) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, ttl_dns_cache=60)
        # No public hook chooses the connector's protocol; see _BackendProtocol.
        connector._factory = functools.partial(  # type: ignore[assignment]
            _BackendProtocol, loop=asyncio.get_running_loop()
        )
        return aiohttp.ClientSession(
            connector=connector,
            # aiohttp's "connect" covers waiting for a pooled connection and
            # then connecting; "sock_connect" the connecting alone.
            timeout=aiohttp.ClientTimeout(
                total=None, connect=pool_timeout + connect_timeout, sock_connect=connect_timeout, sock_read=read_timeout
            ),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        )

    def _response_headers(self, upstream: aiohttp.ClientResponse) -> CIMultiDict[str]:
        out: CIMultiDict[str] = CIMultiDict()
        hop = connection_tokens(upstream.headers)
        for name, value in upstream.headers.items():
            folded = name.lower()
            if folded in _RESPONSE_DROP or folded in hop:
                continue
            if folded == "set-cookie" and value.split("=", 1)[0].strip().lower() in self._cookie_names:
                continue
            out.add(name, value)
        return out

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
        url = URL(self._base + fwd.target, encoded=True)
        headers = self.upstream_headers(request, fwd.headers)
        body = _TimedBody(request, self._send_timeout) if request.body_exists else None
        try:
            try:
                upstream = await self._session.request(
                    fwd.method,
                    url,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    compress=False,
                    chunked=None,
                )
            except BaseException:
                if body is not None:  # the client went away, or the backend failed mid-body
                    body.abort()
                raise
        except asyncio.TimeoutError as exc:
            proxy_logger.warning("backend timed out before answering %s %s", fwd.method, request.path)
            raise UpstreamError(504, "the backend did not answer in time") from exc
        except aiohttp.ClientConnectorError as exc:
            proxy_logger.error("backend unreachable: %s", exc.os_error)
            raise UpstreamError(502, "the backend is unreachable") from exc
        except _InterimResponseError as exc:
            proxy_logger.error("backend answered %s %s with an %s", fwd.method, request.path, exc)
            raise UpstreamError(502, "the backend sent an unexpected interim answer") from exc
        except aiohttp.ClientError as exc:
            proxy_logger.error("backend request failed: %s", type(exc).__name__)
            raise UpstreamError(502, "the backend failed to answer") from exc
        if upstream.status == 101:
            # A switch of protocols nobody asked for cannot be relayed.
            proxy_logger.error("backend answered %s %s with 101 Switching Protocols", fwd.method, request.path)
            upstream.close()
            raise UpstreamError(502, "the backend switched protocols unasked")
        response: web.StreamResponse | None = None
        try:
            out_headers = self._response_headers(upstream)
            rewriter = rewrite_headers(out_headers, request) if rewrite_headers is not None else None
            length = upstream.content_length
            if length is not None and length <= _SMALL_BODY and request.method != hdrs.METH_HEAD:
                # Small and of known size: one write carries headers and body.
                del out_headers[hdrs.CONTENT_LENGTH]
                data = await upstream.read()
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
                async for chunk in upstream.content.iter_any():  # as parsed: joining pieces would copy them
                    if rewriter is not None:
                        chunk = rewriter.feed(chunk)
                    if chunk:
                        await response.write(chunk)
                    chunk = b""  # not held while the backend is slow to send more
                if rewriter is not None and (rest := rewriter.finish()):
                    await response.write(rest)
            await response.write_eof()
            return response
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            proxy_logger.warning("backend stream broke off for %s %s: %s", fwd.method, request.path, type(exc).__name__)
            upstream.close()
            if response is None or not response.prepared:
                raise UpstreamError(504 if isinstance(exc, asyncio.TimeoutError) else 502,
                                    "the backend stream broke off") from exc
            # Headers are out: the only honest signal left is an aborted response.
            if request.transport is not None:
                request.transport.abort()
            return response
        except BaseException:
            upstream.close()
            raise
        finally:
            upstream.release()
