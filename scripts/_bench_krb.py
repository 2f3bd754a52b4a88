"""The Kerberos half of scripts/bench.py: Apache httpd + mod_auth_gssapi, and a SPNEGO load client.

* :func:`apache` runs Apache httpd in the foreground from its own minimal
  configuration (mpm_event, threads enough for every benchmark connection, no
  child reaped or spawned during a run) in a temporary directory:
  ``/file.bin`` served from disk and ``/nginx/`` proxied to the benchmark's
  nginx origin, both behind mod_auth_gssapi with a session cookie.
* :func:`spnego_load` is the load generator for full SPNEGO on every request,
  the same for every server: the tokens are made in advance (a fresh
  security context each, by python-gssapi in as many processes as there are
  cores, from the user's credential cache holding the TGT and the service
  ticket), then client processes send each of them once, pre-emptively, on
  raw HTTP/1.1 keep-alive connections, with no cookie.  Making tokens thus
  costs the client no CPU while the clock runs.
* :func:`token_rate` is how fast one process makes tokens and nothing else.
* :func:`process_tree` and :func:`cpu_seconds` / :func:`rss_bytes` account a
  server's processes (all its descendants: nginx's and Apache's children,
  the gateway's workers).
"""

from __future__ import annotations

import base64
import multiprocessing
import os
import pwd
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import stop_process

__all__ = (
    "APACHE_MPM", "LoadResult", "apache", "cpu_seconds", "make_requests", "process_tree", "replay_statuses",
    "rss_bytes", "spnego_load", "token_rate",
)

SERVICE = "HTTP@localhost"
_MODULES = "/usr/lib/apache2/modules"
# The user Debian's apache2 package runs as: httpd refuses to serve as root.
_APACHE_USER = "www-data"

# Apache's best configuration for this job on a small machine: mpm_event (its threads run on every
# core; keep-alive connections waiting for their next request hold no thread), all children started at
# once and never reaped (a child reaped as idle between or during runs closes keep-alive connections
# under wrk), and twice as many threads as the largest connection count (256): when every thread is
# busy, mpm_event closes idle keep-alive connections, which wrk counts as read errors (with 256 threads,
# hundreds in 5 s at 256 connections; with Debian's 2 children x 25 threads, MaxRequestWorkers 150, a
# third of all requests).  4 x 128 threads did as well as 2 x 256 and 8 x 64 at 32 and 256 connections
# on a 2-core machine.  Keep-alive unlimited, like the gateway, so neither server is timed reconnecting
# (Debian ships MaxKeepAliveRequests 100).
APACHE_MPM = """\
StartServers 4
ServerLimit 4
ThreadLimit 128
ThreadsPerChild 128
MaxRequestWorkers 512
MinSpareThreads 128
MaxSpareThreads 512
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5"""

APACHE_CONF = """
ServerRoot {root}
ServerName localhost
Listen 127.0.0.1:{port}
PidFile {root}/httpd.pid
DefaultRuntimeDir {root}
ErrorLog {root}/error.log
LogLevel warn
{user}
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authz_user_module {modules}/mod_authz_user.so
LoadModule request_module {modules}/mod_request.so
LoadModule session_module {modules}/mod_session.so
LoadModule session_cookie_module {modules}/mod_session_cookie.so
LoadModule auth_gssapi_module {modules}/mod_auth_gssapi.so
LoadModule proxy_module {modules}/mod_proxy.so
LoadModule proxy_http_module {modules}/mod_proxy_http.so

{mpm}

DocumentRoot {www}
<Directory />
  Require all denied
</Directory>
<Location />
  AuthType GSSAPI
  AuthName "authgateway bench"
  GssapiCredStore keytab:{keytab}
  GssapiAllowedMech krb5
  GssapiUseSessions On
  GssapiSessionKey file:{root}/session.key
  Session On
  SessionCookieName gssapi_session path=/;httponly
  Require valid-user
</Location>
ProxyPass /nginx/ http://127.0.0.1:{origin}/
"""


