"""The ``authgateway`` command: serve, check-config, embedded."""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import secrets
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.config import Config, ConfigError, load_config, read_secret
from gateway.cookie import KeyRing
from gateway.log import ClientErrorFilter, access_logger, server_logger
from gateway.serving import ConnectionLimit, InFlight

__all__ = ("main",)

EXIT_CONFIG = 2
# Hadoop's HTTP servers accept 64 KiB of request headers: a Kerberos ticket
# carrying many group SIDs (Active Directory) outgrows aiohttp's 8 KiB.
_MAX_HEADER_FIELD = 65536
_ACCESS_FORMAT = '%a "%r" %s %b %Dus'
_READ_BUFFER = 16 * 1024
_AFTER_DRAIN = 2.0  # seconds


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


def _keys(config: Config) -> tuple[KeyRing, bytes | None]:
    if config.cookie.secret_files:
        keyring = KeyRing.from_files(config.cookie.secret_files)
    else:  # only reachable in embedded mode: the config loader insists otherwise
        keyring = KeyRing([_ensure_key(config.state_dir / "cookie.secret", "cookie signing key")])
    identity_key: bytes | None = None
    if config.backend.identity_secret_file:
        identity_key = read_secret(config.backend.identity_secret_file)
    elif config.embedded_mode:
        identity_key = _ensure_key(config.state_dir / "identity.secret", "backend identity key")
    return keyring, identity_key


class _LimitedTCPSite(web.TCPSite):
    """A TCP site whose connections pass through a :class:`ConnectionLimit`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *, limit: int, **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self._limit = limit

    async def start(self) -> None:
        await web.BaseSite.start(self)
        assert self._runner.server is not None
        self._server = await asyncio.get_running_loop().create_server(
            ConnectionLimit(self._runner.server, self._limit),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]


async def _start_site(
    runner: web.AppRunner,
    listen: str,
    ssl_context: ssl.SSLContext | None = None,
    max_connections: int | None = None,
) -> str:
    await runner.setup()
    site: web.BaseSite
    if listen.startswith("unix:"):
        path = listen[len("unix:") :]
        site = web.UnixSite(runner, path)
        await site.start()
        os.chmod(path, 0o600)
        return listen
    host, _, port = listen.rpartition(":")
    if max_connections is None:
        site = web.TCPSite(runner, host.strip("[]"), int(port), ssl_context=ssl_context, reuse_address=True)
    else:
        site = _LimitedTCPSite(
            runner, host.strip("[]"), int(port), limit=max_connections, ssl_context=ssl_context, reuse_address=True
        )
    await site.start()
    actual = runner.addresses[0][1]  # the bound port, when 0 was asked for
    return f"{host}:{actual}"


def _runner(app: web.Application, shutdown_timeout: float = _AFTER_DRAIN, **kwargs: Any) -> web.AppRunner:
    return web.AppRunner(
        app,
        handler_cancellation=True,
        max_field_size=_MAX_HEADER_FIELD,
        max_line_size=_MAX_HEADER_FIELD,
        # A connection buffers at most twice this of a request body before
        # aiohttp stops reading it: memory follows connections, not uploads.
        read_bufsize=_READ_BUFFER,
        # Behind the gateway, its drain (InFlight) has already waited for the
        # requests: what is left is idle connections and requests being cut.
        shutdown_timeout=shutdown_timeout,
        **kwargs,
    )


async def _run_until_stopped(runners: Sequence[web.AppRunner], drain_timeout: float, in_flight: InFlight | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
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
        for runner in reversed(runners):
            await runner.cleanup()
        server_logger.info("stopped after %.1f s", loop.time() - started)


async def _start_embedded(
    config: Config, identity_key: bytes, runners: list[web.AppRunner], shutdown_timeout: float = _AFTER_DRAIN
) -> str:
    """Start the embedded backend (its runner joins ``runners``); return where it listens."""
    from gateway.embedded import build_embedded_app
    from gateway.identity import IdentitySigner

    Path(config.embedded.root).mkdir(parents=True, exist_ok=True)
    app = build_embedded_app(
        config.embedded, signer=IdentitySigner(identity_key), identity_header=config.backend.identity_header
    )
    runner = _runner(app, shutdown_timeout, access_log=None)
    runners.append(runner)
    where = await _start_site(runner, config.embedded.listen)
    server_logger.info("embedded backend serving %s on %s", config.embedded.root, where)
    return where


async def _serve(config: Config) -> None:
    from gateway.app import IN_FLIGHT, build_gateway_app

    keyring, identity_key = _keys(config)
    runners: list[web.AppRunner] = []
    unix_socket: str | None = None
    try:
        if config.embedded_mode:
            assert identity_key is not None
            where = await _start_embedded(config, identity_key, runners)
            if where.startswith("unix:"):
                unix_socket, backend_url = where[len("unix:") :], "http://localhost"
            else:
                backend_url = f"http://{where}"
        else:
            backend_url = config.backend.url
        app = build_gateway_app(
            config, keyring=keyring, backend_url=backend_url, identity_key=identity_key, unix_socket=unix_socket
        )
        ssl_context = None
        if config.server.tls_cert_file:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(config.server.tls_cert_file, config.server.tls_key_file)
        runner = _runner(
            app,
            access_log=access_logger if config.server.access_log else None,
            access_log_format=_ACCESS_FORMAT,
        )
        runners.append(runner)
        where = await _start_site(
            runner,
            f"{config.server.host}:{config.server.port}",
            ssl_context,
            max_connections=config.server.max_connections,
        )
        scheme = "https" if ssl_context else "http"
        server_logger.info(
            "authgateway listening on %s://%s (schemes: %s; backend: %s)",
            scheme, where, ", ".join(config.auth.schemes),
            "embedded" if config.embedded_mode else config.backend.dialect,
        )
    except BaseException:
        for r in reversed(runners):
            await r.cleanup()
        raise
    await _run_until_stopped(runners, config.server.shutdown_timeout, app[IN_FLIGHT])


async def _embedded(config: Config) -> None:
    _, identity_key = _keys(config)
    assert identity_key is not None
    runners: list[web.AppRunner] = []
    try:
        # Alone, the backend's own requests get the drain bound.
        await _start_embedded(config, identity_key, runners, config.server.shutdown_timeout)
    except BaseException:
        for r in runners:
            await r.cleanup()
        raise
    await _run_until_stopped(runners, config.server.shutdown_timeout, None)


def _load(path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"authgateway: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="authgateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway (and the embedded backend unless backend.url is set)")
    serve.add_argument("-c", "--config", help="TOML configuration file (default: built-in defaults)")
    check = sub.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("config", help="TOML configuration file")
    embedded = sub.add_parser("embedded", help="run only the embedded backend")
    embedded.add_argument("-c", "--config", help="TOML configuration file")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=os.environ.get("AUTHGATEWAY_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.server").addFilter(ClientErrorFilter())
    config = _load(args.config)
    if args.command == "check-config":
        print(f"{args.config}: configuration is valid")
        return 0
    try:
        asyncio.run(_serve(config) if args.command == "serve" else _embedded(config))
    except OSError as exc:
        server_logger.error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
