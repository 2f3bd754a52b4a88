"""Worker processes: listening sockets bound once, several processes serving them.

The parent binds every listening socket before any worker exists, so a port
in use is reported once, with the setting to change, and port 0 is resolved
to one port for all.  A worker makes its sockets listen when it is ready to
serve (asyncio's ``create_server`` does): until then the kernel sends
connections to the workers that are, and a port that accepts connections
means that at least one worker serves it.  A TCP listener gets one socket per worker, bound to the
same address with ``SO_REUSEPORT``: the kernel spreads new connections over
them.  (A probe bound without ``SO_REUSEPORT`` first makes sure nobody else
listens there, since two programs run by one user could otherwise silently
share the port.)  A unix socket is one socket that every worker accepts on.

The parent keeps all sockets open and serves nothing.  A worker that dies is
replaced on its own sockets, so the connections the kernel queued for it wait
for its successor instead of being refused.  SIGTERM or SIGINT to the parent
goes on to every worker, which drains its requests; the parent waits for them
(up to the drain bound and a margin), then exits.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.log import server_logger

__all__ = ("BindError", "Listener", "bind", "default_workers", "supervise")

_BIND_ADVICE = {
    errno.EADDRINUSE: "address already in use: another program (or another authgateway) listens there",
    errno.EADDRNOTAVAIL: "not an address of this machine",
    errno.EACCES: "permission denied (ports below 1024 need root)",
}
_STOP_MARGIN = 10.0  # seconds a worker gets past the drain bound before it is killed
_RESPAWN_PAUSE = 1.0  # seconds between replacements of a worker that keeps dying at once
_READY_TIMEOUT = 120.0  # seconds the first start of every worker may take


class BindError(Exception):
    """A listener cannot be bound; the message names it, its address and why."""


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


@dataclass(frozen=True)
class Listener:
    """The bound sockets of one listener: ``per_worker[i]`` are worker ``i``'s."""

    address: str  # host:port with the port actually bound, or unix:/path
    per_worker: tuple[tuple[socket.socket, ...], ...]

    def keep_only(self, index: int) -> None:
        """In worker ``index``, close the other workers' sockets.

        Otherwise, when a worker stops listening at shutdown, a sibling still
        draining would keep its socket open and the kernel would go on queueing
        connections for nobody instead of refusing them.
        """
        mine = {id(sock) for sock in self.per_worker[index]}
        for socks in self.per_worker:
            for sock in socks:
                if id(sock) not in mine:
                    sock.close()

    def close(self) -> None:
        for socks in self.per_worker:
            for sock in socks:
                sock.close()
        if self.address.startswith("unix:"):
            try:
                os.unlink(self.address[len("unix:") :])
            except OSError:
                pass


def bind(listen: str, what: str, workers: int) -> Listener:
    """Bind ``listen`` (``host:port`` or ``unix:/path``) for ``workers`` processes.

    ``what`` names the listener and its settings in a :class:`BindError`.
    """
    try:
        if listen.startswith("unix:"):
            return _bind_unix(listen, workers)
        host, _, port = listen.rpartition(":")
        return _bind_tcp(host.strip("[]"), int(port), workers)
    except OSError as exc:
        why = _BIND_ADVICE.get(exc.errno or 0, exc.strerror or str(exc))
        raise BindError(f"{what} cannot listen on {listen}: {why}") from exc


def _bind_unix(listen: str, workers: int) -> Listener:
    path = listen[len("unix:") :]
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a stale socket of an earlier run; asyncio does the same
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o600)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return Listener(listen, tuple((sock,) for _ in range(workers)))


def _bind_tcp(host: str, port: int, workers: int) -> Listener:
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    addresses = list(dict.fromkeys((family, sockaddr[:2]) for family, _t, _p, _n, sockaddr in infos))
    bound: list[list[socket.socket]] = [[] for _ in range(workers)]
    try:
        for family, sockaddr in addresses:
            # The probe, without SO_REUSEPORT, fails on any listener already there.
            probe = _socket(family, reuse_port=False)
            try:
                probe.bind(sockaddr if port else (sockaddr[0], 0))
                port = probe.getsockname()[1]
            finally:
                probe.close()
            for socks in bound:
                sock = _socket(family, reuse_port=workers > 1)
                socks.append(sock)
                sock.bind((sockaddr[0], port))
                sock.setblocking(False)
    except OSError:
        for socks in bound:
            for sock in socks:
                sock.close()
        raise
    shown = f"[{host}]" if ":" in host else host
    return Listener(f"{shown}:{port}", tuple(tuple(socks) for socks in bound))


def _socket(family: int, *, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as asyncio: "::" is IPv6 only
    return sock


_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP}


@dataclass
class _Worker:
    index: int
    pid: int
    started: float
    ready_fd: int | None  # read end of its readiness pipe, until it reported