# -- processes and their CPU time ------------------------------------------------------


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        # The command name (field 2) may hold spaces; everything after its ")" splits cleanly.
        return fh.read().rpartition(")")[2].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, ``pid`` first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    tree = [pid]
    for parent in tree:  # grows while it is walked: breadth first
        tree.extend(children.get(parent, ()))
    return tree


def rss_bytes(pids: list[int]) -> int:
    """The resident set sizes of the processes still alive, summed."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds so far of each process (all its threads) still alive."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


# -- Apache httpd ----------------------------------------------------------------------


@dataclass(frozen=True)
class Apache:
    port: int
    pid: int
    rcache_dir: Path
    command: list[str]
    conf: Path


@contextmanager
def apache(
    tmp: Path, *, port: int, origin: int, www: Path, keytab: Path, env: Mapping[str, str], mpm: str = APACHE_MPM
) -> Iterator[Apache]:
    """Run Apache httpd with mod_auth_gssapi on ``127.0.0.1:port`` until the block ends.

    ``env`` is the realm's environment; the replay cache stays the Kerberos
    default (file2), in Apache's own directory.  ``mpm`` holds the process,
    thread and keep-alive directives.
    """
    root = tmp / "apache"
    root.mkdir(mode=0o700)
    own_keytab = root / "http.keytab"
    shutil.copyfile(keytab, own_keytab)
    user = ""
    if os.geteuid() == 0:
        # The server processes run as www-data and must read the keytab and keep the replay cache.
        entry = pwd.getpwnam(_APACHE_USER)
        for path in (root, own_keytab):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        user = f"User {_APACHE_USER}\nGroup {_APACHE_USER}"
    conf = root / "httpd.conf"
    conf.write_text(
        APACHE_CONF.format(
            root=root, port=port, user=user, modules=_MODULES, www=www, keytab=own_keytab, origin=origin,
            mpm=mpm,
        )
    )
    apache2 = shutil.which("apache2", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if apache2 is None:
        raise RuntimeError("apache2 is not installed (scripts/bench installs it)")
    full_env = {**os.environ, **env, "KRB5RCACHEDIR": str(root)}
    full_env.pop("KRB5CCNAME", None)
    command = [apache2, "-f", str(conf), "-DFOREGROUND"]
    with open(root / "stdout.log", "wb") as log:
        proc = subprocess.Popen(command, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc, root / "error.log")
        yield Apache(port, proc.pid, root, command, conf)
    except BaseException:
        log_text = (root / "error.log").read_text(errors="replace")
        print(f"apache2 error log ({len(log_text)} characters), the end:\n{log_text[-4000:]}", file=sys.stderr)
        raise
    finally:
        stop_process(proc)  # SIGTERM is Apache's immediate stop; its children go with it.


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    from tests.conftest import wait_for_port

    try:
        wait_for_port(port, proc)
    except (RuntimeError, TimeoutError) as exc:
        text = log.read_text(errors="replace") if log.exists() else ""
        raise RuntimeError(f"apache2 did not start: {exc}\n{text}") from exc


# -- the SPNEGO client -----------------------------------------------------------------


def _initiator(ccache: str, name: str) -> Any:
    """Credentials from ``ccache`` copied into a private in-memory cache (no file read per token)."""
    import gssapi

    creds = gssapi.Credentials(usage="initiate", store={"ccache": ccache})
    creds.store(store={"ccache": f"MEMORY:{name}"}, overwrite=True)
    return gssapi.Credentials(usage="initiate", store={"ccache": f"MEMORY:{name}"})


class _Tokens:
    """Fresh SPNEGO (Kerberos first) initiator tokens with mutual authentication requested, as curl makes."""

    def __init__(self, ccache: str, name: str) -> None:
        import gssapi

        self._gssapi = gssapi
        self._creds = _initiator(ccache, name)
        self._target = gssapi.Name(SERVICE, gssapi.NameType.hostbased_service)
        self._mech = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
        self._flags = gssapi.RequirementFlag.mutual_authentication

    def header(self) -> bytes:
        context = self._gssapi.SecurityContext(
            name=self._target, creds=self._creds, usage="initiate", mech=self._mech, flags=self._flags
        )
        return b"Negotiate " + base64.b64encode(context.step())


def token_rate(ccache: str, seconds: float) -> float:
    """Tokens per second one process makes (one core), the service ticket already cached."""
    tokens = _Tokens(ccache, "rate")
    tokens.header()
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        tokens.header()
        count += 1
    return count / (time.perf_counter() - start)


def _response_length(buf: bytes | bytearray) -> tuple[int, int] | None:
    """(status, length) of the complete HTTP/1.1 response at the start of ``buf``; None if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {}
    for line in head[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    pos = end + 4
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            pos = eol + 2
            if size == 0:
                # No trailers are expected: the last chunk is followed by an empty line.
                return (status, pos + 2) if len(buf) >= pos + 2 else None
            pos += size + 2
            if len(buf) < pos:
                return None
    length = pos + int(headers.get("content-length", "0"))
    return (status, length) if len(buf) >= length else None


def replay_statuses(port: int, path: str, ccache: str) -> tuple[int, int]:
    """Send one token twice, each on a new connection: the statuses (200, then a refusal if replays are caught)."""
    header = _Tokens(ccache, "replay").header()
    request = f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nAuthorization: ".encode() + header + b"\r\n\r\n"
    statuses = []
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request)
            buf = bytearray()
            while (done := _response_length(buf)) is None:
                data = sock.recv(65536)
                if not data:
                    raise RuntimeError(f"127.0.0.1:{port} closed the connection before answering")
                buf += data
            statuses.append(done[0])
    return statuses[0], statuses[1]


