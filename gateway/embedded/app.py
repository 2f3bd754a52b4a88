"""The embedded backend's aiohttp application: the store behind its REST faces.

The app verifies the gateway-signed identity, picks the face by path
prefix, lets it answer over the store and renders any failure in that
face's format.  See the package docstring for the behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.client_exceptions import ClientPayloadError

from ..config import EmbeddedConfig
from ..csrf import CsrfGuard
from ..groups import GroupSource, groups_known
from ..proxyusers import ProxyUsers
from ..serving import BodyTimeoutError
from ..wire import Fault, error_response
from ..identity import SIGNATURE_HEADER, IdentitySigner
from .faces import STREAMING_KEY, Face, face_for
from .faces import alluxio, hoop, webhdfs
from .store import AuthenticationError, BadRequestError, FsError, IOFailureError, Store

if TYPE_CHECKING:
    from authplugins.kerberos import KerberosScheme

__all__ = ("BACKEND_KEY", "LOCAL_HANDLER", "build_embedded_app")

logger = logging.getLogger("gateway.embedded")

_USER_KEY = web.RequestKey("embedded_user", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BACKEND_KEY = web.AppKey("embedded_backend", Store)
LOCAL_HANDLER: web.AppKey[Handler] = web.AppKey("embedded_handler")
"""The backend as one handler, for a gateway in this process to hand requests to (started with the app)."""


def _error_middleware(faces: tuple[Face, ...]) -> Any:
    @web.middleware
    async def impl(request: web.Request, handler: Handler) -> web.StreamResponse:
        face = face_for(faces, request.raw_path)
        try:
            return await handler(request)
        except FsError as exc:
            if request.get(STREAMING_KEY):
                raise
            return face.error_response(exc)
        except BodyTimeoutError as exc:  # server.body_timeout: the store has let go of the upload
            logger.info("request body too slow for %s %s: %s", request.method, request.path, exc)
            return error_response(face.wire, Fault.REQUEST_TIMEOUT, str(exc))
        except ClientPayloadError as exc:
            logger.info("incomplete request body for %s %s: %s", request.method, request.path, exc)
            return face.error_response(BadRequestError("Incomplete request body"))
        except web.HTTPException:
            raise
        except Exception:
            if request.get(STREAMING_KEY):
                raise
            # Never a traceback or a host path in the answer; the log has both.
            logger.exception("internal failure on %s %s", request.method, request.path)
            return face.error_response(IOFailureError("Internal error in the embedded backend"))

    return impl


def _identity_middleware(*, signer: IdentitySigner, identity_header: str) -> Any:
    """Trust only identities the gateway signed for exactly this request line."""
    if not identity_header or any(c.isspace() or c == ":" for c in identity_header):
        raise ValueError(f"identity_header = {identity_header!r}: must be an HTTP header name")
    if identity_header.lower() == SIGNATURE_HEADER.lower():
        raise ValueError(f"identity_header = {identity_header!r}: must differ from {SIGNATURE_HEADER}")

    @web.middleware
    async def impl(request: web.Request, handler: Handler) -> web.StreamResponse:
        users = request.headers.getall(identity_header, [])
        signatures = request.headers.getall(SIGNATURE_HEADER, [])
        if len(users) != 1 or len(signatures) != 1:
            raise AuthenticationError("Authentication required: missing signed identity")
        user = users[0]
        if not user or not user.isprintable() or any(c.isspace() or c in "/:" for c in user):
            raise AuthenticationError("Authentication required: invalid identity")
        if not signer.verify(signatures[0], user, request.method, request.raw_path):
            raise AuthenticationError("Authentication required: invalid identity signature")
        request[_USER_KEY] = user
        return await handler(request)

    return impl


def _csrf_middleware(csrf: CsrfGuard, faces: tuple[Face, ...], identity: Any) -> Any:
    """``identity`` behind the CSRF check: a forged request costs no handshake."""

    @web.middleware
    async def impl(request: web.Request, handler: Handler) -> web.StreamResponse:
        forged = csrf.refusal(request.method, request.headers)
        if forged is not None:
            logger.info("refused a %s without the CSRF header from %s", request.method, request.remote)
            raise BadRequestError(forged)
        return await identity(request, handler)  # type: ignore[no-any-return]

    return impl


def _handler(store: Store, faces: tuple[Face, ...], identity: Any, groups: GroupSource | None) -> Handler:
    """The whole backend as one handler: failures rendered per face, the caller authenticated
    (by ``identity``, a middleware), the face.

    It needs nothing of the app the request came through, so a gateway in
    this process may hand it requests directly (:data:`LOCAL_HANDLER`).
    """
    errors = _error_middleware(faces)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        face = face_for(faces, request.raw_path)
        user = request[_USER_KEY]
        if groups is not None and groups.prefetch(user) is not None:
            await groups_known(groups.prefetch, user)  # the store's permissions ask for them synchronously
        return await face.handle(request, store, store.principal(user))

    async def verified(request: web.Request) -> web.StreamResponse:
        return await identity(request, dispatch)  # type: ignore[no-any-return]

    async def handle(request: web.Request) -> web.StreamResponse:
        return await errors(request, verified)  # type: ignore[no-any-return]

    return handle


async def _sweep_streams(store: Store) -> None:
    """Remove abandoned streams now and then, so their bytes go even if no stream is opened."""
    while True:
        await asyncio.sleep(store.stream_sweep_s)
        try:
            store.expire_streams()
        except Exception:
            logger.exception("could not remove expired streams; trying again later")


def build_embedded_app(
    config: EmbeddedConfig,
    *,
    signer: IdentitySigner | None,
    identity_header: str,
    groups: GroupSource | None = None,
    proxy_users: ProxyUsers | None = None,
    cookie_key: bytes | None = None,
    csrf: CsrfGuard | None = None,
) -> web.Application:
    """The embedded backend serving ``config.root``; see the package docstring.

    ``groups`` is where users' groups come from (``[groups]``; by default
    ``config.groups``).  With ``config.auth == "kerberos"`` callers
    authenticate with SPNEGO (:mod:`._spnego`): ``proxy_users`` say who may
    act for whom, ``cookie_key`` signs the ``hadoop.auth`` cookie, and
    ``signer`` is not used; otherwise ``signer`` verifies the identity header.
    ``csrf``, with Kerberos, refuses a browser's forged request before the
    handshake (:mod:`gateway.csrf`); signed identities come from the gateway,
    which checked already.

    Configuration problems raise ``ValueError`` here; the root, metadata
    store and I/O threads are opened when the app starts (``cleanup_ctx``).
    """
    store = Store(config, groups)
    faces: tuple[Face, ...] = (hoop.FACE, webhdfs.FACE, alluxio.FACE)
    scheme: KerberosScheme | None = None
    app = web.Application()
    if config.auth == "kerberos":
        if proxy_users is None or cookie_key is None:
            raise ValueError('embedded.auth = "kerberos" needs the proxy-user rules and a cookie key')
        from authplugins.kerberos import KerberosOptions, KerberosScheme

        from ._spnego import HadoopAuthCookie, on_response_prepare, spnego_middleware

        scheme = KerberosScheme.from_options(KerberosOptions(
            keytab=config.keytab,
            principal=config.principal,
            replay_cache=f"file2:{Path(config.root) / '.authgateway' / 'backend.rcache2'}",
        ))
        identity = spnego_middleware(
            scheme=scheme,
            cookies=HadoopAuthCookie(cookie_key, config.cookie_validity),
            proxy_users=proxy_users,
            groups=groups,
            faces=faces,
            user_key=_USER_KEY,
        )
        if csrf is not None:
            identity = _csrf_middleware(csrf, faces, identity)
        app.on_response_prepare.append(on_response_prepare)
    else:
        if signer is None:
            raise ValueError('embedded.auth = "signed" needs the identity key')
        identity = _identity_middleware(signer=signer, identity_header=identity_header)
    handler = _handler(store, faces, identity, groups)
    app[BACKEND_KEY] = store
    app[LOCAL_HANDLER] = handler

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        if scheme is not None:
            await scheme.start()
        store.start()
        sweeper = asyncio.create_task(_sweep_streams(store), name="embedded-stream-sweeper")
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            store.stop()
            if scheme is not None:
                await scheme.stop()

    app.cleanup_ctx.append(lifetime)
    app.router.add_route("*", "/{tail:.*}", handler)
    return app