def supervise(
    workers: int,
    run_worker: Callable[[int, Callable[[], None]], int],
    drain_timeout: float,
    on_ready: Callable[[], None],
    on_stop: Callable[[], object],
    on_reload: Callable[[], object] = lambda: None,
    on_exit: Callable[[int], object] = lambda pid: None,
) -> int:
    """Run ``workers`` processes of ``run_worker(index, ready)`` until SIGTERM or SIGINT.

    ``run_worker`` serves worker ``index``'s sockets, calls ``ready()`` once
    it accepts connections, and returns its exit status after a stop.  The
    first start fails as a whole: if a worker exits before it is ready, the
    others are stopped and its status is returned.  ``on_ready`` runs in
    this process once every worker is ready, ``on_stop`` when they are told
    to stop (it closes this process's copies of the listening sockets, so
    that new connections are refused rather than queued for nobody).  Later,
    a worker that dies is replaced, and SIGHUP runs ``on_reload`` here, then
    goes to every worker.  ``on_exit(pid)`` runs for every worker that has
    exited, before any replacement starts.  Returns 0 after a clean stop.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    procs: dict[int, _Worker] = {}
    try:
        for index in range(workers):
            worker = _spawn(index, run_worker)
            procs[worker.pid] = worker
        status = _await_ready(procs)
        if status is None:
            on_ready()
            status = _watch(procs, run_worker, on_reload, on_exit)
        on_stop()
        _stop(procs, drain_timeout, on_exit)
        return status
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)


def _spawn(index: int, run_worker: Callable[[int, Callable[[], None]], int]) -> _Worker:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        status = 1
        try:
            os.close(read_fd)
            # Until its loop handles SIGHUP (a reload), the signal must not end it.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            _name_in_logs(index)

            def ready() -> None:
                os.write(write_fd, b"1")
                os.close(write_fd)

            status = run_worker(index, ready)
        except BaseException as exc:
            if not isinstance(exc, SystemExit):
                server_logger.exception("worker %d failed", index)
        finally:
            os._exit(status)
    os.close(write_fd)
    return _Worker(index, pid, time.monotonic(), read_fd)


def _name_in_logs(index: int) -> None:
    """Say in each log line of this worker which one it is."""
    for handler in logging.getLogger().handlers:
        fmt = handler.formatter._fmt if handler.formatter is not None else None
        if fmt and "%(message)s" in fmt:
            handler.setFormatter(logging.Formatter(fmt.replace("%(message)s", f"worker {index}: %(message)s")))


def _await_ready(procs: dict[int, _Worker]) -> int | None:
    """Wait until every worker is ready: ``None``, or the status of one that exited first."""
    deadline = time.monotonic() + _READY_TIMEOUT
    while any(w.ready_fd is not None for w in procs.values()):
        fds = [w.ready_fd for w in procs.values() if w.ready_fd is not None]
        readable, _, _ = select.select(fds, [], [], 0.05)
        for worker in list(procs.values()):
            if worker.ready_fd not in readable:
                continue
            assert worker.ready_fd is not None
            said = os.read(worker.ready_fd, 1)
            os.close(worker.ready_fd)
            worker.ready_fd = None
            if said != b"1":  # it exited before it was ready
                _, status = os.waitpid(worker.pid, 0)
                del procs[worker.pid]
                return os.waitstatus_to_exitcode(status) or 1
        if time.monotonic() > deadline:
            server_logger.error("the workers did not start within %.0f s", _READY_TIMEOUT)
            return 1
        if signal.sigtimedwait({signal.SIGTERM, signal.SIGINT}, 0) is not None:
            return 0
    return None


def _reap_one() -> tuple[int, int]:
    try:
        return os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return 0, 0


def _watch(
    procs: dict[int, _Worker],
    run_worker: Callable[[int, Callable[[], None]], int],
    on_reload: Callable[[], object],
    on_exit: Callable[[int], object],
) -> int:
    """Replace workers that die and pass SIGHUP on, until SIGTERM or SIGINT: then 0."""
    while True:
        info = signal.sigwaitinfo(_SIGNALS)
        if info.si_signo == signal.SIGHUP:
            # Here first, so a worker started from now on gets the new configuration.
            try:
                on_reload()
            except Exception:  # a reload must never stop the gateway
                server_logger.exception("reloading the configuration failed")
            for pid in procs:
                _signal(pid, signal.SIGHUP)
            continue
        if info.si_signo != signal.SIGCHLD:
            return 0
        while True:
            pid, status = _reap_one()
            if not pid:
                break
            dead = procs.pop(pid, None)
            if dead is None:
                continue
            if dead.ready_fd is not None:
                os.close(dead.ready_fd)
            on_exit(pid)
            server_logger.error(
                "worker %d (pid %d) exited with status %d; starting a new one",
                dead.index, pid, os.waitstatus_to_exitcode(status),
            )
            if time.monotonic() - dead.started < _RESPAWN_PAUSE:
                if signal.sigtimedwait({signal.SIGTERM, signal.SIGINT}, _RESPAWN_PAUSE) is not None:
                    return 0
            worker = _spawn(dead.index, run_worker)
            procs[worker.pid] = worker


def _stop(procs: dict[int, _Worker], drain_timeout: float, on_exit: Callable[[int], object]) -> None:
    """SIGTERM to every worker; wait for them (the drain bound and a margin), then kill what is left."""
    for pid in procs:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + drain_timeout + _STOP_MARGIN
    while procs:
        pid, _ = _reap_one()
        if pid:
            worker = procs.pop(pid, None)
            if worker is not None:
                on_exit(pid)
                if worker.ready_fd is not None:
                    os.close(worker.ready_fd)
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            for pid in procs:
                server_logger.error("worker pid %d did not stop in time: killed", pid)
                _signal(pid, signal.SIGKILL)
            deadline = float("inf")
            continue
        signal.sigtimedwait({signal.SIGCHLD}, min(left, 0.5))


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass

