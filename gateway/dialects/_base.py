"""The dialect contract and the mechanics every dialect shares."""

from __future__ import annotations

import abc
import ipaddress
import re
from collections.abc import Sequence
from typing import ClassVar

from aiohttp import hdrs, web
from multidict import CIMultiDict
from yarl import URL

from authplugins.query import rewrite_query
from gateway.forwarded import client_view
from gateway.identity import SIGNATURE_HEADER, IdentitySigner
from gateway.proxy import BodyRewriter, Forward
from gateway.wire import Fault, WireFormat, error_response, fault_for_status

from ._datanode import DataNodeRedirects
from ._rewrite import OriginReplacer

__all__ = ("SCRUBBED_PARAMS", "Dialect")

SCRUBBED_PARAMS = frozenset({"user.name", "doas", "delegation"})
"""Query parameters that carry identity in some backend's reading: dropped from
every request on every route, in every spelling (compared in lower case after
percent-decoding), before a dialect adds its own."""


class Dialect(abc.ABC):
    """Identity injection, redirect rewriting and error bodies of one backend kind.

    One instance serves every request of its route; it keeps no per-request
    state.  Every dialect sends the user in the identity header (signed when
    the gateway has an identity key) and scrubs :data:`SCRUBBED_PARAMS`;
    a subclass says what else tells its backend who the user is and names
    the wire format of its errors.
    """

    name: ClassVar[str]

    def __init__(
        self,
        *,
        backend_url: str | Sequence[str],
        identity_header: str,
        signer: IdentitySigner | None,
        datanodes: DataNodeRedirects | None = None,
        impersonate: bool = False,
    ) -> None:
        self._identity_header = identity_header
        self._user_param = "doas" if impersonate else "user.name"
        """How the user is named in the query where a dialect names it there: ``user.name`` to a
        backend that trusts the gateway, ``doas`` to one the gateway authenticates to as itself
        (a proxy user), as Knox does."""
        self._signer = signer
        self.datanodes = datanodes
        """Where the data steps of this route's redirects may go; ``None``: nowhere but the backend."""
        urls = (backend_url,) if isinstance(backend_url, str) else tuple(backend_url)
        bases = [base for base in (URL(url) for url in urls if url) if base.host]
        # Every backend of the route (several: fail-over) is rewritten, whichever answered.
        self._backends = frozenset(_origin_key(base) for base in bases)
        # A backend names itself in bodies as it was addressed (the Host the proxy sends).
        self._backend_origins = tuple(dict.fromkeys(str(base.origin()) for base in bases))

    @property
    @abc.abstractmethod
    def wire_format(self) -> WireFormat:
        """The format of the errors this backend answers, and so of the gateway's own on its route."""

    @abc.abstractmethod
    def identity_query(self, user: str) -> tuple[tuple[str, str], ...]:
        """Query parameters that tell the backend who ``user`` is; empty when the header alone does."""

    @property
    def reserved_headers(self) -> tuple[str, ...]:
        """Headers a client may never set: the backend trusts them."""
        return (self._identity_header, SIGNATURE_HEADER)

    def target(self, raw_target: str, user: str) -> str:
        """The raw path and query to send upstream for ``user``."""
        path, _, query = raw_target.partition("?")
        query = rewrite_query(query, SCRUBBED_PARAMS, self.identity_query(user))
        return f"{path}?{query}" if query else path

    def forward(self, request: web.Request, raw_target: str, user: str) -> Forward:
        """What to send upstream for ``request`` (whose origin-form target is
        ``raw_target``) on behalf of ``user``."""
        target = self.target(raw_target, user)
        headers: tuple[tuple[str, str], ...] = ((self._identity_header, user),)
        if self._signer is not None:
            headers += ((SIGNATURE_HEADER, self._signer.sign(user, request.method, target)),)
        return Forward(request.method, target, headers, user)

    def forward_verbatim(self, request: web.Request, target: str, user: str) -> Forward:
        """Like :meth:`forward`, for a ``target`` the backend itself made (a signed data-node
        redirect): its query is kept as it is, only the identity header is added."""
        headers: tuple[tuple[str, str], ...] = ((self._identity_header, user),)
        if self._signer is not None:
            headers += ((SIGNATURE_HEADER, self._signer.sign(user, request.method, target)),)
        return Forward(request.method, target, headers, user)

    def rewrite_response_headers(self, headers: CIMultiDict[str], request: web.Request) -> BodyRewriter | None:
        """Point ``Location`` and ``Content-Location`` at the backend back at the gateway; for a JSON
        body, the rewriter that does the same to the backend's URLs in it (Hoop's ``path`` and
        ``homeDir``, the ``Location`` of WebHDFS's ``noredirect`` answer)."""
        if not self._backends:
            return None
        client = client_view(request)  # the scheme and host the client used, through trusted proxies
        for name in _LOCATION_HEADERS:
            value = headers.get(name)
            if value is None:
                continue
            rest = self._backend_relative(value)
            if rest is not None:
                headers[name] = f"{client.scheme}://{client.host}{rest}"
        if not _is_json(headers.get(hdrs.CONTENT_TYPE, "")):
            return None
        # The Host the client sent goes into a JSON string: only a plain one, else the URLs become paths.
        gateway = f"{client.scheme}://{client.host}" if _PLAIN_HOST.fullmatch(client.host) else ""
        return OriginReplacer(self._backend_origins, gateway)

    def _backend_relative(self, location: str) -> str | None:
        """The path, query and fragment of ``location`` when it names the backend, else ``None``."""
        match = _ABSOLUTE.match(location)
        if match is None:
            return None
        try:
            url = URL(match.group(0))
        except ValueError:
            return None
        if not url.host or _origin_key(url) not in self._backends:
            return None
        return location[match.end() :]

    def error_response(self, status: int, message: str, *, headers: CIMultiDict[str] | None = None) -> web.Response:
        """An error the gateway answers itself (a status :func:`~gateway.wire.fault_for_status` knows),
        in the backend's own format."""
        return self.fail(fault_for_status(status), message, headers=headers)

    def fail(self, fault: Fault, message: str, *, headers: CIMultiDict[str] | None = None) -> web.Response:
        """``fault`` in the backend's own format."""
        return error_response(self.wire_format, fault, message, headers=headers)


_LOCATION_HEADERS = (hdrs.LOCATION, hdrs.CONTENT_LOCATION)
_PLAIN_HOST = re.compile(r"[A-Za-z0-9.\-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")

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
