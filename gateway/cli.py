"""The ``authgateway`` command: serve, check-config, embedded.

The help texts are written for someone who has never read the code: plain
words, the defaults (taken from :mod:`gateway.config`, so they cannot drift),
the order in which settings override each other, the ports that open and how
to stop.  Flags become :class:`~gateway.config.Override` entries, so the one
loader checks them with everything else and names the flag in a problem.

Exit status: 0 after a clean stop (or a valid configuration), 1 when the
gateway cannot start (a port in use...), 2 for a usage or configuration
problem.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.metadata
import logging
import logging.handlers
import os
import secrets
import signal
import socket
import ssl
import sys
import tomllib
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web

from gateway._malloc import keep_heap_for_streams
from gateway.config import (
    EMBEDDED,
    Config,
    ConfigError,
    EmbeddedConfig,
    Override,
    RouteConfig,
    ServerConfig,
    load_config,
    read_secret,
)
from gateway import _sdnotify
from gateway._keys_command import add_keys_parser, run_keys
from gateway.cookie import KeyRing
from gateway.keys import read_keys
from gateway.log import ClientErrorFilter, access_logger, audit_logger, server_logger
from gateway.loopwatch import LoopWatch
from gateway.reload import plan
from gateway.forwarded import TrustedProxies
from gateway.serving import ConnectionLimit, HeadLimits, InFlight, hide_server_version
from gateway.workers import BindError, Listener, bind, default_workers, supervise

__all__ = ("main",)

EXIT_CANNOT_START = 1
EXIT_CONFIG = 2
_READ_BUFFER = 16 * 1024
_BACKLOG = 1024  # connections the kernel queues per listening socket
_AFTER_DRAIN = 2.0  # seconds
_SCHEME_WORDS = {"simple": "user.name in the query", "kerberos": "SPNEGO, curl --negotiate"}


class _StartError(Exception):
    """The gateway cannot start; the message says what and which setting to change."""


# -- keys --------------------------------------------------------------------------


def _ensure_key(path: Path, what: str) -> bytes:
    """Read the generated key at ``path``, creating it (mode 0600) the first time."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = base64.urlsafe_b64encode(secrets.token_bytes(48))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key + b"\n")
        server_logger.warning(
            "generated a new %s in %s (mode 0600); it is kept across restarts. "
            "Configure your own for anything but a trial",
            what, path,
        )
    return read_secret(str(path))


def _cookie_keys(config: Config) -> KeyRing:
    """The cookie keys ``config`` names, read now (``OSError``, ``ValueError`` when they cannot be)."""
    named = read_keys(config.cookie.keys_file) if config.cookie.keys_file else ()
    if config.cookie.secret_files:
        return KeyRing([read_secret(p) for p in config.cookie.secret_files], named=named)
    if named:
        return KeyRing(named=named)
    # Only reachable in embedded mode: the config loader insists otherwise.
    return KeyRing([_ensure_key(config.state_dir / "cookie.secret", "cookie signing key")])


def _keys(config: Config) -> tuple[KeyRing, bytes | None]:
    try:
        keyring = _cookie_keys(config)
        identity_key: bytes | None = None
        if config.backend.identity_secret_file:
            identity_key = read_secret(config.backend.identity_secret_file)
        elif config.embedded_mode:
            identity_key = _ensure_key(config.state_dir / "identity.secret", "backend identity key")
    except (OSError, ValueError) as exc:
        raise _StartError(f"cannot read or generate the keys ({exc})") from exc
    return keyring, identity_key


def _describe_keys(config: Config) -> str:
    if config.cookie.keys_file:
        also = f", verifying with cookie.secret_files ({len(config.cookie.secret_files)} file(s))"
        return f"cookie keys: {config.cookie.keys_file} (cookie.keys_file){also if config.cookie.secret_files else ''}"
    if config.cookie.secret_files:
        return f"cookie keys: cookie.secret_files ({len(config.cookie.secret_files)} file(s))"
    return f"cookie key: {config.state_dir.resolve() / 'cookie.secret'} (generated on the first start, mode 0600)"


# -- reloading ---------------------------------------------------------------------


