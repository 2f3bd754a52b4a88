"""The authentication filter, with hadoop-auth's semantics.

1. A valid session cookie authenticates (the first copy that verifies).
2. Otherwise the configured schemes are asked in order; the first that
   authenticates wins and a fresh cookie is issued on the response.
3. A scheme that refuses presented credentials ends the exchange with its
   status (400/401/403); when no scheme succeeds, 401 with one
   ``WWW-Authenticate`` header per scheme.  Either way a cookie the client
   sent is cleared.
4. Once authenticated, a ``doas`` in the query (any spelling) is honoured
   only where the proxy-user rules allow it (:mod:`gateway.proxyusers`):
   the request then goes on as that user, :data:`SESSION` keeping who
   asked; otherwise 403.  The session cookie always names who
   authenticated, never whom it acted for.  The client address the
   rules' ``hosts`` see is the verified one (:mod:`gateway.forwarded`).
5. The user the request acts for must then pass ``authorize`` (the route's
   users and groups), else 403.

Before the rules of 4 and 5 ask for a user's groups, ``groups_pending``
(:meth:`gateway.groups.GroupSource.prefetch` where they will) is awaited,
so that a group lookup never runs on the event loop.

Cookies are set through ``on_response_prepare``, so the same path serves
streamed proxy responses, error bodies and challenges.

What the filter decided is left on the request for the logs and metrics:
:data:`SESSION`, :data:`BY_COOKIE`, :data:`IDENTITY`, :data:`REFUSAL` and
:data:`HANDSHAKE`.  The reasons of refusals are logged on ``gateway.auth``;
the audit line of every request is written once it is answered
(:mod:`gateway.requestlog`).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import hdrs, web
from multidict import CIMultiDict

from authplugins import Authenticated, AuthenticationError, AuthScheme, Challenge
from authplugins._username import check_user_name
from authplugins.query import param_values
from gateway.config import CookieConfig
from gateway.cookie import CookieCodec, SessionToken
from gateway.cookieheader import cookie_values
from gateway.forwarded import client_view
from gateway.groups import StaticGroups, groups_known
from gateway.log import auth_logger
from gateway.proxyusers import ProxyUsers

__all__ = ("BY_COOKIE", "HANDSHAKE", "IDENTITY", "REFUSAL", "SESSION", "AuthFilter", "Refusal")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

class ImpersonationRules(Protocol):
    """Decides a ``doas`` (:class:`~gateway.proxyusers.ProxyUsers`, or what stands for the rules in force)."""

    def refusal(self, real: str, effective: str, remote: str | None) -> str | None:
        """Why ``real`` may not act as ``effective`` from ``remote``; ``None`` when it may."""
        ...


class ErrorResponder(Protocol):
    """Renders an error the filter answers (400, 401 or 403) in the format ``request``'s route speaks."""

    def __call__(
        self, request: web.Request, status: int, message: str, *, headers: CIMultiDict[str] | None = None
    ) -> web.Response: ...


IDENTITY = web.RequestKey("identity", SessionToken)
"""Whom the request acts for: the authenticated user, or whom its ``doas`` named."""
SESSION = web.RequestKey("session", SessionToken)
"""The session that authenticated (its user is who authenticated, whoever the request acts for)."""
BY_COOKIE = web.RequestKey("by_cookie", bool)
"""Whether the session came from the request's cookie (else a scheme authenticated it just now)."""


class Refusal(str, enum.Enum):
    """Why the filter refused a request: a metric label, so a short fixed set."""

    NO_CREDENTIALS = "no_credentials"  # 401: nothing to authenticate with (often the first leg of SPNEGO)
    INVALID_COOKIE = "invalid_cookie"  # 401: only a session cookie that did not verify or had expired
    REJECTED = "rejected"  # 401: a scheme found the credentials wrong
    MALFORMED = "malformed"  # 400: a scheme could not read the credentials
    DENIED = "denied"  # 403: a scheme authenticated someone it does not let in
    BAD_DOAS = "bad_doas"  # 400: doas given twice or not a user name
    IMPERSONATION = "impersonation"  # 403: the proxy-user rules refuse the doas
    ROUTE = "route"  # 403: the route's users and groups do not include the user
    CSRF = "csrf"  # 400: a browser's request without the custom header (gateway.csrf), refused before the filter


