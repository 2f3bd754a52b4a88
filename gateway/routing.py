"""Routes: which backend and dialect serve a request, by the longest path prefix.

A :class:`Router` is built once at start from every route; resolving a path
is a walk down the prefixes, longest first.  The gateway resolves the route
before it authenticates, so even a 401 challenge comes in the format of the
route's dialect.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from gateway.dialects import Dialect

__all__ = ("Route", "Router", "prefix_problem", "AmbiguousPath")


class AmbiguousPath(ValueError):
    """The raw path and the path a backend would see after decoding lead to different routes.

    ``route`` is the raw path's (its format answers the refusal); the
    message is the decoded path's route prefix.
    """

    def __init__(self, route: Route, decoded_prefix: str) -> None:
        super().__init__(decoded_prefix)
        self.route = route


@dataclass(frozen=True, slots=True)
class Route:
    """Requests whose path starts with ``prefix`` go to ``backend_urls`` (several: failing over
    between them, :mod:`gateway.failover`), spoken to in ``dialect``.

    With ``users`` or ``groups``, only those users, and members of those
    groups, may use the route at all (:meth:`refusal`); without either,
    everyone who authenticated may.
    """

    prefix: str
    backend_urls: tuple[str, ...]
    dialect: Dialect
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def refusal(self, user: str, groups_of: Callable[[str], frozenset[str]]) -> str | None:
        """Why ``user`` may not use this route, or ``None``; ``groups_of`` is asked only when needed."""
        if not self.users and not self.groups:
            return None
        if user in self.users or (self.groups and not self.groups.isdisjoint(groups_of(user))):
            return None
        return f"User {user} may not use {self.prefix}"

    def matches(self, path: str) -> bool:
        # "/webhdfs/v1" is the root of the "/webhdfs/v1/" route, not of the catch-all.
        return path.startswith(self.prefix) or path == self.prefix[:-1]


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be a route's prefix, or ``None``."""
    if not prefix.startswith("/") or not prefix.endswith("/"):
        return "must start and end with '/'"
    if "?" in prefix or "#" in prefix:
        return "must be a path, without '?' or '#'"
    return None


class Router:
    """The longest-prefix matcher over a fixed set of routes, one of which is ``/``."""

    __slots__ = ("_routes",)

    def __init__(self, routes: Iterable[Route]) -> None:
        ordered = sorted(routes, key=lambda r: len(r.prefix), reverse=True)
        seen: set[str] = set()
        for route in ordered:
            why = prefix_problem(route.prefix)
            if why is not None:
                raise ValueError(f"route prefix {route.prefix!r}: {why}")
            if route.prefix in seen:
                raise ValueError(f"route prefix {route.prefix!r} is given twice")
            seen.add(route.prefix)
        if "/" not in seen:
            raise ValueError("a route for '/' is required: every path must have one")
        self._routes = tuple(ordered)

    @property
    def routes(self) -> tuple[Route, ...]:
        """Every route, longest prefix first."""
        return self._routes

    @property
    def default(self) -> Route:
        """The route for ``/``: the one for requests without a path."""
        return self._routes[-1]

    def resolve(self, path: str) -> Route:
        """The route of ``path``, the raw (undecoded) path of a request target.

        A backend decodes escapes and dot segments before it looks at a path,
        so ``/%77ebhdfs/v1/x`` or ``/a/../webhdfs/v1/x`` would reach the
        WebHDFS face through the route for ``/``, with that route's identity
        and rules.  Jetty and Tomcat (HttpFS, the NameNode) also drop each
        segment's path parameters (``;jsessionid=1``) first, so to them
        ``/restricted;/x`` is ``/restricted/x``.  The raw path is forwarded
        as the client wrote it; it must therefore lead to the same route as
        the path such a backend reads, or the request is refused
        (:class:`AmbiguousPath`).  A ``;`` within one route (a file name
        with one) changes nothing and passes; an escaped one (``%3B``) is
        part of a name to every backend.
        """
        route = self._match(path)
        if "%" in path or "/." in path or "//" in path or ";" in path:
            decoded = _normalized(path)
            other = self._match(decoded)
            if other is not route:
                raise AmbiguousPath(route, other.prefix)
        return route

    def _match(self, path: str) -> Route:
        for route in self._routes:
            if route.matches(path):
                return route
        raise AssertionError("unreachable: the '/' route matches every path")


_PATH_PARAMETERS = re.compile(r";[^/]*")  # RFC 3986 3.3: a segment's ";" parameters, as Jetty's URIUtil drops them


def _normalized(path: str) -> str:
    """``path`` without path parameters, decoded, and with its dot segments and repeated slashes
    resolved, as a servlet backend reads it (parameters go before decoding: ``%3B`` is no parameter)."""
    decoded = unquote(_PATH_PARAMETERS.sub("", path), errors="surrogateescape")
    normal = posixpath.normpath("/" + decoded.lstrip("/"))
    if decoded.endswith("/") and not normal.endswith("/"):
        normal += "/"  # "/webhdfs/v1/" stays inside its route
    return normal
