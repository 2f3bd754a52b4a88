"""Assembling the gateway application from a validated configuration.

Data flows one way: client -> route -> auth filter -> dialect -> proxy -> backend.
The route (prefix, backend, dialect) is resolved first, so every answer,
a 401 challenge included, comes in the format of the route's dialect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.abc import AbstractAccessLogger
from multidict import CIMultiDict
from yarl import URL

from authplugins import AuthScheme, scheme_class
from gateway.authfilter import IDENTITY, REFUSAL, SESSION, AuthFilter, Refusal
from gateway.config import EMBEDDED, Config
from gateway.cookie import CookieCodec, KeyRing, LiveKeys
from gateway.csrf import CsrfGuard
from gateway.dialects import DIALECTS, DataNodeRedirects
from gateway.failover import Backend, BackendSet
from gateway.forwarded import CLIENT, TrustedProxies
from gateway.groups import GroupSource, group_source
from gateway.keys import KeysWatcher
from gateway.identity import IdentitySigner
from gateway.log import REQUEST_ID_HEADER, auth_logger, request_id, server_logger
from gateway.proxy import LocalBackend, UpstreamError, UpstreamProxy, origin_form
from gateway.proxyusers import ProxyUserRule, ProxyUsers
from gateway.routing import AmbiguousPath, Route, Router
from gateway.serving import InFlight
from gateway.upstream import UpstreamClient

if TYPE_CHECKING:
    from gateway.backendauth import KerberosBackendAuth
    from gateway.metrics import GatewayMetrics  # prometheus-client is imported only where the admin listener is on

__all__ = ("IN_FLIGHT", "LIVE", "ROUTE", "LiveSettings", "build_gateway_app")

_PROXIES = web.AppKey("proxies", dict[tuple[str, ...], UpstreamProxy | LocalBackend])  # by backend URLs
_DATA_SESSION = web.AppKey("data_session", UpstreamClient)  # for data steps to data nodes
IN_FLIGHT = web.AppKey("in_flight", InFlight)  # the gateway's requests in progress, for the drain
ROUTE = web.RequestKey("route", Route)  # the request's route, resolved before authentication
_TARGET = web.RequestKey("target", str)  # the origin-form request target
_FORWARDED_AT = web.RequestKey("forwarded_at", float)  # perf_counter() when the request went to its backend
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
KeyLoader = Callable[[Config], KeyRing]


class _Access:
    """Who may use which route and act for whom, as one configuration says; replaced whole."""

    __slots__ = ("groups", "proxy_groups", "proxy_users", "routes")

    def __init__(self, config: Config, routes: Sequence[Route]) -> None:
        """``routes``: the routes served, given the users and groups ``config`` names for them."""
        self.groups: GroupSource = group_source(config.groups.source, config.group_entries, config.groups.cache_seconds)
        self.proxy_users = ProxyUsers(
            (ProxyUserRule(p.user, p.users, p.groups, p.hosts) for p in config.proxy_users), self.groups
        )
        self.proxy_groups = any(p.groups for p in config.proxy_users)  # whether a doas may need groups
        access = {rc.prefix: (frozenset(rc.users), frozenset(rc.groups)) for rc in config.routes}
        self.routes = {
            r.prefix: dataclasses.replace(r, users=access[r.prefix][0], groups=access[r.prefix][1]) for r in routes
        }


class LiveSettings:
    """What a running gateway app changes without a restart (:mod:`gateway.reload` says which settings).

    The access rules (route users and groups, proxy users, groups) and the
    keys are each replaced whole by one assignment on the event loop, so a
    request sees either the old or the new ones, never a mix.
    """

    __slots__ = ("_access", "_key_loader", "_routes", "_watcher", "keys")

    def __init__(self, config: Config, routes: Sequence[Route], keys: LiveKeys, key_loader: KeyLoader | None) -> None:
        self.keys = keys
        self._routes = tuple(routes)
        self._access = _Access(config, self._routes)
        self._key_loader = key_loader
        self._watcher = (
            KeysWatcher(keys, lambda: key_loader(config), config.cookie.keys_file) if key_loader is not None else None
        )

    def refusal(self, real: str, effective: str, remote: str | None) -> str | None:
        """The proxy-user rules in force (:meth:`~gateway.proxyusers.ProxyUsers.refusal`)."""
        return self._access.proxy_users.refusal(real, effective, remote)

    def groups_pending(self, request: web.Request, user: str) -> Awaitable[object] | None:
        """What to await before :meth:`refusal` or :meth:`route_refusal` for ``request`` acting as ``user``
        (:meth:`~gateway.groups.GroupSource.prefetch`), or ``None`` when they will not ask for groups."""
        access = self._access
        rules = access.routes[request[ROUTE].prefix]
        if (rules.groups and user not in rules.users) or (access.proxy_groups and user != request[SESSION].user):
            return access.groups.prefetch(user)
        return None

    def route_refusal(self, route: Route, user: str) -> str | None:
        """Why ``user`` may not use ``route`` under the rules in force, or ``None``."""
        access = self._access
        return access.routes[route.prefix].refusal(user, access.groups.groups_of)

    async def apply(self, config: Config) -> None:
        """Put ``config``'s live settings in force and reread the keys.

        ``config`` differs from the running one in live settings only
        (:func:`gateway.reload.plan` makes it so).
        """
        # Host names in proxy-user rules resolve here: not on the event loop.
        self._access = await asyncio.to_thread(_Access, config, self._routes)
        if self._watcher is not None and self._key_loader is not None:
            loader = self._key_loader
            self._watcher.retarget(lambda: loader(config), config.cookie.keys_file)
            self._watcher.reload("SIGHUP")

    async def watch_keys(self) -> None:
        """Reread the keys whenever the keys file changes (polled each second), until cancelled."""
        if self._watcher is not None:
            await self._watcher.run()


LIVE = web.AppKey("live", LiveSettings)  # what SIGHUP changes in this app
_CLIENT_GONE = 499  # nginx's status for a request whose client went away


def build_gateway_app(
    config: Config,
    *,
    keyring: KeyRing,
    backend_url: str,
    identity_key: bytes | None,
    local_backend: Handler | None = None,
    key_loader: KeyLoader | None = None,
    metrics: GatewayMetrics | None = None,
    request_log: AbstractAccessLogger | None = None,
) -> web.Application:
    """The gateway app for ``config``.

    ``backend_url`` is where the routes to the embedded backend go (the
    address it was started on); a route to an external backend goes to its
    own URL.  ``identity_key``, when given, signs the identity header for a
    backend that verifies it; ``local_backend``, the embedded backend's
    handler in this process, serves its routes without a second HTTP
    exchange (:class:`~gateway.proxy.LocalBackend`).  ``keyring`` holds the
    keys at start; with ``key_loader``, which reads a configuration's key
    files, they are reread when the keys file changes and on
    :meth:`LiveSettings.apply`.
    ``metrics``, when given, gets the upstream latency of each forwarded
    request.
    ``request_log``, the runner's access logger, also gets the requests
    aiohttp does not log: those whose handler was cancelled, with status 499
    (nginx's "client closed request"), or 503 when the drain cut them.

    Every response, errors and challenges included, carries the request's
    ``X-Request-Id`` (:func:`gateway.log.request_id`).
    """
    schemes: list[AuthScheme] = [scheme_class(name).from_options(opts) for name, opts in config.scheme_options]
    signer = IdentitySigner(identity_key) if identity_key is not None else None
    keys = LiveKeys(keyring)
    routes: list[Route] = []
    for rc in config.routes:
        urls = (backend_url,) if rc.backend == (EMBEDDED,) else rc.backend
        datanodes = DataNodeRedirects(lambda: keys.ring.secrets(), rc.datanodes) if rc.datanodes else None
        dialect = DIALECTS[rc.dialect](
            backend_url=urls,
            identity_header=config.backend.identity_header,
            signer=signer,
            datanodes=datanodes,
            impersonate=rc.auth == "kerberos",
        )
        routes.append(Route(rc.prefix, urls, dialect, users=frozenset(rc.users), groups=frozenset(rc.groups)))
    router = Router(routes)
    live = LiveSettings(config, routes, keys, key_loader)
    # The embedded backend may be served in this process, external ones never are.
    locals_ = {
        r.backend_urls: local_backend if rc.backend == (EMBEDDED,) else None for r, rc in zip(routes, config.routes)
    }
    trusted = TrustedProxies(config.server.trusted_proxies, config.server.forwarded_headers)
    csrf = CsrfGuard.from_config(config.csrf)
    # The gateway's own credentials, per backend list that wants them (check-config makes its routes agree).
    kerberized = {
        r.backend_urls: rc.credentials(config.backend) for r, rc in zip(routes, config.routes) if rc.auth == "kerberos"
    }

    def route_error(
        request: web.Request, status: int, message: str, *, headers: CIMultiDict[str] | None = None
    ) -> web.Response:
        return request[ROUTE].dialect.error_response(status, message, headers=headers)

    auth = AuthFilter(
        schemes=schemes,
        codec=CookieCodec(keys, schemes=[s.type_name for s in schemes]),
        cookie=config.cookie,
        error_response=route_error,
        force_secure=bool(config.server.tls_cert_file),
        proxy_users=live,
        authorize=lambda request, user: live.route_refusal(request[ROUTE], user),
        groups_pending=live.groups_pending,
    )

    @web.middleware
    async def route(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Before authentication, so that its answers are in the route's format.
        # "*" and authority-form targets have no path to forward (and would
        # otherwise meet aiohttp's plain-text 404): the route for "/" answers.
        request[CLIENT] = trusted.view(request)  # first: logs, rules and URLs all read it
        target = origin_form(request.raw_path)
        if target is None:
            request[ROUTE] = router.default
            return route_error(request, 400, "The request target must be a path (or an absolute URL)")
        try:
            request[ROUTE] = router.resolve(target.partition("?")[0])
        except AmbiguousPath as exc:
            request[ROUTE] = exc.route
            return route_error(
                request, 400,
                "The path leads elsewhere once decoded: write it without escapes, dot segments or ;parameters",
            )
        request[_TARGET] = target
        # Before authentication: a forged request costs no handshake and sets no cookie.
        if csrf is not None and (forged := csrf.refusal(request.method, request.headers)) is not None:
            request[REFUSAL] = (Refusal.CSRF, "")
            auth_logger.info("refused without %s: method=%s remote=%s", config.csrf.custom_header, request.method,
                             request[CLIENT].address)
            response = route_error(request, 400, forged)
            if request.body_exists:
                response.force_close()  # the body is not wanted: no further request on this connection
            return response
        if request_log is None:
            return await handler(request)
        started = time.perf_counter()
        try:
            return await handler(request)
        except asyncio.CancelledError:
            # aiohttp logs nothing for a handler it cancelled (the client went
            # away, or the drain cut it): the audit trail must still show it.
            status = 503 if in_flight.cutting else _CLIENT_GONE
            request_log.log(request, web.StreamResponse(status=status), time.perf_counter() - started)
            raise

    async def expect(request: web.Request) -> web.StreamResponse | None:
        # aiohttp would answer "100 Continue" before any middleware runs, so
        # an unauthenticated client would upload its whole body only to be
        # refused.  The answer waits until the filter has let the request in.
        if request.version == HttpVersion11 and request.headers.get(hdrs.EXPECT, "").lower() != "100-continue":
            target = origin_form(request.raw_path)
            try:
                matched = router.resolve(target.partition("?")[0]) if target is not None else router.default
            except AmbiguousPath as exc:
                matched = exc.route
            return matched.dialect.error_response(417, "Only 'Expect: 100-continue' is supported")
        return None

    async def handle(request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        in_flight.enter(task)
        dialect = request[ROUTE].dialect
        if metrics is not None:
            request[_FORWARDED_AT] = time.perf_counter()  # not loop.time(): uvloop's counts whole milliseconds
        try:
            if request.version == HttpVersion11 and hdrs.EXPECT in request.headers:
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0
            user = request[IDENTITY].user
            if dialect.datanodes is not None and dialect.datanodes.is_data_step(request[_TARGET]):
                step = dialect.datanodes.open(
                    request[_TARGET], user=request[SESSION].user, effective=user, method=request.method
                )
                if step is None:
                    response = dialect.error_response(403, "The data-node redirect is not valid for this user")
                    response.force_close()
                    return response
                # The sealed target came from the NameNode: forwarded as it is, with the identity.
                node, target = step
                proxy = UpstreamProxy(
                    node,
                    session=request.app[_DATA_SESSION],
                    reserved_headers=dialect.reserved_headers,
                    cookie_names={config.cookie.name, "hadoop.auth"},
                    send_timeout=config.backend.send_timeout,
                )
                return await proxy.forward(
                    request, dialect.forward_verbatim(request, target, user), dialect.datanodes.answer_headers
                )
            return await request.app[_PROXIES][request[ROUTE].backend_urls].forward(
                request,
                dialect.forward(request, request[_TARGET], user),
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
        sessions: list[UpstreamClient] = []
        outbound: list[KerberosBackendAuth] = []
        try:
            for scheme in schemes:
                await scheme.start()
                started.append(scheme)
            backend_auth: dict[tuple[str, ...], KerberosBackendAuth] = {}
            if kerberized:
                from gateway.backendauth import KerberosBackendAuth  # here: gssapi only where Kerberos is used
            for urls, (principal, keytab) in kerberized.items():
                authenticator = KerberosBackendAuth(
                    principal=principal, keytab=keytab, hosts=[URL(url).host or "" for url in urls]
                )
                await authenticator.start()
                outbound.append(authenticator)
                backend_auth[urls] = authenticator
            proxies: dict[tuple[str, ...], UpstreamProxy | LocalBackend] = {}
            shared: dict[str, Backend] = {}  # one circuit breaker per backend URL, whichever routes list it
            for urls, local in locals_.items():
                reserved = {h for r in routes if r.backend_urls == urls for h in r.dialect.reserved_headers}
                if local is not None:
                    proxies[urls] = LocalBackend(
                        local, reserved_headers=tuple(sorted(reserved)), cookie_names={config.cookie.name, "hadoop.auth"}
                    )
                    continue
                session = UpstreamProxy.new_session(
                    connect_timeout=config.backend.connect_timeout,
                    read_timeout=config.backend.read_timeout,
                    pool_timeout=config.backend.pool_timeout,
                    max_connections=config.backend.max_connections,
                    max_head_size=config.backend.max_response_head_size,
                    max_headers=config.backend.max_response_headers,
                )
                sessions.append(session)
                backends = BackendSet(
                    [shared.setdefault(url, Backend(url)) for url in urls],
                    attempts=config.backend.failover_attempts,
                    cooldown=config.backend.failover_cooldown,
                )
                proxies[urls] = UpstreamProxy(
                    backends,
                    session=session,
                    reserved_headers=tuple(sorted(reserved)),
                    cookie_names={config.cookie.name, "hadoop.auth"},
                    send_timeout=config.backend.send_timeout,
                    backend_auth=backend_auth.get(urls),
                )
            app[_PROXIES] = proxies
            data_session = UpstreamProxy.new_session(
                connect_timeout=config.backend.connect_timeout,
                read_timeout=config.backend.read_timeout,
                pool_timeout=config.backend.pool_timeout,
                max_connections=config.backend.max_connections,
                max_head_size=config.backend.max_response_head_size,
                max_headers=config.backend.max_response_headers,
            )
            sessions.append(data_session)
            app[_DATA_SESSION] = data_session
            watcher = asyncio.create_task(live.watch_keys(), name="keys watcher")
            try:
                yield
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
        finally:
            for authenticator in reversed(outbound):
                await authenticator.stop()
            for scheme in reversed(started):
                try:
                    await scheme.stop()
                except Exception:  # one scheme's failure must not keep the others running
                    server_logger.exception("stopping scheme %s failed", scheme.type_name)
            for session in reversed(sessions):
                await session.close()

    async def stamp(request: web.Request, response: web.StreamResponse) -> None:
        # Here, not in a middleware: this hook sees every answer, the 417 of
        # expect() and streamed ones too.  A backend's own id is replaced.
        response.headers[REQUEST_ID_HEADER] = request_id(request)
        if metrics is not None and (started := request.get(_FORWARDED_AT)) is not None:
            metrics.upstream(request[ROUTE].prefix, time.perf_counter() - started)

    in_flight = InFlight()
    app = web.Application(middlewares=[route, auth.middleware], client_max_size=0)
    app[IN_FLIGHT] = in_flight
    app[LIVE] = live
    app.on_response_prepare.append(auth.on_response_prepare)
    app.on_response_prepare.append(in_flight.on_response_prepare)
    app.on_response_prepare.append(stamp)
    app.cleanup_ctx.append(lifetime)
    app.router.add_route("*", "/{tail:.*}", handle, expect_handler=expect)
    return app


