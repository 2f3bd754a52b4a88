"""Redirects to data nodes as opaque handles, as Apache Knox does them (it encrypts the node's URL).

A WebHDFS NameNode answers data operations (OPEN, CREATE, APPEND) with a
redirect to a DataNode whose URL carries the NameNode's ``delegation``
token, its ``namenoderpcaddress`` and the node's address.  None of that may
reach the client, nor may the client reach the node around the gateway.  So
the redirect becomes a gateway URL on the client's own path that carries
``op``, the client's own identity parameters (``user.name``, ``doas``: a
client without a cookie jar authenticates the data step as it did the
first) and :data:`HANDLE_PARAM`, a :mod:`gateway.handles` handle: the node
and its target sealed with the user who authenticated, the user acted for,
the method, the path, the operation and an expiry.  The gateway proxies the
data step only when the handle opens (a key in force, not expired), grants
exactly that request, and the node still matches one of the route's
data-node patterns; anything else is refused, never followed.  The node's
answer names the file in the NameNode's terms (CREATE's ``201`` carries
``Location: hdfs://<namenoderpcaddress>/path``): the client gets the
gateway's URL of the path it used instead.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence

from aiohttp import hdrs, web
from multidict import CIMultiDict

from authplugins.query import encode_param, iter_params
from gateway.forwarded import client_view
from gateway.handles import Handles
from gateway.proxy import BodyRewriter, origin_form

__all__ = ("HANDLE_PARAM", "DataNodeRedirects")

HANDLE_PARAM = "authgateway.handle"
_IDENTITY_PARAMS = frozenset({"user.name", "doas"})  # the auth filter reads them; the node never sees them
_OURS = "authgateway."  # any parameter so named marks a data step (a stale signed one of old too)


class DataNodeRedirects:
    """Seals and opens the data-node steps of one route."""

    __slots__ = ("_handles", "_patterns")

    def __init__(
        self, keys: bytes | Callable[[], Sequence[bytes]], patterns: Sequence[str], *, max_age: int = 300
    ) -> None:
        """``keys``: one key, or what returns the keys in force, the one that seals first (they may rotate)."""
        if not patterns:
            raise ValueError("at least one data-node pattern is required")
        self._handles = Handles((lambda: (keys,)) if isinstance(keys, bytes) else keys, "datanode", max_age=max_age)
        self._patterns = tuple(p.lower() for p in patterns)

    def allowed(self, node: str) -> bool:
        """Whether ``node`` (``host:port``) matches a data-node pattern."""
        return any(fnmatch.fnmatchcase(node.lower(), p) for p in self._patterns)

    def seal(
        self,
        *,
        user: str,
        effective: str,
        method: str,
        path: str,
        client_query: str,
        scheme_node: str,
        target: str,
        now: float | None = None,
    ) -> str:
        """The query of the gateway URL (on ``path``) for the data step to ``scheme_node`` + ``target``
        (the node's raw path and query), for ``method`` by ``user`` acting as ``effective``.

        ``client_query``: the raw query of the request that was redirected (its identity parameters
        go along)."""
        op = next((value for _, name, value in iter_params(target.partition("?")[2]) if name == "op"), "")
        handle = self._handles.seal(
            user=user, effective=effective, method=method, path=path, op=op, hidden=(scheme_node, target), now=now
        )
        pairs = [encode_param("op", op.upper())] if op else []
        pairs += [pair for pair, name, _ in iter_params(client_query) if name in _IDENTITY_PARAMS]
        pairs.append(encode_param(HANDLE_PARAM, handle))
        return "&".join(pairs)

    @staticmethod
    def is_data_step(raw_target: str) -> bool:
        """Whether ``raw_target`` carries a data-step parameter (valid or not): it never goes to the NameNode."""
        query = raw_target.partition("?")[2]
        if "%" not in query and "authgateway" not in query.lower():  # most requests: no parse
            return False
        return any(name.startswith(_OURS) for _, name, _ in iter_params(query))

    def open(
        self, raw_target: str, *, user: str, effective: str, method: str, now: float | None = None
    ) -> tuple[str, str] | None:
        """``(scheme://host:port, target)`` of the data step ``raw_target`` names, when its handle grants
        this request (``method`` by ``user`` acting as ``effective``) and the node is still allowed;
        else ``None``."""
        path, _, query = raw_target.partition("?")
        handles: list[str] = []
        ops: list[str] = []
        for _, name, value in iter_params(query):
            if name == HANDLE_PARAM:
                handles.append(value)
            elif name == "op":
                ops.append(value)
            elif name not in _IDENTITY_PARAMS:
                return None  # the node's query is sealed: nothing may be added to it
        if len(handles) != 1 or len(ops) > 1:
            return None
        grant = self._handles.open(handles[0], now)
        if grant is None or len(grant.hidden) != 2:
            return None
        op = ops[0] if ops else None
        if not grant.allows(user=user, effective=effective, method=method, path=path, op=op):
            return None
        node, target = grant.hidden
        scheme, sep, host_port = node.partition("://")
        if not sep or scheme not in ("http", "https") or not self.allowed(host_port):
            return None
        return node, target

    @staticmethod
    def answer_headers(headers: CIMultiDict[str], request: web.Request) -> BodyRewriter | None:
        """Point a data node's ``Location`` and ``Content-Location`` at the gateway's URL of the step's path
        (what the client used; the handle granted it), whatever the node wrote; the body is the file's."""
        for name in (hdrs.LOCATION, hdrs.CONTENT_LOCATION):
            if name in headers:
                client = client_view(request)
                path = (origin_form(request.raw_path) or "/").partition("?")[0]
                headers[name] = f"{client.scheme}://{client.host}{path}"
        return None