class _Reloader:
    """The configuration a process runs with, reloaded on SIGHUP (:mod:`gateway.reload` says what changes)."""

    def __init__(self, load: Callable[[], Config], config: Config) -> None:
        self._load = load
        self.config = config

    def reload(self, *, announce: bool) -> Config | None:
        """Load the configuration again and put its live settings in force here (the log level).

        Returns the configuration to run with, ``None`` when the new one is
        invalid (the running one is kept).  With ``announce``, logs what
        changed, what needs a restart, or the problems: once per gateway,
        by the process that received the SIGHUP.
        """
        try:
            new = self._load()
        except ConfigError as exc:
            if announce:
                server_logger.error(
                    "configuration not reloaded, the running one is kept; invalid configuration: %s",
                    "; ".join(exc.problems),
                )
            return None
        step = plan(self.config, new)
        self.config = step.config
        if announce:  # under the old log level: a reload is always told
            if step.restart:
                server_logger.warning(
                    "configuration reloaded, but these settings need a restart (their old values stay in force): %s",
                    ", ".join(step.restart),
                )
            server_logger.info(
                "configuration reloaded: %s; keys reread",
                f"applied {', '.join(step.applied)}" if step.applied else "no live setting changed",
            )
        logging.getLogger().setLevel(step.config.log.level.upper())
        return step.config


# -- serving -----------------------------------------------------------------------


