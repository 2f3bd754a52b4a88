"""The embedded backend behind SPNEGO, as a secured HttpFS is (``embedded.auth = "kerberos"``).

A caller authenticates with ``Authorization: Negotiate`` (accepted by the
gateway's own :class:`~authplugins.kerberos.KerberosScheme` on
``embedded.principal`` from ``embedded.keytab``) and gets a ``hadoop.auth``
cookie in hadoop-auth's own format, ``u=<user>&p=<principal>&t=kerberos&e=<ms>``
followed by ``&s=`` and its HMAC-SHA256 (base64), quoted, ``Path=/``,
``HttpOnly`` and, like Hadoop's default, without ``Expires``: the ``e=``
says when it ends (``embedded.cookie_validity``).  With that cookie it needs
no handshake until then.  A request without valid credentials gets 401 with
``WWW-Authenticate: Negotiate`` in its face's format; a cookie that does not
verify or has expired is cleared on that answer.

The caller is the short name of its principal (``auth_to_local`` DEFAULT).
A ``doas`` in the query makes it act for that user where the
``[[proxy_users]]`` rules allow the caller to (Hadoop's
``hadoop.proxyuser.<caller>.*``); otherwise 403.  The identity header is
not read in this mode.

Each accepted handshake is logged at INFO on ``gateway.embedded``
("SPNEGO handshake accepted"), each refused cookie likewise: that is how an
operator (and the tests) can count them.  Neither line carries a token or
a cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web

from authplugins import Authenticated, AuthenticationError as SchemeError
from authplugins._username import check_user_name
from authplugins.kerberos import KerberosScheme
from authplugins.query import param_values

from ..groups import GroupSource, groups_known
from ..proxyusers import ProxyUsers
from .faces import Face, face_for
from .store import AccessDeniedError, AuthenticationError, BadRequestError

__all__ = ("COOKIE_NAME", "HadoopAuthCookie", "spnego_middleware")

logger = logging.getLogger("gateway.embedded")

COOKIE_NAME = "hadoop.auth"
_TYPE = "kerberos"
_SET_COOKIE = web.RequestKey("embedded_set_cookie", str)
_REPLY = web.RequestKey("embedded_negotiate_reply", tuple)
_CLEARED = f"{COOKIE_NAME}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HadoopAuthCookie:
    """Issues and verifies hadoop-auth tokens signed with one key."""

    __slots__ = ("_key", "_validity")

    def __init__(self, key: bytes, validity: int) -> None:
        self._key = key
        self._validity = validity

    def _sign(self, text: str) -> str:
        return base64.b64encode(hmac.new(self._key, text.encode(), hashlib.sha256).digest()).decode()

    def issue(self, user: str, principal: str, now: float) -> str:
        """The cookie value (unquoted) for ``user`` authenticated as ``principal``."""
        text = f"u={user}&p={principal}&t={_TYPE}&e={int((now + self._validity) * 1000)}"
        return f"{text}&s={self._sign(text)}"

    def verify(self, value: str, now: float) -> tuple[str, str] | None:
        """``(user, principal)`` of a value this key signed that has not expired, else ``None``."""
        value = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
        text, sep, signature = value.rpartition("&s=")
        if not sep or not hmac.compare_digest(signature.encode(), self._sign(text).encode()):
            return None
        fields = dict(part.partition("=")[::2] for part in text.split("&"))
        try:
            expires = int(fields["e"]) / 1000.0
            user, principal = fields["u"], fields["p"]
        except (KeyError, ValueError):
            return None
        if fields.get("t") != _TYPE or expires <= now or not user:
            return None
        return user, principal


def _cookie_value(request: web.Request) -> str | None:
    return request.cookies.get(COOKIE_NAME)


def spnego_middleware(
    *, scheme: KerberosScheme, cookies: HadoopAuthCookie, proxy_users: ProxyUsers, groups: GroupSource | None,
    faces: tuple[Face, ...], user_key: web.RequestKey[str],
) -> Any:
    """Authenticate the caller (cookie, else SPNEGO), apply its ``doas``, put the user under ``user_key``.

    ``groups`` is the source ``proxy_users`` asks (``None``: a static one, always in memory).
    """

    def unauthorized(request: web.Request, message: str, clear: bool) -> web.Response:
        response = face_for(faces, request.raw_path).error_response(AuthenticationError(message))
        response.headers[hdrs.WWW_AUTHENTICATE] = "Negotiate"
        if clear:
            response.headers.add(hdrs.SET_COOKIE, _CLEARED)
        return response

    @web.middleware
    async def impl(request: web.Request, handler: Handler) -> web.StreamResponse:
        now = time.time()
        caller: str | None = None
        value = _cookie_value(request)
        refused_cookie = False
        if value:
            verified = cookies.verify(value, now)
            if verified is None:
                refused_cookie = True
                logger.info("refused a hadoop.auth cookie (expired or not signed here) from %s", request.remote)
            else:
                caller = verified[0]
        if caller is None:
            if not request.headers.get(hdrs.AUTHORIZATION, "").lower().startswith("negotiate "):
                return unauthorized(request, "Authentication required", refused_cookie)
            try:
                result = await scheme.authenticate(request)
            except SchemeError as exc:
                if exc.status == 401:
                    return unauthorized(request, exc.message, refused_cookie)
                raise (AccessDeniedError if exc.status == 403 else BadRequestError)(exc.message) from exc
            if not isinstance(result, Authenticated):
                return unauthorized(request, "Authentication required", refused_cookie)
            caller = result.user
            logger.info("SPNEGO handshake accepted for %s from %s", result.principal, request.remote)
            request[_SET_COOKIE] = f'{COOKIE_NAME}="{cookies.issue(result.user, result.principal, now)}"; Path=/; HttpOnly'
            request[_REPLY] = result.headers
        wanted = {v for v in param_values(request.query_string, "doas") if v}
        user = caller
        if wanted and wanted != {caller}:
            if len(wanted) > 1:
                raise BadRequestError("doas is given more than once")
            (user,) = wanted
            why = check_user_name(user)
            if why is not None:
                raise BadRequestError(why.replace("user.name", "doas"))
            if groups is not None:
                await groups_known(groups.prefetch, user)  # the rules ask for them synchronously
            refusal = proxy_users.refusal(caller, user, request.remote)
            if refusal is not None:
                logger.info("refused doas=%s for %s from %s: %s", user, caller, request.remote, refusal)
                raise AccessDeniedError(refusal)
        request[user_key] = user
        return await handler(request)

    return impl


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Put the cookie and the mutual-authentication token of a handshake on its answer, streamed or not."""
    set_cookie = request.get(_SET_COOKIE)
    if set_cookie is not None:
        response.headers.add(hdrs.SET_COOKIE, set_cookie)
        for name, value in request.get(_REPLY, ()):
            response.headers[name] = value
