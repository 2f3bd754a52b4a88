"""Backend dialects: how each kind of backend is told who the user is, how
its redirects are rewritten and what its error bodies look like.

A dialect turns an authenticated request into a :class:`~gateway.proxy.Forward`
and shapes every error the gateway itself answers on that route, so a client
library parses gateway errors exactly as it parses the backend's own.
"""

from __future__ import annotations

import ipaddress
import re
from typing import ClassVar

from aiohttp import hdrs, web
from multidict import CIMultiDict
from yarl import URL

from gateway.hoopjson import failure_response
from gateway.identity import SIGNATURE_HEADER, IdentitySigner
from gateway.proxy import Forward
from gateway.query import rewrite_query

__all__ = ("DIALECTS", "Dialect", "HoopDialect")


class Dialect:
    """Identity injection, redirect rewriting and error bodies of one backend kind."""

    name: ClassVar[str]
    # Query parameters that carry identity, scrubbed from every request
    # (compared in lower case after percent-decoding).
    identity_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, backend_url: str, identity_header: str, signer: IdentitySigner | None) -> None:
        self._identity_header = identity_header
        self._signer = signer
        base = URL(backend_url) if backend_url else None
        self._backend = _origin_key(base) if base is not None and base.host else None

    @property
    def reserved_headers(self) -> tuple[str, ...]:
        """Headers a client may never set: the backend trusts them."""
        return (self._identity_header, SIGNATURE_HEADER)

    def target(self, raw_target: str, user: str) -> str:
        """The raw path and query to send upstream for ``user``."""
        if not self.identity_params:
            return raw_target
        path, sep, query = raw_target.partition("?")
        query = rewrite_query(query, self.identity_params, self.identity_query(user))
        return f"{path}?{query}" if query else path

    def identity_query(self, user: str) -> tuple[tuple[str, str], ...]:
        """Query parameters that tell the backend who ``user`` is."""
        return ()

    def forward(self, request: web.Request, raw_target: str, user: str) -> Forward:
        """What to send upstream for ``request`` (whose origin-form target is
        ``raw_target``) on behalf of ``user``."""
        target = self.target(raw_target, user)
        headers: tuple[tuple[str, str], ...] = ((self._identity_header, user),)
        if self._signer is not None:
            headers += ((SIGNATURE_HEADER, self._signer.sign(user, request.method, target)),)
        return Forward(request.method, target, headers)

    def rewrite_response_headers(self, headers: CIMultiDict[str], request: web.Request) -> None:
        """Point ``Location`` and ``Content-Location`` at the backend back at the gateway."""
        if self._backend is None:
            return
        for name in _LOCATION_HEADERS:
            value = headers.get(name)
            if value is None:
                continue
            rest = self._backend_relative(value)
            if rest is not None:
                headers[name] = f"{request.scheme}://{request.host}{rest}"

    def _backend_relative(self, location: str) -> str | None:
        """The path, query and fragment of ``location`` when it names the backend, else ``None``."""
        match = _ABSOLUTE.match(location)
        if match is None:
            return None
        try:
            url = URL(match.group(0))
        except ValueError:
            return None
        if not url.host or _origin_key(url) != self._backend:
            return None
        return location[match.end() :]

    def error_response(
        self, status: int, message: str, *, exception: str = "", headers: CIMultiDict[str] | None = None
    ) -> web.Response:
        """An error the gateway answers itself, in the backend's own format."""
        raise NotImplementedError


_LOCATION_HEADERS = (hdrs.LOCATION, hdrs.CONTENT_LOCATION)
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")  # scheme and authority
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def _origin_key(url: URL) -> tuple[str, str, int | None]:
    """Scheme, host and port, compared case-insensitively, with every loopback name as one."""
    host = (url.host or "").lower().rstrip(".")
    try:
        if ipaddress.ip_address(host).is_loopback:
            host = "localhost"
    except ValueError:
        if host in _LOOPBACK_NAMES:
            host = "localhost"
    return url.scheme.lower(), host, url.port


def _default_exception(status: int) -> str:
    return {
        400: "IllegalArgumentException",
        401: "AuthenticationException",
        403: "AccessControlException",
        502: "BackendUnavailableException",
        503: "ServiceUnavailableException",
        504: "BackendTimeoutException",
    }.get(status, "GatewayException")


class HoopDialect(Dialect):
    """Hoop / HttpFS with pseudo authentication behind the gateway.

    The backend learns the user from ``user.name`` (replaced by the
    authenticated user) and from the identity header; ``doas`` is removed
    until proxy-user rules exist.
    """

    name = "hoop"
    identity_params = frozenset({"user.name", "doas"})

    def identity_query(self, user: str) -> tuple[tuple[str, str], ...]:
        return (("user.name", user),)

    def error_response(
        self, status: int, message: str, *, exception: str = "", headers: CIMultiDict[str] | None = None
    ) -> web.Response:
        return failure_response(status, message, exception or _default_exception(status), headers)


DIALECTS: dict[str, type[Dialect]] = {"hoop": HoopDialect}