def _make_chunk(ccache: str, index: int, prefix: bytes, count: int) -> list[bytes]:
    tokens = _Tokens(ccache, f"maker{index}")
    return [prefix + tokens.header() + b"\r\n\r\n" for _ in range(count)]


def make_requests(port: int, path: str, ccache: str, count: int, processes: int) -> list[bytes]:
    """``count`` complete GET requests, each with its own fresh SPNEGO token, made by ``processes`` processes.

    ``ccache`` must already hold the service ticket: making them asks the KDC nothing.
    """
    prefix = f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nAuthorization: ".encode()
    shares = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        chunks = pool.starmap(_make_chunk, [(ccache, i, prefix, n) for i, n in enumerate(shares)])
    return [request for chunk in chunks for request in chunk]


@dataclass
class LoadResult:
    ok: int
    errors: int
    seconds: float  # the measured window: the run's length, or less if the tokens ran out first
    latencies: list[float]
    client_cpu: float  # CPU seconds of all client processes within the timed window
    statuses: dict[int, int]
    tokens: int  # made in advance for this run
    make_seconds: float  # how long making them took (before the clock started)
    ran_out: bool  # the window was cut short: a client process had sent all its tokens

    @property
    def rps(self) -> float:
        return self.ok / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return self.latencies[min(len(self.latencies) - 1, int(len(self.latencies) * q))]


def _worker(
    index: int, port: int, requests: list[bytes], conns: int,
    ready: Any, start: Any, window: Any, ran_out: Any, results: Any,  # multiprocessing's queues, events, array
) -> None:
    """Send each of ``requests`` once over ``conns`` keep-alive connections until they or the window run out."""
    pending = iter(requests)
    sel = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytearray] = {}
    sent_at: dict[socket.socket, float] = {}
    done_ok: list[tuple[float, float]] = []  # (time answered, latency) of each 200
    done_other: list[tuple[float, int]] = []  # (time, status; 0 for a closed connection) of everything else
    exhausted = float("inf")

    def send(sock: socket.socket) -> bool:
        nonlocal exhausted
        request = next(pending, None)
        if request is None:
            exhausted = time.monotonic()
            ran_out.set()
            return False
        sent_at[sock] = time.monotonic()
        sock.sendall(request)  # a few hundred bytes on an idle keep-alive socket: never blocks for long
        return True

    def connect() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffers[sock] = bytearray()
        sel.register(sock, selectors.EVENT_READ)
        return sock

    socks = [connect() for _ in range(conns)]
    ready.put(index)
    start.wait()
    begin, end = window[0], window[1]
    while time.monotonic() < begin:
        time.sleep(0.0005)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    running = all(send(sock) for sock in socks)
    while running:
        now = time.monotonic()
        if now >= end:
            break
        for key, _ in sel.select(timeout=end - now):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            buf = buffers[sock]
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                done_other.append((time.monotonic(), 0))
                sel.unregister(sock)
                sock.close()
                del buffers[sock]
                running = send(connect())
                if not running:
                    break
                continue
            buf += data
            done = _response_length(buf)
            if done is None:
                continue
            status, length = done
            stamp = time.monotonic()
            del buf[:length]
            if status == 200:
                done_ok.append((stamp, stamp - sent_at[sock]))
            else:
                done_other.append((stamp, status))
            if not send(sock):
                running = False
                break
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    for sock in buffers:
        sock.close()
    results.put((done_ok, done_other, cpu, exhausted))


def spnego_load(
    port: int, path: str, ccache: str, *, seconds: float, processes: int, conns: int, tokens: int,
    makers: int, server: Callable[[], list[int]],
) -> tuple[LoadResult, float]:
    """Full SPNEGO on every request; returns the result and the server's CPU seconds in the window.

    ``tokens`` requests are made in advance (by ``makers`` processes), then
    ``processes`` client processes share ``conns`` connections and the tokens
    and send each token once, for ``seconds`` or until one of them has sent
    all its share, whichever comes first: the window is cut there, and only
    what was answered inside it counts.  ``ccache`` must already hold the
    service ticket for HTTP/localhost, so no request goes to the KDC.
    ``server()`` lists the server's processes, sampled for CPU time over the
    same window.
    """
    processes = max(1, min(processes, conns))
    made = time.monotonic()
    requests = make_requests(port, path, ccache, tokens, makers)
    make_seconds = time.monotonic() - made
    ctx = multiprocessing.get_context("fork")
    ready, results = ctx.Queue(), ctx.Queue()
    start, ran_out = ctx.Event(), ctx.Event()
    window = ctx.Array("d", 2)
    split = [conns // processes + (1 if i < conns % processes else 0) for i in range(processes)]
    workers = [
        ctx.Process(
            target=_worker,
            args=(i, port, requests[i::processes], split[i], ready, start, window, ran_out, results),
            daemon=True,
        )
        for i in range(processes)
    ]
    del requests  # the children have their copies
    try:
        for w in workers:
            w.start()
        for _ in workers:
            ready.get(timeout=60)
        begin = time.monotonic() + 0.2
        window[0], window[1] = begin, begin + seconds
        start.set()
        time.sleep(max(0.0, begin - time.monotonic()))
        server0 = cpu_seconds(server())
        ran_out.wait(timeout=max(0.0, begin + seconds - time.monotonic()))
        server1 = cpu_seconds(server())
        parts = [results.get(timeout=60) for _ in workers]
        for w in workers:
            w.join(timeout=10)
    finally:
        for w in workers:
            if w.is_alive():
                w.terminate()
                w.join(timeout=5)
            if w.is_alive():
                w.kill()
                w.join()
    cut = min([begin + seconds, *(p[3] for p in parts)])
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    errors = 0
    for done_ok, done_other, _, _ in parts:
        inside = [latency for stamp, latency in done_ok if stamp < cut]
        latencies.extend(inside)
        if inside:
            statuses[200] = statuses.get(200, 0) + len(inside)
        for stamp, status in done_other:
            if stamp < cut:
                statuses[status] = statuses.get(status, 0) + 1
                errors += 1
    latencies.sort()
    result = LoadResult(
        ok=len(latencies),
        errors=errors,
        seconds=cut - begin,
        latencies=latencies,
        client_cpu=sum(p[2] for p in parts),
        statuses=statuses,
        tokens=tokens,
        make_seconds=make_seconds,
        ran_out=cut < begin + seconds,
    )
    server_cpu = sum(server1[pid] - server0.get(pid, 0.0) for pid in server1)
    return result, server_cpu
