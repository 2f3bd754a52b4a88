"""WebHDFS v1 (a NameNode or HttpFS) behind the gateway."""

from __future__ import annotations

import json
import re

from aiohttp import hdrs, web
from multidict import CIMultiDict
from yarl import URL

from authplugins.query import iter_params
from gateway.forwarded import client_view
from gateway.proxy import BodyRewriter, origin_form
from gateway.wire import Fault, WireFormat, webhdfs

from ._base import Dialect

__all__ = ("WebHdfsDialect",)


class WebHdfsDialect(Dialect):
    """The backend learns the user from ``user.name`` (or ``doas``), as Hoop's does; errors
    are ``RemoteException`` documents, which HdfsCLI and fsspec read."""

    name = "webhdfs"

    @property
    def wire_format(self) -> WireFormat:
        return WireFormat.WEBHDFS

    def identity_query(self, user: str) -> tuple[tuple[str, str], ...]:
        return ((self._user_param, user),)

    def rewrite_response_headers(self, headers: CIMultiDict[str], request: web.Request) -> BodyRewriter | None:
        """Also a NameNode's redirect to a DataNode, in the ``Location`` header or in the JSON of a
        ``noredirect=true`` answer: with data-node patterns, to a gateway URL that carries the target
        in an opaque handle (:mod:`gateway.dialects._datanode`); for a node no pattern allows (every
        node, without patterns), dropped: a client never learns, nor is sent to, an address or a
        credential behind the gateway."""
        location = headers.get(hdrs.LOCATION)
        if location is not None and self._foreign(location, request):
            del headers[hdrs.LOCATION]
            signed = self._signed_location(location, request)
            if signed is not None:
                headers[hdrs.LOCATION] = signed
        rewriter = super().rewrite_response_headers(headers, request)
        noredirect = any(n == "noredirect" and v.lower() == "true" for _, n, v in iter_params(request.query_string))
        if noredirect and _is_json_answer(headers):
            return _NoRedirectBody(self, request, rewriter)
        return rewriter

    def _foreign(self, location: str, request: web.Request) -> bool:
        """Whether ``location`` leaves the gateway: it names neither the backend nor this gateway.

        A backend that writes the gateway's own URLs (the embedded backend, run on its own, from the
        ``X-Forwarded-*`` the gateway sent) names the gateway as the client addressed it.  That is
        believed from a trusted proxy (:attr:`~gateway.forwarded.ClientView.vouched`); the client's
        own ``Host`` proves nothing by itself: sent as ``datanode:9864``, it would make that
        DataNode's URL look like the gateway's.  So from a direct client the URL is the gateway's
        only on a route without data-node patterns (one with them is a NameNode's, which never
        writes the gateway's URLs) and on the port the client's connection reached.
        """
        if location.startswith("//"):  # scheme-relative: another host
            return True
        match = _ABSOLUTE.match(location)
        if match is None or self._backend_relative(location) is not None:
            return False
        try:
            url = URL(match.group(0))
        except ValueError:
            return True
        client = client_view(request)
        try:
            gateway = URL(f"{client.scheme}://{client.host}")
        except ValueError:  # a Host no URL can carry: nothing is the gateway
            return True
        if (url.scheme.lower(), (url.host or "").lower(), url.port) != (gateway.scheme, gateway.host, gateway.port):
            return True
        if client.vouched:
            return False
        return self.datanodes is not None or url.port != _local_port(request)

    def _signed_location(self, location: str, request: web.Request) -> str | None:
        """The gateway URL for the data step at ``location``, or ``None`` when it may not be followed."""
        from gateway.authfilter import IDENTITY, SESSION  # here: the filter is above the dialects

        acting, session = request.get(IDENTITY), request.get(SESSION)
        try:
            url = URL(location, encoded=True)
        except ValueError:
            return None
        if not url.host or self.datanodes is None or acting is None or session is None:
            return None
        if url.scheme not in ("http", "https"):
            return None
        node = f"{url.host}:{url.port}"
        if not self.datanodes.allowed(node):
            return None
        path, _, query = (origin_form(request.raw_path) or "/").partition("?")
        sealed = self.datanodes.seal(
            user=session.user, effective=acting.user, method=request.method, path=path, client_query=query,
            scheme_node=f"{url.scheme}://{node}", target=url.raw_path_qs,
        )
        client = client_view(request)
        return f"{client.scheme}://{client.host}{path}?{sealed}"


class _NoRedirectBody:
    """The ``{"Location": ...}`` of a ``noredirect`` answer, signed or dropped as a redirect is;
    any other body (or one over 64 KiB) passes through the origin rewriting alone."""

    _LIMIT = 64 * 1024

    def __init__(self, dialect: WebHdfsDialect, request: web.Request, inner: BodyRewriter | None) -> None:
        self._dialect, self._request, self._inner = dialect, request, inner
        self._buffer: bytearray | None = bytearray()

    def _pass(self, data: bytes) -> bytes:
        return data if self._inner is None else self._inner.feed(data)

    def feed(self, chunk: bytes) -> bytes:
        if self._buffer is None:
            return self._pass(chunk)
        self._buffer += chunk
        if len(self._buffer) <= self._LIMIT:
            return b""
        data, self._buffer = bytes(self._buffer), None
        return self._pass(data)

    def finish(self) -> bytes:
        tail = b""
        if self._buffer is not None:
            data, self._buffer = bytes(self._buffer), None
            tail = self._rewrite(data)
            if tail is not data:
                return tail
            tail = self._pass(data)
        return tail + (self._inner.finish() if self._inner is not None else b"")

    def _rewrite(self, data: bytes) -> bytes:
        try:
            doc = json.loads(data)
        except ValueError:
            return data
        if not isinstance(doc, dict) or not isinstance(doc.get("Location"), str):
            return data
        if not self._dialect._foreign(doc["Location"], self._request):
            return data
        signed = self._dialect._signed_location(doc["Location"], self._request)
        if signed is None:
            return json.dumps(webhdfs.body(Fault.ACCESS_DENIED, _REFUSED_NODE)).encode()
        doc["Location"] = signed
        return json.dumps(doc).encode()


_REFUSED_NODE = "the data node is not one this gateway may forward to"
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")  # scheme and authority


def _local_port(request: web.Request) -> int | None:
    """The port of the gateway's own socket the request came in on (``None`` off TCP)."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    return sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None


def _is_json_answer(headers: CIMultiDict[str]) -> bool:
    return headers.get(hdrs.CONTENT_TYPE, "").partition(";")[0].strip().lower() == "application/json"