REFUSAL = web.RequestKey("refusal", tuple[Refusal, str])
"""Why the filter refused the request, and the scheme concerned (``""`` for none)."""
HANDSHAKE = web.RequestKey("handshake", tuple[str, float])
"""The scheme that examined presented credentials, and the seconds it took (accepted or refused)."""
_STATUS_REFUSALS = {400: Refusal.MALFORMED, 403: Refusal.DENIED}


@dataclass(frozen=True, slots=True)
class _CookieAction:
    value: str | None  # None clears the cookie
    max_age: int = 0
    headers: tuple[tuple[str, str], ...] = ()


_COOKIE_ACTION = web.RequestKey("cookie_action", _CookieAction)
_CLEAR = _CookieAction(None)
# Verified cookie values and their tokens: a value is immutable and signed, so
# re-verifying it on every request of a session is wasted work.  Expiry is
# still checked on every use.  Bounded: cleared wholesale when full.
_CACHE_SIZE = 8192


class AuthFilter:
    """Builds the middleware and the response-prepare hook for one app."""

    def __init__(
        self,
        *,
        schemes: Sequence[AuthScheme],
        codec: CookieCodec,
        cookie: CookieConfig,
        error_response: ErrorResponder,
        force_secure: bool = False,
        proxy_users: ImpersonationRules | None = None,
        authorize: Callable[[web.Request, str], str | None] | None = None,
        groups_pending: Callable[[web.Request, str], Awaitable[object] | None] | None = None,
    ) -> None:
        if not schemes:
            raise ValueError("at least one scheme is required")
        self._schemes = tuple(schemes)
        self._codec = codec
        self._cookie = cookie
        self._secure = cookie.secure or force_secure
        self._error_response = error_response
        # Without rules nobody may act for anyone else.
        self._proxy_users: ImpersonationRules = (
            proxy_users if proxy_users is not None else ProxyUsers((), StaticGroups({}))
        )
        self._authorize = authorize
        self._groups_pending = groups_pending
        self._cache: dict[str, SessionToken] = {}
        self._cache_generation = codec.keys.generation
        attributes = f"; Path={cookie.path}"
        if cookie.domain:
            attributes += f"; Domain={cookie.domain}"
        attributes += f"; HttpOnly; SameSite={cookie.samesite}"
        if self._secure:
            attributes += "; Secure"
        self._attributes = attributes
        # An expiry in the past, so clients drop the cookie instead of
        # sending an empty one forever.
        self._clear_header = f"{cookie.name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT{attributes}"

    def _from_cookie(self, value: str, now: float) -> SessionToken | None:
        if self._cache_generation != self._codec.keys.generation:
            # The keys changed: what a retired key verified must not stay accepted.
            self._cache.clear()
            self._cache_generation = self._codec.keys.generation
        token = self._cache.get(value)
        if token is None:
            token = self._codec.decode(value, now)
            if token is None:
                return None
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[value] = token
        elif token.expires_at <= now:
            del self._cache[value]
            return None
        return token

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        now = time.time()
        # Every copy of our cookie, in every Cookie line, read exactly as the
        # proxy's scrubber reads them; the first that verifies wins, as in
        # hadoop-auth.  A bad copy beside a good one (say, planted from a
        # sibling domain) neither authenticates nor logs the user out.
        sent = cookie_values(request.headers.getall(hdrs.COOKIE, ()), self._cookie.name)
        for value in sent:
            token = self._from_cookie(value, now)
            if token is not None:
                request[BY_COOKIE] = True
                return await self._act(request, handler, token)
        if sent:
            auth_logger.info("ignoring an invalid or expired session cookie from %s", client_view(request).address)

        challenges: list[Challenge] = []
        for scheme in self._schemes:
            started = time.perf_counter()
            try:
                result = await scheme.authenticate(request)
            except AuthenticationError as exc:
                request[HANDSHAKE] = (scheme.type_name, time.perf_counter() - started)
                request[REFUSAL] = (_STATUS_REFUSALS.get(exc.status, Refusal.REJECTED), scheme.type_name)
                auth_logger.info(
                    "authentication refused scheme=%s status=%s remote=%s reason=%s",
                    scheme.type_name, exc.status, client_view(request).address, exc.message,
                )
                if sent:
                    request[_COOKIE_ACTION] = _CLEAR
                headers: CIMultiDict[str] = CIMultiDict(exc.headers)
                if exc.status == 401:
                    for other in self._schemes:
                        headers.add(hdrs.WWW_AUTHENTICATE, other.challenge.www_authenticate)
                return self._error_response(request, exc.status, exc.message, headers=headers)
            if isinstance(result, Authenticated):
                request[HANDSHAKE] = (scheme.type_name, time.perf_counter() - started)
                return await self._accept(request, handler, result, now)
            challenges.append(result)

        request[REFUSAL] = (Refusal.INVALID_COOKIE if sent else Refusal.NO_CREDENTIALS, "")
        if sent:
            request[_COOKIE_ACTION] = _CLEAR
        headers = CIMultiDict((hdrs.WWW_AUTHENTICATE, c.www_authenticate) for c in challenges)
        return self._error_response(request, 401, "Authentication required", headers=headers)

    async def _accept(
        self, request: web.Request, handler: Handler, result: Authenticated, now: float
    ) -> web.StreamResponse:
        expires = int(now) + self._cookie.validity
        if result.expires_at is not None:
            expires = min(expires, int(result.expires_at))
        token = SessionToken(result.user, result.principal, result.scheme, int(now), expires)
        auth_logger.info(
            "authenticated user=%s principal=%s scheme=%s remote=%s",
            token.user, token.principal, token.scheme, client_view(request).address,
        )
        request[BY_COOKIE] = False
        request[_COOKIE_ACTION] = _CookieAction(self._codec.encode(token), token.remaining(now), result.headers)
        return await self._act(request, handler, token)

    async def _act(self, request: web.Request, handler: Handler, token: SessionToken) -> web.StreamResponse:
        """Go on as ``token``'s user, or as the one a ``doas`` names where the rules allow it."""
        request[SESSION] = token
        wanted = {value for value in param_values(request.query_string, "doas") if value}
        if not wanted or wanted == {token.user}:
            return await self._authorized(request, handler, token)
        if len(wanted) > 1:
            request[REFUSAL] = (Refusal.BAD_DOAS, "")
            return self._error_response(request, 400, "doas is given more than once")
        (effective,) = wanted
        why = check_user_name(effective)
        if why is not None:
            request[REFUSAL] = (Refusal.BAD_DOAS, "")
            return self._error_response(request, 400, why.replace("user.name", "doas"))
        if self._groups_pending is not None and self._groups_pending(request, effective) is not None:
            await groups_known(functools.partial(self._groups_pending, request), effective)
        refusal = self._proxy_users.refusal(token.user, effective, client_view(request).address)
        if refusal is not None:
            request[REFUSAL] = (Refusal.IMPERSONATION, "")
            auth_logger.info(
                "impersonation refused user=%s doas=%s remote=%s reason=%s",
                token.user, effective, client_view(request).address, refusal,
            )
            return self._error_response(request, 403, refusal)
        return await self._authorized(request, handler, dataclasses.replace(token, user=effective))

    async def _authorized(self, request: web.Request, handler: Handler, acting: SessionToken) -> web.StreamResponse:
        """Go on as ``acting`` if it may use what the request asks for (its route), else 403."""
        if self._authorize is not None:
            if self._groups_pending is not None and self._groups_pending(request, acting.user) is not None:
                # In a thread: a slow NSS holds up this request only.
                await groups_known(functools.partial(self._groups_pending, request), acting.user)
            refusal = self._authorize(request, acting.user)
            if refusal is not None:
                request[REFUSAL] = (Refusal.ROUTE, "")
                auth_logger.info(
                    "authorization refused user=%s authenticated=%s remote=%s reason=%s",
                    acting.user, request[SESSION].user, client_view(request).address, refusal,
                )
                return self._error_response(request, 403, refusal)
        request[IDENTITY] = acting
        return await handler(request)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        # Written as a header: aiohttp serialises response.cookies before this
        # hook runs, and this hook is the one place every response passes.
        action = request.get(_COOKIE_ACTION)
        if action is None:
            return
        if action.value is None:
            response.headers.add(hdrs.SET_COOKIE, self._clear_header)
            return
        response.headers.add(
            hdrs.SET_COOKIE, f"{self._cookie.name}={action.value}; Max-Age={action.max_age}{self._attributes}"
        )
        for name, value in action.headers:
            response.headers.add(name, value)
