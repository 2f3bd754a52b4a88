"""The streaming reverse proxy core.

It knows nothing of authentication schemes or backend dialects: it is handed
a request, the raw target to send upstream and the headers the dialect wants
added, and it streams the body up and the response back in bounded memory.

What it does on every request:

* forwards the raw path and query byte for byte (no slash merging, no
  re-encoding), never follows redirects, never decompresses;
* drops hop-by-hop headers both ways, the client's credentials
  (``Authorization``, ``Proxy-Authorization``, the session cookie) and any
  header the dialect names as reserved (the identity headers) in every
  spelling: letter case, ``_`` for ``-``;
* sets ``X-Forwarded-For`` (appended), ``-Proto`` and ``-Host``;
* never passes back the backend's own ``WWW-Authenticate`` or its
  ``hadoop.auth``/session ``Set-Cookie``;
* maps an unreachable backend to 502 and a silent one to 504.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

import aiohttp
from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from gateway.log import proxy_logger

__all__ = ("Forward", "UpstreamError", "UpstreamProxy", "fold_header_name", "origin_form")

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
_CHUNK = 256 * 1024
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


class UpstreamProxy:
    """Streams requests to one backend over a pool of keep-alive connections."""

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession,
        reserved_headers: Collection[str],
        cookie_names: Collection[str],
    ) -> None:
        self._base = base_url.rstrip("/")
        self._session = session
        self._reserved = frozenset(fold_header_name(h) for h in reserved_headers)
        self._cookie_names = frozenset(cookie_names)

    @staticmethod
    def new_session(
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        unix_socket: str | None = None,
    ) -> aiohttp.ClientSession:
        connector: aiohttp.BaseConnector
        if unix_socket:
            connector = aiohttp.UnixConnector(path=unix_socket, limit=max_connections)
        else:
            connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, ttl_dns_cache=60)
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        )

    def upstream_headers(self, request: web.Request, extra: tuple[tuple[str, str], ...]) -> CIMultiDict[str]:
        out: CIMultiDict[str] = CIMultiDict()
        connection_tokens = {
            t.strip().lower() for t in request.headers.get(hdrs.CONNECTION, "").split(",") if t.strip()
        }
        for name, value in request.headers.items():
            folded = fold_header_name(name)
            if folded in _REQUEST_DROP or folded in self._reserved or folded in connection_tokens:
                continue
            if folded == "cookie":
                value = self._strip_cookies(value)
                if not value:
                    continue
            out.add(name, value)
        if request.content_length is not None:
            out[hdrs.CONTENT_LENGTH] = str(request.content_length)
        peer = request.remote or ""
        prior = request.headers.get(hdrs.X_FORWARDED_FOR)
        out[hdrs.X_FORWARDED_FOR] = f"{prior}, {peer}" if prior else peer
        out[hdrs.X_FORWARDED_PROTO] = request.scheme
        out[hdrs.X_FORWARDED_HOST] = request.host
        for name, value in extra:
            out[name] = value
        return out

    def _strip_cookies(self, header: str) -> str:
        kept = [
            part
            for part in header.split(";")
            if part.strip() and part.split("=", 1)[0].strip() not in self._cookie_names
        ]
        return ";".join(kept).strip()

    def _response_headers(self, upstream: aiohttp.ClientResponse) -> CIMultiDict[str]:
        out: CIMultiDict[str] = CIMultiDict()
        connection_tokens = {
            t.strip().lower() for t in upstream.headers.get(hdrs.CONNECTION, "").split(",") if t.strip()
        }
        for name, value in upstream.headers.items():
            folded = name.lower()
            if folded in _RESPONSE_DROP or folded in connection_tokens:
                continue
            if folded == "set-cookie" and value.split("=", 1)[0].strip() in self._cookie_names:
                continue
            out.add(name, value)
        return out

    async def forward(
        self,
        request: web.Request,
        fwd: Forward,
        rewrite_headers: Callable[[CIMultiDict[str], web.Request], None] | None = None,
    ) -> web.StreamResponse:
        """Send ``request`` upstream as ``fwd`` and stream the answer back.

        Raises :class:`UpstreamError` when no response could be had; once the
        response has started, a failure can only cut the client connection.
        """
        url = URL(self._base + fwd.target, encoded=True)
        headers = self.upstream_headers(request, fwd.headers)
        has_body = request.body_exists
        try:
            upstream = await self._session.request(
                fwd.method,
                url,
                headers=headers,
                data=request.content if has_body else None,
                allow_redirects=False,
                compress=False,
                chunked=None,
            )
        except asyncio.TimeoutError as exc:
            proxy_logger.warning("backend timed out before answering %s %s", fwd.method, request.path)
            raise UpstreamError(504, "the backend did not answer in time") from exc
        except aiohttp.ClientConnectorError as exc:
            proxy_logger.error("backend unreachable: %s", exc.os_error)
            raise UpstreamError(502, "the backend is unreachable") from exc
        except aiohttp.ClientError as exc:
            proxy_logger.error("backend request failed: %s", type(exc).__name__)
            raise UpstreamError(502, "the backend failed to answer") from exc
        response: web.StreamResponse | None = None
        try:
            out_headers = self._response_headers(upstream)
            if rewrite_headers is not None:
                rewrite_headers(out_headers, request)
            length = upstream.content_length
            if length is not None and length <= _SMALL_BODY and request.method != hdrs.METH_HEAD:
                # Small and of known size: one write carries headers and body.
                del out_headers[hdrs.CONTENT_LENGTH]
                return web.Response(
                    status=upstream.status, reason=upstream.reason, headers=out_headers, body=await upstream.read()
                )
            # Content-Length, when the backend sent one, is in the copied headers;
            # otherwise aiohttp falls back to chunked encoding.
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=out_headers)
            await response.prepare(request)
            if request.method != hdrs.METH_HEAD:
                async for chunk in upstream.content.iter_chunked(_CHUNK):
                    await response.write(chunk)
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
