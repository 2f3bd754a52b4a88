"""The admin listener: ``/metrics``, ``/healthz`` and ``/readyz``, never proxied.

It is served from one place, the process that binds the listeners and
supervises the workers (with one worker, that worker's own process), by a
thread of its own: it keeps answering while workers are replaced, and a
worker's event loop never runs a scrape.

* ``GET /metrics``: every worker's samples added up (:mod:`gateway.metrics`),
  in Prometheus' text format or OpenMetrics, as the scraper asks.
* ``GET /healthz``: 200 ``{"status": "alive"}`` while the process serves.
* ``GET /readyz``: 200 when every check passes, else 503; the body names
  each check, whether it passed, and what is wrong::

      {"ready": false, "checks": {"workers": {"ok": true, "detail": "2 of 2 serving"},
       "backends of /": {"ok": false, "detail": "http://nn:14000: Connection refused"}, ...}}

  The checks: every worker serving (a worker counts once its schemes, the
  Kerberos keytab among them, have started, and no longer once it drains
  at shutdown); every route with external backends has one that accepts a
  TCP connection within ``admin.probe_timeout`` (each backend is named with
  its state); each scheme's options still check out (a keytab still
  readable, holding its principal); the keytab the gateway authenticates to
  Kerberos backends with still holds its principal; the key files still
  readable and long enough.

The thread blocks every signal the supervisor waits for, so they reach the
main thread.  A fork waits until the admin thread is between requests: a
child must not inherit a lock held halfway through a probe.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import make_wsgi_app
from yarl import URL

from authplugins import scheme_class
from gateway.config import EMBEDDED, Config, read_secret
from gateway.keys import read_keys
from gateway.log import server_logger
from gateway.metrics import multiprocess_registry
from gateway.serving import SERVER_NAME

__all__ = ("AdminServer", "Check", "admin_app", "readiness")

# Signals the supervisor and the workers' loops handle: never delivered to this thread.
_BLOCKED = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2}
_CLIENT_TIMEOUT = 5.0  # seconds an admin client may take to send its request
_JSON = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
_WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check: what it looked at, whether it passed, and what it found."""

    name: str
    ok: bool
    detail: str