class _LimitedSockSite(web.SockSite):
    """A site on a bound socket whose connections are made by a :class:`ConnectionLimit`."""

    def __init__(self, runner: web.AppRunner, sock: socket.socket, *, limits: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(runner, sock, **kwargs)
        self._limits = limits

    async def start(self) -> None:
        await web.BaseSite.start(self)
        assert self._runner.server is not None
        self._server = await asyncio.get_running_loop().create_server(
            ConnectionLimit(self._runner.server, **self._limits), sock=self._sock, ssl=self._ssl_context,
            backlog=self._backlog,
        )


class _Runner(web.AppRunner):
    """An ``AppRunner`` that keeps the arguments of its connections' protocol, for :class:`ConnectionLimit`."""

    def __init__(self, app: web.Application, handler_args: dict[str, Any], shutdown_timeout: float) -> None:
        # Behind the gateway, its drain (InFlight) has already waited for the
        # requests: what is left is idle connections and requests being cut.
        super().__init__(app, handler_cancellation=True, shutdown_timeout=shutdown_timeout, **handler_args)
        self.handler_args = handler_args


async def _start_sites(
    runner: _Runner,
    socks: Sequence[socket.socket],
    server: ServerConfig,
    ssl_context: ssl.SSLContext | None = None,
    max_connections: int | None = None,
    per_peer: int = 0,
) -> None:
    """Serve ``runner`` on this worker's bound ``socks``, with ``server``'s bounds on heads."""
    await runner.setup()
    limits = {
        "limit": max_connections,
        "head": HeadLimits(
            head_timeout=server.head_timeout, max_head_size=server.max_head_size, body_timeout=server.body_timeout
        ),
        "per_peer": per_peer,
        "trusted": TrustedProxies(server.trusted_proxies) if per_peer else None,
        "handler_args": runner.handler_args,
    }
    for sock in socks:
        site = _LimitedSockSite(runner, sock, limits=limits, ssl_context=ssl_context, backlog=_BACKLOG)
        await site.start()


def _runner(
    app: web.Application, server: ServerConfig, shutdown_timeout: float = _AFTER_DRAIN, **kwargs: Any
) -> _Runner:
    handler_args = dict(
        # Hadoop's HTTP servers accept 64 KiB of request head: a Kerberos
        # ticket carrying many group SIDs (Active Directory) outgrows
        # aiohttp's 8 KiB.  The whole head is bounded by Connection.
        max_field_size=server.max_head_size,
        max_line_size=server.max_head_size,
        # A connection buffers at most twice this of a request body before
        # aiohttp stops reading it: memory follows connections, not uploads.
        read_bufsize=_READ_BUFFER,
        keepalive_timeout=server.keepalive_timeout,
        **kwargs,
    )
    return _Runner(app, handler_args, shutdown_timeout)


async def _run_until_stopped(
    runners: Sequence[web.AppRunner],
    drain_timeout: float,
    in_flight: InFlight | None,
    on_reload: Callable[[], Awaitable[None]] | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloads: list[asyncio.Task[None]] = []
    if on_reload is not None:
        one_at_a_time = asyncio.Lock()

        async def reload() -> None:
            async with one_at_a_time:
                await on_reload()

        def hup() -> None:
            reloads[:] = [t for t in reloads if not t.done()]
            reloads.append(loop.create_task(reload()))

        loop.add_signal_handler(signal.SIGHUP, hup)
    try:
        await stop.wait()
    finally:
        _sdnotify.notify("STOPPING=1")
        for task in reloads:
            task.cancel()
        started = loop.time()
        server_logger.info("shutting down: no new connections; requests in progress get %.0f s", drain_timeout)
        # Every listener at once, so nothing new starts anywhere.  (Not
        # aiohttp's pre_shutdown: it drops what clients still send, so an
        # upload in progress could never finish.)
        for runner in runners:
            for site in list(runner.sites):
                await site.stop()
        if in_flight is not None:
            cut = await in_flight.drain(drain_timeout)
            if cut:
                server_logger.warning("shutdown cut %d request(s) still in progress after %.0f s", cut, drain_timeout)
            else:
                server_logger.info("every request in progress finished")
        for runner in reversed(runners):
            await runner.cleanup()
        server_logger.info("stopped after %.1f s", loop.time() - started)


@contextlib.contextmanager
def _watching(threshold: float, on_stall: Callable[[float], object] | None = None) -> Iterator[None]:
    """Watch the running loop for stalls past ``threshold`` seconds (``log.loop_stall``; 0: not at all)."""
    if not threshold:
        yield
        return
    watch = LoopWatch(threshold, on_stall)
    watch.start()
    try:
        yield
    finally:
        watch.stop()


def _prepare_root(config: Config) -> Path:
    root = Path(config.embedded.root).resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _StartError(f"cannot create the data root {root} (embedded.root): {exc.strerror or exc}") from exc
    return root


async def _start_embedded(
    config: Config,
    identity_key: bytes | None,
    socks: Sequence[socket.socket],
    runners: list[web.AppRunner],
    shutdown_timeout: float = _AFTER_DRAIN,
    cookie_key: bytes | None = None,
) -> web.AppRunner:
    """Start the embedded backend on ``socks``; its runner (also added to ``runners``)."""
    from gateway.csrf import CsrfGuard
    from gateway.embedded import build_embedded_app
    from gateway.groups import group_source
    from gateway.identity import IdentitySigner
    from gateway.proxyusers import ProxyUserRule, ProxyUsers

    groups = group_source(config.groups.source, config.group_entries, config.groups.cache_seconds)
    proxy_users = ProxyUsers((ProxyUserRule(p.user, p.users, p.groups, p.hosts) for p in config.proxy_users), groups)
    app = build_embedded_app(
        config.embedded,
        signer=IdentitySigner(identity_key) if identity_key is not None else None,
        identity_header=config.backend.identity_header,
        groups=groups,
        proxy_users=proxy_users,
        cookie_key=cookie_key,
        csrf=CsrfGuard.from_config(config.csrf),
    )
    runner = _runner(app, config.server, shutdown_timeout, access_log=None)
    runners.append(runner)
    await _start_sites(runner, socks, config.server)
    return runner


def _embedded_line(config: Config, where: str, root: Path) -> str:
    return (
        f"embedded backend listening on {where} (embedded.listen), serving {root} (embedded.root); "
        f"its metadata and keys are in {config.state_dir.resolve()}/"
    )


def _bind(listen: str, what: str, workers: int) -> Listener:
    try:
        return bind(listen, what, workers)
    except BindError as exc:
        raise _StartError(str(exc)) from exc


def _run_loop(coro: Coroutine[Any, Any, None]) -> int:
    """Run a worker's ``coro`` on uvloop; its exit status."""
    keep_heap_for_streams()
    hide_server_version()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            runner.run(coro)
        except (_StartError, OSError) as exc:
            return _cannot_start(exc)
        except ConfigError as exc:  # found only when starting: credentials a keytab could not give
            return _cannot_start(_StartError("; ".join(exc.problems)))
    return 0


def _cannot_start(exc: Exception) -> int:
    server_logger.error("cannot start: %s", exc)
    return EXIT_CANNOT_START


def _run_workers(
    workers: int,
    listeners: list[Listener],
    serve_one: Callable[[int, Callable[[], None]], Coroutine[Any, Any, None]],
    drain_timeout: float,
    announce: Callable[[], None],
    on_reload: Callable[[], object] = lambda: None,
    on_exit: Callable[[int], object] = lambda pid: None,
) -> int:
    """Serve ``listeners`` with ``workers`` processes (this one alone when 1); the exit status.

    With several, ``on_reload`` runs in the supervisor on SIGHUP, before the
    workers are told.
    """
    def run_worker(index: int, ready: Callable[[], None]) -> int:
        _sdnotify.forget()  # the supervisor speaks to systemd
        return _run_loop(serve_one(index, ready))

    def stop() -> None:
        _sdnotify.notify("STOPPING=1")
        _close_all(listeners)

    def reload() -> None:
        _sdnotify.reloading()
        on_reload()
        _sdnotify.notify("READY=1")

    try:
        if workers == 1:
            return _run_loop(serve_one(0, announce))
        return supervise(
            workers, run_worker, drain_timeout, on_ready=announce, on_stop=stop, on_reload=reload, on_exit=on_exit
        )
    finally:
        _close_all(listeners)


def _close_all(listeners: Sequence[Listener]) -> None:
    for listener in listeners:
        listener.close()


def _worker_count(config: Config) -> int:
    return config.server.workers or default_workers()


def _log_files(config: Config) -> None:
    """Send the access and audit lines to their own files, when configured: bare lines, appended.

    Opened here, before the workers exist, so a file that cannot be opened
    stops the start; each worker reopens it after logrotate moved it.
    """
    for logger, path in ((access_logger, config.log.access_file), (audit_logger, config.log.audit_file)):
        if not path:
            continue
        try:
            handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
        except OSError as exc:
            raise _StartError(f"cannot open {path} for the {logger.name} lines: {exc.strerror or exc}") from exc
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


class _Admin:
    """The admin listener and the metrics directory of one ``serve``, when ``admin.listen`` is set."""

    def __init__(self, reloader: _Reloader, workers: int) -> None:
        from gateway.admin import AdminServer, admin_app
        from gateway.metrics import start_multiprocess

        self.listener = _bind(reloader.config.admin.listen, "the admin listener (admin.listen)", 1)
        self.metrics_dir = start_multiprocess()
        app = admin_app(lambda: reloader.config, workers, self.metrics_dir)
        self.server = AdminServer(self.listener.per_worker[0], app)

    def close(self) -> None:
        from gateway.metrics import remove_multiprocess_dir

        self.server.close()
        self.listener.close()
        remove_multiprocess_dir(self.metrics_dir)


def _serve(config: Config, reloader: _Reloader) -> int:
    """``authgateway serve``: bind, start the workers, serve until stopped; the exit status."""
    _, identity_key = _keys(config)  # here, so that an unreadable key stops the start at once
    if config.embedded_mode and config.embedded.auth == "kerberos":
        raise _StartError(
            'embedded.auth = "kerberos" is for `authgateway embedded` run alone: the gateway serves its '
            "embedded routes in-process; route to the separate backend's URL with auth = \"kerberos\" instead"
        )
    workers = _worker_count(config)
    _log_files(config)
    listeners: list[Listener] = []
    admin: _Admin | None = None
    try:
        embedded: Listener | None = None
        if config.embedded_mode:
            root = _prepare_root(config)
            embedded = _bind(config.embedded.listen, "the embedded backend (embedded.listen)", workers)
            listeners.append(embedded)
        gateway = _bind(
            f"{config.server.host}:{config.server.port}", "the gateway (server.host, server.port)", workers
        )
        listeners.append(gateway)
        if config.admin.listen:
            admin = _Admin(reloader, workers)
    except BaseException:
        for listener in listeners:
            listener.close()
        raise
    backend_url = "" if embedded is None else "http://localhost"  # where routes to the embedded backend go
    route = "" if embedded is None else f"the embedded backend on {embedded.address}"
    # Each worker's share of the connection limits (SO_REUSEPORT spreads one address's connections too).
    max_connections = -(-config.server.max_connections // workers)
    per_peer = -(-config.server.max_connections_per_peer // workers)

    async def serve_one(index: int, ready: Callable[[], None]) -> None:
        from gateway.app import IN_FLIGHT, LIVE, build_gateway_app
        from gateway.requestlog import request_log_class

        # The configuration in force when this worker started (a reload may have changed live settings),
        # and the keys as they are now.
        config = reloader.config
        keyring = _keys(config)[0]
        metrics = None
        if admin is not None:  # the supervisor imported it already: prometheus-client only when asked for
            from gateway.metrics import GatewayMetrics

            metrics = GatewayMetrics()
        for listener in listeners:
            listener.keep_only(index)
        runners: list[web.AppRunner] = []
        local: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None
        try:
            if embedded is not None:
                # This worker's gateway hands requests to its own embedded
                # backend, in this process: no second HTTP exchange, and not
                # whichever worker the kernel would pick on embedded.listen,
                # which may be shutting down.
                from gateway.embedded import LOCAL_HANDLER

                assert identity_key is not None
                started = await _start_embedded(config, identity_key, embedded.per_worker[index], runners)
                local = started.app[LOCAL_HANDLER]
            log_class = request_log_class(access=config.server.access_log, audit=config.log.audit, metrics=metrics)
            app = build_gateway_app(
                config, keyring=keyring, backend_url=backend_url, identity_key=identity_key, local_backend=local,
                key_loader=_cookie_keys, metrics=metrics, request_log=log_class(access_logger, ""),
            )
            ssl_context = None
            if config.server.tls_cert_file:
                ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                ssl_context.load_cert_chain(config.server.tls_cert_file, config.server.tls_key_file)
            runner = _runner(app, config.server, access_log=access_logger, access_log_class=log_class)
            runners.append(runner)
            await _start_sites(
                runner, gateway.per_worker[index], config.server, ssl_context, max_connections, per_peer
            )
        except BaseException:
            for r in reversed(runners):
                await r.cleanup()
            raise
        sampler: asyncio.Task[None] | None = None
        if metrics is not None:
            from gateway.metrics import sample_forever

            server, in_flight = runner.server, app[IN_FLIGHT]
            assert server is not None
            sampler = asyncio.create_task(sample_forever(
                metrics, lambda: not in_flight.draining, lambda: len(server.connections), in_flight.__len__
            ))
        ready()

        async def reload() -> None:
            # Several workers: the supervisor has logged what the reload does (and told systemd); each
            # worker applies it.
            _sdnotify.reloading()
            new = await asyncio.to_thread(reloader.reload, announce=workers == 1)
            if new is not None:
                await app[LIVE].apply(new)
            _sdnotify.notify("READY=1")

        try:
            with _watching(config.log.loop_stall, None if metrics is None else metrics.loop_stall):
                await _run_until_stopped(runners, config.server.shutdown_timeout, app[IN_FLIGHT], reload)
        finally:
            if sampler is not None:
                sampler.cancel()

    def announce() -> None:
        if embedded is not None:
            server_logger.info("%s", _embedded_line(config, embedded.address, root))
        scheme = "https" if config.server.tls_cert_file else "http"
        schemes = ", ".join(f"{name} ({_SCHEME_WORDS.get(name, name)})" for name in config.auth.schemes)
        server_logger.info(
            "authgateway %s listening on %s://%s (server.host, server.port); schemes: %s; %d worker process%s",
            _version(), scheme, gateway.address, schemes, workers, "" if workers == 1 else "es",
        )
        server_logger.info("routes: %s; %s", _describe_routes(config, route), _describe_keys(config))
        if admin is not None:
            server_logger.info(
                "admin listener on http://%s (admin.listen): /metrics, /healthz, /readyz", admin.listener.address
            )
        server_logger.info(
            "Ctrl-C or SIGTERM stops it: requests in progress get %.0f s (server.shutdown_timeout); "
            "SIGHUP reloads the configuration and the keys",
            config.server.shutdown_timeout,
        )
        _sdnotify.notify("READY=1", f"STATUS=listening on {gateway.address}")

    if admin is None:
        return _run_workers(
            workers, listeners, serve_one, config.server.shutdown_timeout, announce,
            on_reload=lambda: reloader.reload(announce=True),
        )
    from gateway.metrics import forget_process

    try:
        admin.server.start()
        return _run_workers(
            workers, listeners, serve_one, config.server.shutdown_timeout, announce,
            on_reload=lambda: reloader.reload(announce=True), on_exit=forget_process,
        )
    finally:
        admin.close()


def _embedded(config: Config) -> int:
    """``authgateway embedded``: the embedded backend alone; the exit status."""
    _, identity_key = _keys(config)
    cookie_key: bytes | None = None
    if config.embedded.auth == "kerberos":
        identity_key = None  # callers prove themselves with SPNEGO, not with the gateway's signature
        try:
            cookie_key = _ensure_key(config.state_dir / "backend-cookie.secret", "hadoop.auth cookie key")
        except OSError as exc:
            raise _StartError(f"cannot read or generate the keys ({exc})") from exc
    elif identity_key is None:
        raise _StartError("the embedded backend alone needs backend.identity_secret_file, shared with the gateway")
    root = _prepare_root(config)
    workers = _worker_count(config)
    listener = _bind(config.embedded.listen, "the embedded backend (embedded.listen)", workers)

    async def serve_one(index: int, ready: Callable[[], None]) -> None:
        listener.keep_only(index)
        runners: list[web.AppRunner] = []
        try:
            # Alone, the backend's own requests get the drain bound.
            await _start_embedded(
                config, identity_key, listener.per_worker[index], runners, config.server.shutdown_timeout, cookie_key
            )
        except BaseException:
            for r in runners:
                await r.cleanup()
            raise
        ready()
        with _watching(config.log.loop_stall):
            await _run_until_stopped(runners, config.server.shutdown_timeout, None)

    def announce() -> None:
        server_logger.info("%s", _embedded_line(config, listener.address, root))
        _sdnotify.notify("READY=1", f"STATUS=listening on {listener.address}")

    return _run_workers(workers, [listener], serve_one, config.server.shutdown_timeout, announce)


# -- the command line --------------------------------------------------------------


def _version() -> str:
    """The installed package's version, else the one in the source tree's pyproject.toml."""
    try:
        return importlib.metadata.version("authgateway")
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            with open(pyproject, "rb") as fh:
                return str(tomllib.load(fh)["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


_SERVER, _EMBEDDED = ServerConfig(), EmbeddedConfig()

_PRECEDENCE = f"""\
Settings, highest first: command-line flags; environment variables
AUTHGATEWAY_SECTION__KEY (e.g. AUTHGATEWAY_SERVER__PORT=14002,
AUTHGATEWAY_AUTH__SCHEMES=kerberos,simple; AUTHGATEWAY_LOG_LEVEL=debug);
the TOML file given with --config (conf/authgateway.toml documents every
key); the built-in defaults. A problem names the flag or variable it came
from."""

_DESCRIPTION = """\
An authentication gateway for Hadoop-style REST file systems (Hoop, HttpFS,
WebHDFS). It authenticates every client (pseudo authentication with
user.name, or Kerberos SPNEGO), gives it a signed session cookie, and
forwards its requests to a backend: by default an embedded one that serves
a local directory."""

_MAIN_EPILOG = f"""\
{_PRECEDENCE}

examples:
  authgateway serve                             # http://127.0.0.1:{_SERVER.port} over ./data, pseudo auth
  authgateway serve --port 15000 --root /srv/data
  authgateway check-config conf/authgateway.toml
  AUTHGATEWAY_LOG_LEVEL=debug authgateway serve --config conf/authgateway.toml

'authgateway COMMAND --help' says more about each command."""

_SERVE_DESCRIPTION = f"""\
Run the gateway. Unless a backend URL is given, it first starts the
embedded backend, which serves a local directory; then it opens two TCP
ports (with the defaults, both on loopback only):
  {_SERVER.host}:{_SERVER.port}  the gateway, where clients connect (server.host, server.port)
  {_EMBEDDED.listen}  the embedded backend, which answers only requests the gateway
                   signed (embedded.listen; can be a unix:/path socket instead)
It runs one worker process per CPU core (--workers), all serving these
ports; each worker runs the gateway and the embedded backend. Without
cookie.keys_file or cookie.secret_files, the embedded mode generates its
keys once into ROOT/.authgateway/ (mode 0600) and keeps them across
restarts."""

_STOPPING = f"""\
Stopping: Ctrl-C or SIGTERM. The gateway stops listening at once, gives
requests in progress up to server.shutdown_timeout (default {_SERVER.shutdown_timeout:g} s), then
cuts the rest (503 when nothing of the answer has been sent yet). Exit
status: 0 after a stop, 1 when it cannot start (a port in use...), 2 for
a configuration or usage problem."""

_RELOADING = """Reloading: SIGHUP rereads the configuration and the keys. The log level,
the keys, [groups], [[proxy_users]] and the users and groups of routes
change at once; other changes are logged as needing a restart."""

_SERVE_EPILOG = f"""\
{_PRECEDENCE}

{_STOPPING}

{_RELOADING}

examples:
  authgateway serve
  authgateway serve --port 15000 --root /srv/data
  authgateway serve --config conf/authgateway.toml
  AUTHGATEWAY_SERVER__PORT=14002 authgateway serve
  authgateway serve --backend http://httpfs.internal:14000 --config gateway.toml   # needs cookie.secret_files"""

_CHECK_DESCRIPTION = """\
Check the configuration exactly as serve would (the file, the environment
and the same flags), without starting or creating anything. Every problem
is printed at once, one line each, naming the key (or the variable or flag
it came from), its value and the rule; the exit status is then 2. A valid
configuration prints where serve would listen, and exits 0."""

_CHECK_EPILOG = f"""\
{_PRECEDENCE}

examples:
  authgateway check-config conf/authgateway.toml
  AUTHGATEWAY_SERVER__PORT=14002 authgateway check-config
  authgateway check-config --config conf/authgateway.toml --port 15000"""

_EMBEDDED_DESCRIPTION = f"""\
Run only the embedded backend on embedded.listen (default {_EMBEDDED.listen}),
serving embedded.root (default {_EMBEDDED.root}). It trusts only requests
signed with backend.identity_secret_file, which the gateway in front of it
must share; requests that reach it directly get 401. With embedded.auth =
"kerberos" it stands in for a secured HttpFS instead: callers authenticate
with SPNEGO (embedded.principal, embedded.keytab), get a hadoop.auth
cookie, and may act for others with doas where [[proxy_users]] allow."""

_EMBEDDED_EPILOG = f"""\
{_PRECEDENCE}

{_STOPPING}

example:
  authgateway embedded --config backend.toml --root /srv/data"""

# Flags that set a configuration key: (flag, dest, key, metavar, type, help).
_SERVE_FLAGS: tuple[tuple[str, str, str, str, type, str], ...] = (
    ("--host", "host", "server.host", "HOST", str,
     f"address the gateway listens on (server.host; default {_SERVER.host}; 0.0.0.0 for every IPv4 interface)"),
    ("--port", "port", "server.port", "PORT", int,
     f"TCP port of the gateway (server.port; default {_SERVER.port}; 0 picks a free one)"),
    ("--root", "root", "embedded.root", "DIR",
     str, f"directory the embedded backend serves, created if missing (embedded.root; default {_EMBEDDED.root})"),
    ("--workers", "workers", "server.workers", "N", int,
     "worker processes (server.workers; default 0: one per CPU core)"),
    ("--backend", "backend", "backend.url", "URL", str,
     "an external backend, http(s)://host:port of HttpFS or Hoop, instead of the embedded one "
     "(backend.url; needs cookie.secret_files)"),
)
_EMBEDDED_FLAGS: tuple[tuple[str, str, str, str, type, str], ...] = (
    _SERVE_FLAGS[2],
    _SERVE_FLAGS[3],
    ("--listen", "listen", "embedded.listen", "HOST:PORT", str,
     f"where it listens, host:port or unix:/path (embedded.listen; default {_EMBEDDED.listen})"),
)


def _add_config_flags(parser: argparse.ArgumentParser, flags: Sequence[tuple[str, str, str, str, type, str]]) -> None:
    parser.add_argument(
        "-c", "--config", metavar="FILE", help="TOML configuration file (default: none, the built-in defaults)"
    )
    for flag, dest, _key, metavar, kind, text in flags:
        parser.add_argument(flag, dest=dest, metavar=metavar, type=kind, help=text)


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="authgateway", description=_DESCRIPTION, epilog=_MAIN_EPILOG, formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"authgateway {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    serve = sub.add_parser(
        "serve", help="run the gateway (and the embedded backend unless a backend URL is set)",
        description=_SERVE_DESCRIPTION, epilog=_SERVE_EPILOG, formatter_class=raw,
    )
    _add_config_flags(serve, _SERVE_FLAGS)
    check = sub.add_parser(
        "check-config", help="check the configuration as serve would, report every problem, and exit",
        description=_CHECK_DESCRIPTION, epilog=_CHECK_EPILOG, formatter_class=raw,
    )
    check.add_argument("file", nargs="?", metavar="FILE", help="TOML configuration file (the same as --config)")
    _add_config_flags(check, _SERVE_FLAGS)
    embedded = sub.add_parser(
        "embedded", help="run only the embedded backend (behind a gateway started elsewhere)",
        description=_EMBEDDED_DESCRIPTION, epilog=_EMBEDDED_EPILOG, formatter_class=raw,
    )
    _add_config_flags(embedded, _EMBEDDED_FLAGS)
    add_keys_parser(sub)
    return parser


def _overrides(args: argparse.Namespace) -> list[Override]:
    flags = _EMBEDDED_FLAGS if args.command == "embedded" else _SERVE_FLAGS
    return [
        Override(key, getattr(args, dest), flag)
        for flag, dest, key, *_ in flags
        if getattr(args, dest) is not None
    ]


def _load(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Config:
    path = args.config
    if args.command == "check-config" and args.file is not None:
        if path is not None and path != args.file:
            parser.error("check-config: give the file once, as FILE or as --config")
        path = args.file
    try:
        return load_config(path, overrides=_overrides(args))
    except ConfigError as exc:
        print(f"authgateway: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def _describe_routes(config: Config, embedded: str) -> str:
    """Each route, longest prefix first, with ``embedded`` naming the embedded backend."""
    routes = sorted(config.routes, key=lambda r: len(r.prefix), reverse=True)

    def backend(route: RouteConfig) -> str:
        if route.backend == (EMBEDDED,):
            return embedded
        if route.auth == "kerberos":
            principal = route.credentials(config.backend)[0]
            return f"{' or '.join(route.backend)} (SPNEGO as {principal}, the user as doas)"
        return " or ".join(route.backend)

    if len(routes) == 1:
        return f"every path -> {backend(routes[0])}, {routes[0].dialect} dialect"
    return "; ".join(f"{r.prefix} -> {backend(r)}, {r.dialect} dialect" for r in routes)


def _summary(config: Config) -> list[str]:
    """What serve would do with ``config``, for check-config."""
    scheme = "https" if config.server.tls_cert_file else "http"
    lines = [f"gateway: {scheme}://{config.server.host}:{config.server.port}; schemes: {', '.join(config.auth.schemes)}"]
    if config.embedded_mode:
        lines.append(f"backend: embedded on {config.embedded.listen}, serving {Path(config.embedded.root).resolve()}")
    lines.append(f"routes: {_describe_routes(config, 'the embedded backend')}")
    lines.append(_describe_keys(config))
    if config.admin.listen:
        lines.append(f"admin: http://{config.admin.listen} (/metrics, /healthz, /readyz)")
    else:
        lines.append("admin: off (admin.listen is empty: no metrics, /healthz or /readyz)")
    if config.embedded.auth == "kerberos":
        lines.append(
            f"authgateway embedded: callers authenticate with SPNEGO to {config.embedded.principal} "
            f"(embedded.keytab); {len(config.proxy_users)} proxy-user rule(s) for doas"
            + ("; serve refuses this file: it would serve the embedded routes in-process" if config.embedded_mode else "")
        )
    if config.embedded.groups:
        lines.append(
            "note: embedded.groups is deprecated and read as groups.static; move its entries there "
            "(the gateway's proxy-user rules and route access read them too)"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("aiohttp.server").addFilter(ClientErrorFilter())
    if args.command == "keys":
        return run_keys(args)
    # Until the gateway listens for it, a SIGHUP (a reload asked too early) must not end it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Every request writes access and audit records: skip gathering what no
    # format here prints (the logging HOWTO's "Optimization": caller, thread
    # and process names).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    config = _load(args, parser)
    logging.getLogger().setLevel(config.log.level.upper())
    if args.command == "check-config":
        print(f"{config.source or 'built-in defaults'}: configuration is valid")
        for line in _summary(config):
            print(f"  {line}")
        return 0
    try:
        if args.command == "serve":
            return _serve(config, _Reloader(lambda: load_config(args.config, overrides=_overrides(args)), config))
        return _embedded(config)
    except (_StartError, OSError) as exc:
        return _cannot_start(exc)


if __name__ == "__main__":
    raise SystemExit(main())
