"""The Kerberos half of scripts/bench.py: Apache httpd + mod_auth_gssapi, and a SPNEGO load client.

* :func:`apache` runs Apache httpd in the foreground from its own minimal
  configuration (mpm_event, Debian's shipped thread settings) in a temporary
  directory: ``/file.bin`` served from disk and ``/nginx/`` proxied to the
  benchmark's nginx origin, both behind mod_auth_gssapi with a session cookie.
* :func:`spnego_load` is the load generator for full SPNEGO on every request,
  the same for every server: client processes, each with its own copy of the
  user's credential cache (TGT and service ticket) in memory, making a fresh
  token per request with python-gssapi and sending it pre-emptively on raw
  HTTP/1.1 keep-alive connections, with no cookie.
* :func:`token_rate` is how fast one client process makes tokens and nothing
  else: the ceiling of that client per core.
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

__all__ = ("LoadResult", "apache", "cpu_seconds", "process_tree", "replay_statuses", "spnego_load", "token_rate")

SERVICE = "HTTP@localhost"
_MODULES = "/usr/lib/apache2/modules"
# The user Debian's apache2 package runs as: httpd refuses to serve as root.
_APACHE_USER = "www-data"

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

# Debian's shipped mods-available/mpm_event.conf, except MaxSpareThreads (75 there): a
# child reaped as idle between or during runs closes keep-alive connections under wrk.
StartServers 2
MinSpareThreads 25
MaxSpareThreads 150
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
# Debian ships 100; unlimited, like the gateway, so neither server is timed reconnecting.
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5

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
    """``pid`` and its direct children (Apache's parent and its server processes)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat(int(entry))[1]) == pid:
                    children.append(int(entry))
            except (OSError, IndexError):
                continue
    return [pid, *children]


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


@contextmanager
def apache(
    tmp: Path, *, port: int, origin: int, www: Path, keytab: Path, env: Mapping[str, str]
) -> Iterator[Apache]:
    """Run Apache httpd with mod_auth_gssapi on ``127.0.0.1:port`` until the block ends.

    ``env`` is the realm's environment; the replay cache stays the Kerberos
    default (file2), in Apache's own directory.
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
            root=root, port=port, user=user, modules=_MODULES, www=www, keytab=own_keytab, origin=origin
        )
    )
    apache2 = shutil.which("apache2", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if apache2 is None:
        raise RuntimeError("apache2 is not installed (scripts/bench installs it)")
    full_env = {**os.environ, **env, "KRB5RCACHEDIR": str(root)}
    full_env.pop("KRB5CCNAME", None)
    with open(root / "stdout.log", "wb") as log:
        proc = subprocess.Popen(
            [apache2, "-f", str(conf), "-DFOREGROUND"], env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(port, proc, root / "error.log")
        yield Apache(port, proc.pid, root)
    except BaseException:
        log_text = (root / "error.log").read_text(errors="replace")
        print(f"apache2 error log ({len(log_text)} characters), the end:\n{log_text[-4000:]}", file=sys.stderr)
        raise
    finally:
        stop(proc)  # SIGTERM is Apache's immediate stop; its children go with it.


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc``, and kill it if it has not gone within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    from tests.conftest import wait_for_port

    try:
        wait_for_port(port, proc)
    except (RuntimeError, TimeoutError) as exc:
        text = log.read_text(errors="replace") if log.exists() else ""
        raise RuntimeError(f"apache2 did not start: {exc}\n{text}") from exc


# -- the SPNEGO client -----------------------------------------------------------------


def _initiator(ccache: str, name: str) -> object:
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


@dataclass
class LoadResult:
    ok: int
    errors: int
    seconds: float
    latencies: list[float]
    client_cpu: float  # CPU seconds of all client processes within the timed window
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.ok / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return self.latencies[min(len(self.latencies) - 1, int(len(self.latencies) * q))]


def _worker(
    index: int, port: int, path: str, ccache: str, conns: int,
    ready: multiprocessing.Queue, start: multiprocessing.Event, window: multiprocessing.Array,
    results: multiprocessing.Queue,
) -> None:
    tokens = _Tokens(ccache, f"client{index}")
    tokens.header()  # the service ticket is in the copy already; this proves it
    prefix = f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nAuthorization: ".encode()
    sel = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytearray] = {}
    sent_at: dict[socket.socket, float] = {}
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    ok = errors = 0

    def send(sock: socket.socket) -> None:
        request = prefix + tokens.header() + b"\r\n\r\n"
        sent_at[sock] = time.monotonic()
        sock.sendall(request)  # a few hundred bytes on an idle keep-alive socket: never blocks for long

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
    for sock in socks:
        send(sock)
    while True:
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
                errors += 1
                sel.unregister(sock)
                sock.close()
                del buffers[sock]
                send(connect())
                continue
            buf += data
            done = _response_length(buf)
            if done is None:
                continue
            status, length = done
            stamp = time.monotonic()
            del buf[:length]
            if stamp < end:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    ok += 1
                    latencies.append(stamp - sent_at[sock])
                else:
                    errors += 1
            send(sock)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    for sock in buffers:
        sock.close()
    results.put((ok, errors, latencies, cpu, statuses))


def spnego_load(
    port: int, path: str, ccache: str, *, seconds: float, processes: int, conns: int,
    server: Callable[[], list[int]],
) -> tuple[LoadResult, float]:
    """Full SPNEGO on every request for ``seconds``; returns the result and the server's CPU seconds.

    ``ccache`` must already hold the service ticket for HTTP/localhost, so no
    request goes to the KDC while the clock runs.  ``server()`` lists the
    server's processes, sampled for CPU time over the same window.
    """
    ctx = multiprocessing.get_context("fork")
    ready, results = ctx.Queue(), ctx.Queue()
    start = ctx.Event()
    window = ctx.Array("d", 2)
    workers = [
        ctx.Process(
            target=_worker, args=(i, port, path, ccache, conns, ready, start, window, results), daemon=True
        )
        for i in range(processes)
    ]
    try:
        for w in workers:
            w.start()
        for _ in workers:
            ready.get(timeout=30)
        begin = time.monotonic() + 0.2
        window[0], window[1] = begin, begin + seconds
        start.set()
        time.sleep(0.2)
        server0 = cpu_seconds(server())
        time.sleep(seconds)
        server1 = cpu_seconds(server())
        parts = [results.get(timeout=30) for _ in workers]
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
    statuses: dict[int, int] = {}
    for part in parts:
        for status, n in part[4].items():
            statuses[status] = statuses.get(status, 0) + n
    result = LoadResult(
        ok=sum(p[0] for p in parts),
        errors=sum(p[1] for p in parts),
        seconds=seconds,
        latencies=sorted(x for p in parts for x in p[2]),
        client_cpu=sum(p[3] for p in parts),
        statuses=statuses,
    )
    server_cpu = sum(server1[pid] - server0.get(pid, 0.0) for pid in server1)
    return result, server_cpu