def _connect(host: str, port: int, timeout: float) -> str | None:
    """Why a TCP connection to ``host:port`` cannot be made within ``timeout``, or None."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no connection within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or str(exc)


def _backends(config: Config) -> dict[str, tuple[str, ...]]:
    """The external backend URLs of each route that has some, by prefix."""
    return {
        route.prefix: urls
        for route in config.routes
        if (urls := tuple(url for url in route.backend if url != EMBEDDED))
    }


def _key_files(config: Config) -> list[tuple[str, str]]:
    files = [(f"cookie.secret_files[{i}]", path) for i, path in enumerate(config.cookie.secret_files)]
    if not config.cookie.secret_files and not config.cookie.keys_file and config.embedded_mode:
        files.append(("cookie key", str(config.state_dir / "cookie.secret")))
    if config.backend.identity_secret_file:
        files.append(("backend.identity_secret_file", config.backend.identity_secret_file))
    elif config.embedded_mode:
        files.append(("identity key", str(config.state_dir / "identity.secret")))
    return files


def _outbound_credentials(config: Config) -> dict[tuple[str, str], list[str]]:
    """The principal and keytab the gateway authenticates to backends with, and the routes that use them."""
    found: dict[tuple[str, str], list[str]] = {}
    for route in config.routes:
        if route.auth == "kerberos":
            found.setdefault(route.credentials(config.backend), []).append(route.prefix)
    return found


def _keytab_problem(principal: str, keytab: str) -> str | None:
    """Why ``keytab`` cannot serve to authenticate as ``principal`` now, or None."""
    from authplugins.kerberos import read_keytab_principals  # gssapi only where Kerberos is used

    try:
        listed = read_keytab_principals(keytab)
    except OSError as exc:
        return f"{keytab}: {exc.strerror or exc}"
    except ValueError as exc:
        return f"{keytab}: {exc}"
    held = principal in listed if "@" in principal else any(p.partition("@")[0] == principal for p in listed)
    return None if held else f"{keytab} no longer holds {principal}"


def readiness(config: Config, workers: int, serving: Callable[[], int]) -> list[Check]:
    """Every readiness check of the gateway, run now; ``serving()`` counts the workers serving."""
    checks: list[Check] = []
    up = serving()
    checks.append(Check("workers", up >= workers, f"{up} of {workers} serving"))
    backends = _backends(config)
    timeout = config.admin.probe_timeout
    if backends:
        urls = list(dict.fromkeys(url for route_urls in backends.values() for url in route_urls))
        with ThreadPoolExecutor(max_workers=min(len(urls), 16), thread_name_prefix="admin-probe") as pool:
            parsed = [URL(url) for url in urls]
            why_not = dict(zip(urls, pool.map(lambda u: _connect(u.host or "", u.port or 80, timeout), parsed)))
        # A route with a list of backends serves while one of them does (it fails over).
        for prefix, route_urls in backends.items():
            details = [f"{url}: {why_not[url] or 'accepts connections'}" for url in route_urls]
            ok = any(why_not[url] is None for url in route_urls)
            checks.append(Check(f"backends of {prefix}", ok, "; ".join(details)))
    for name, options in config.scheme_options:
        problems = scheme_class(name).check_options(options)
        checks.append(Check(f"auth.{name}", not problems, "; ".join(problems) or "options check out"))
    for (principal, keytab), prefixes in _outbound_credentials(config).items():
        why = _keytab_problem(principal, keytab)
        checks.append(Check(f"backend keytab of {', '.join(prefixes)}", why is None, why or f"{keytab} holds {principal}"))
    if config.cookie.keys_file:
        try:
            held = len(read_keys(config.cookie.keys_file))
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            checks.append(Check("keys: cookie.keys_file", False, f"{config.cookie.keys_file}: {why}"))
        else:
            checks.append(Check("keys: cookie.keys_file", True, f"readable, {held} key(s)"))
    for label, path in _key_files(config):
        try:
            read_secret(path)
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            checks.append(Check(f"keys: {label}", False, f"{path}: {why}"))
        else:
            checks.append(Check(f"keys: {label}", True, "readable"))
    return checks


def _serving_workers(path: str) -> Callable[[], int]:
    registry = multiprocess_registry(path)

    def serving() -> int:
        value = registry.get_sample_value("authgateway_workers")
        return int(value or 0)

    return serving


def admin_app(config: Callable[[], Config], workers: int, metrics_dir: str) -> _WSGI:
    """The WSGI application of the admin listener; ``config()`` is the configuration in force (SIGHUP may change it)."""
    metrics = make_wsgi_app(multiprocess_registry(metrics_dir))
    serving = _serving_workers(metrics_dir)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == "/metrics":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        if path not in ("/healthz", "/readyz"):
            return _json(start_response, "404 Not Found", {"error": "not found: /metrics, /healthz, /readyz"})
        if method not in ("GET", "HEAD"):
            return _json(start_response, "405 Method Not Allowed", {"error": "GET only"}, [("Allow", "GET, HEAD")])
        if path == "/healthz":
            return _json(start_response, "200 OK", {"status": "alive"})
        checks = readiness(config(), workers, serving)
        ready = all(c.ok for c in checks)
        body = {"ready": ready, "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks}}
        if not ready:
            server_logger.info("not ready: %s", "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok))
        return _json(start_response, "200 OK" if ready else "503 Service Unavailable", body)

    return app


def _json(
    start_response: Callable[..., Any], status: str, body: object, headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    data = json.dumps(body).encode() + b"\n"
    start_response(status, [*_JSON, ("Content-Length", str(len(data))), *(headers or [])])
    return [data]


class _Handler(WSGIRequestHandler):
    timeout = _CLIENT_TIMEOUT

    def version_string(self) -> str:
        # http.server's own answers (a malformed request line): the name only, as every other answer.
        return SERVER_NAME


def _named(app: _WSGI) -> _WSGI:
    """``app`` with ``Server: authgateway`` on every answer, not wsgiref's ``WSGIServer/0.2 CPython/3.11.x``
    (wsgiref adds its own only to an answer that has none)."""

    def named(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            return start_response(status, [*headers, ("Server", SERVER_NAME)], *exc_info)

        return app(environ, start)

    return named

    def log_message(self, format: str, *args: Any) -> None:
        server_logger.debug("admin: " + format, *args)


class _Server(WSGIServer):
    """A one-thread WSGI server on a socket bound elsewhere; a request at a time, under the fork lock
    (shared by every server of one :class:`AdminServer`)."""

    request_queue_size = 64

    def __init__(self, sock: socket.socket, fork_lock: threading.Lock) -> None:
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_name, self.server_port = str(sock.getsockname()[0]), int(sock.getsockname()[1])
        self.setup_environ()
        self._fork_lock = fork_lock

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._fork_lock:
            super().process_request(request, client_address)


class AdminServer:
    """The admin listener on ``socks`` (bound, not yet listening), one thread each, until :meth:`close`.

    A host name may stand for several addresses (``localhost``: 127.0.0.1 and
    ::1), each with a socket of its own.
    """

    def __init__(self, socks: Sequence[socket.socket], app: _WSGI) -> None:
        self._fork_lock = threading.Lock()
        self._servers = [_Server(sock, self._fork_lock) for sock in socks]
        for server in self._servers:
            server.set_app(_named(app))
        self._threads: list[threading.Thread] = []
        os.register_at_fork(
            before=self._fork_lock.acquire,
            after_in_parent=self._fork_lock.release,
            after_in_child=self._in_child,
        )

    def _in_child(self) -> None:
        # A worker serves nothing of this: its copies of the sockets go.
        self._fork_lock.release()
        for server in self._servers:
            server.socket.close()

    def start(self) -> None:
        # The threads inherit this mask: no signal meant for the supervisor
        # or the event loop can land on them, not even before they run.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
        try:
            for server in self._servers:
                server.server_activate()
                thread = threading.Thread(target=server.serve_forever, name="admin", daemon=True)
                thread.start()
                self._threads.append(thread)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def close(self) -> None:
        for server, thread in zip(self._servers, self._threads):
            server.shutdown()
            thread.join()
        self._threads.clear()
        for server in self._servers:
            server.server_close()
