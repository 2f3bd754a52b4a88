"""Assembling the gateway application from a validated configuration.

Data flows one way: client -> auth filter -> dialect -> proxy -> backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import HttpVersion11, hdrs, web

from authplugins import AuthScheme, scheme_class
from gateway.authfilter import IDENTITY, AuthFilter
from gateway.config import Config
from gateway.cookie import CookieCodec, KeyRing
from gateway.dialects import DIALECTS, Dialect
from gateway.identity import IdentitySigner
from gateway.log import server_logger
from gateway.proxy import UpstreamError, UpstreamProxy, origin_form
from gateway.serving import InFlight

__all__ = ("IN_FLIGHT", "build_gateway_app")

_PROXY = web.AppKey("proxy", UpstreamProxy)
IN_FLIGHT = web.AppKey("in_flight", InFlight)  # the gateway's requests in progress, for the drain
_TARGET = web.RequestKey("target", str)  # the origin-form request target
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_gateway_app(
    config: Config,
    *,
    keyring: KeyRing,
    backend_url: str,
    identity_key: bytes | None,
    unix_socket: str | None = None,
) -> web.Application:
    """The gateway app for ``config``.

    ``backend_url`` is where requests go (for the embedded backend, the
    address it was started on); ``identity_key``, when given, signs the
    identity header for a backend that verifies it; ``unix_socket`` connects
    to the backend over that socket instead of TCP.
    """
    schemes: list[AuthScheme] = [scheme_class(name).from_options(opts) for name, opts in config.scheme_options]
    signer = IdentitySigner(identity_key) if identity_key is not None else None
    dialect: Dialect = DIALECTS[config.backend.dialect](
        backend_url=backend_url, identity_header=config.backend.identity_header, signer=signer
    )
    auth = AuthFilter(
        schemes=schemes,
        codec=CookieCodec(keyring, schemes=[s.type_name for s in schemes]),
        cookie=config.cookie,
        error_response=dialect.error_response,
        force_secure=bool(config.server.tls_cert_file),
    )

    @web.middleware
    async def require_path(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Before routing and authentication: "*" and authority-form targets
        # have no path to forward (and would otherwise meet aiohttp's
        # plain-text 404).
        target = origin_form(request.raw_path)
        if target is None:
            return dialect.error_response(400, "The request target must be a path (or an absolute URL)")
        request[_TARGET] = target
        return await handler(request)

    async def expect(request: web.Request) -> web.StreamResponse | None:
        # aiohttp would answer "100 Continue" before any middleware runs, so
        # an unauthenticated client would upload its whole body only to be
        # refused.  The answer waits until the filter has let the request in.
        if request.version == HttpVersion11 and request.headers.get(hdrs.EXPECT, "").lower() != "100-continue":
            return dialect.error_response(417, "Only 'Expect: 100-continue' is supported")
        return None

    async def handle(request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        in_flight.enter(task)
        try:
            if request.version == HttpVersion11 and hdrs.EXPECT in request.headers:
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0
            return await request.app[_PROXY].forward(
                request,
                dialect.forward(request, request[_TARGET], request[IDENTITY].user),
                dialect.rewrite_response_headers,
            )
        except UpstreamError as exc:
            response = dialect.error_response(exc.status, exc.message)
        except asyncio.CancelledError:
            # Cut by the drain bound at shutdown: say so while we still can.
            if not in_flight.cutting or request.writer.output_size:
                raise
            task.uncancel()
            response = dialect.error_response(503, "the gateway is shutting down")
            response.force_close()
        finally:
            in_flight.leave(task)
        if not request.content.is_eof():
            # The rest of the body has nowhere to go: close rather than read it.
            response.force_close()
        return response

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        started: list[AuthScheme] = []
        session = UpstreamProxy.new_session(
            connect_timeout=config.backend.connect_timeout,
            read_timeout=config.backend.read_timeout,
            pool_timeout=config.backend.pool_timeout,
            max_connections=config.backend.max_connections,
            unix_socket=unix_socket,
        )
        try:
            for scheme in schemes:
                await scheme.start()
                started.append(scheme)
            app[_PROXY] = UpstreamProxy(
                backend_url,
                session=session,
                reserved_headers=dialect.reserved_headers,
                cookie_names={config.cookie.name, "hadoop.auth"},
                send_timeout=config.backend.send_timeout,
            )
            yield
        finally:
            for scheme in reversed(started):
                try:
                    await scheme.stop()
                except Exception:  # one scheme's failure must not keep the others running
                    server_logger.exception("stopping scheme %s failed", scheme.type_name)
            await session.close()

    in_flight = InFlight()
    app = web.Application(middlewares=[require_path, auth.middleware], client_max_size=0)
    app[IN_FLIGHT] = in_flight
    app.on_response_prepare.append(auth.on_response_prepare)
    app.on_response_prepare.append(in_flight.on_response_prepare)
    app.cleanup_ctx.append(lifetime)
    app.router.add_route("*", "/{tail:.*}", handle, expect_handler=expect)
    return app


