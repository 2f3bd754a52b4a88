"""Benchmark the gateway against nginx and Apache httpd + mod_auth_gssapi, side by side, in one run.

Everything runs on this machine's loopback, client and servers sharing its
cores.  A throwaway MIT realm issues the tickets.  One nginx (``worker_processes
auto``) is the origin for every proxy and serves a 1400-byte file.

Request rate (wrk, a session cookie got beforehand; each row at every
connection count):

* nginx serving the file directly, and nginx as a plain proxy to that nginx;
* Apache + mod_auth_gssapi (session cookie from one ``curl --negotiate``),
  proxying to the nginx origin, and serving the file itself;
* the gateway (Kerberos scheme, cookie from one ``curl --negotiate``) in
  front of the nginx origin;
* the gateway's default, its embedded backend (pseudo authentication, cookie
  from one ``user.name`` request), through each face: a Hoop read
  (``GET /file.bin?op=open``), a WebHDFS OPEN
  (``GET /webhdfs/v1/file.bin?op=OPEN``) and an Alluxio get-status
  (``POST /api/v1/paths//file.bin/get-status``).

Full SPNEGO on every request, Apache and the gateway both proxying to the
nginx origin (scripts/_bench_krb.py): the tokens are made in advance, a fresh
security context each, and each is sent once, without a cookie, with the
Kerberos replay cache on in both servers; the same client and the same
number of tokens for both.

1 GiB streams (curl, one at a time): download and upload through nginx
directly, through nginx as a plain proxy and through the gateway in front of
the nginx origin (uploads are WebDAV PUTs that the nginx origin writes to
disk), and through the gateway's default, its embedded backend (Hoop
``op=create`` and ``op=open``), with the server's CPU and its resident memory
(summed over its process tree) before and at its peak.

It prints a table, the ratios with the targets of issue 9 beside them, and
writes the same as markdown, and a PNG chart, under bench/results/, named for
the machine class.  Run it through scripts/bench, which installs wrk, nginx,
Apache, the KDC and matplotlib.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from _bench_krb import (  # noqa: E402
    APACHE_MPM, apache, cpu_seconds, process_tree, replay_statuses, rss_bytes, spnego_load, token_rate,
)

from tests.conftest import free_port, stop_process, to_toml, wait_for_port  # noqa: E402
from tests.kerberos.realm import Realm, missing_tools  # noqa: E402

REALM = "EXAMPLE.COM"
PRINCIPAL = f"HTTP/localhost@{REALM}"
SMALL = 1400  # bytes of the file the request-rate rows fetch
MIB = 1 << 20

# Both roles in one nginx: the origin (the file from disk, and WebDAV PUT under /up/ for the uploads)
# and the plain proxy to it.  Debian's defaults where they matter (sendfile, tcp_nopush); for 1 GiB
# bodies the proxy streams both ways instead of spooling to disk (proxy_request_buffering off,
# proxy_max_temp_file_size 0), as the gateway does, through 64 KiB buffers: with the default 4-8 KiB
# ones it moved 1 GiB at half the speed (0.5-0.8 GiB/s down instead of 1.0-1.7 on a 2-core machine),
# and the 1400-byte rows did no worse.
NGINX = """\
worker_processes auto;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.err;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path {tmp}/nginx-body;
  proxy_temp_path {tmp}/nginx-proxy;
  upstream origin {{ server 127.0.0.1:{origin}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{origin};
    root {www};
    location /up/ {{ dav_methods PUT; create_full_put_path on; client_max_body_size 0; }}
  }}
  server {{
    listen 127.0.0.1:{proxy};
    client_max_body_size 0;
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_max_temp_file_size 0;
      proxy_buffer_size 64k;
      proxy_buffers 8 64k;
      proxy_busy_buffers_size 128k;
      client_body_buffer_size 1m;
    }}
  }}
}}
"""

# The Apache directives the summary names.
_APACHE_SHOWN = ("StartServers", "ServerLimit", "ThreadsPerChild", "MaxRequestWorkers")

# wrk's POST for the Alluxio get-status row.
POST_LUA = 'wrk.method = "POST"\n'


# -- what a run records --------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One request-rate measurement; ``failed`` instead of figures when the run was not valid."""

    key: str  # stable name the ratios refer to
    name: str
    conns: int
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    server_cores: float = 0.0  # CPU seconds of the server under test per second of the run
    client_cores: float = 0.0
    failed: str = ""


@dataclass(frozen=True)
class Stream:
    """One 1 GiB transfer row: the median of its repeats."""

    key: str
    name: str
    direction: str  # "download" or "upload"
    mib_s: float = 0.0
    runs: tuple[float, ...] = ()  # MiB/s of every repeat
    server_cores: float = 0.0
    client_cores: float = 0.0
    rss_before: int = 0  # bytes, the server's process tree just before the transfer
    rss_peak: int = 0  # bytes, the highest sum sampled during it
    failed: str = ""


@dataclass
class Record:
    """Everything the report needs, filled as the run goes."""

    quick: bool
    argv: list[str]
    stream_label: str = "1 GiB"  # the streamed size, as the report names it
    tmp: str = ""
    rows: list[Row] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    configs: dict[str, str] = field(default_factory=dict)
    gateway: list[str] = field(default_factory=list)  # how each gateway ran: its command and processes
    stopped: list[str] = field(default_factory=list)  # the parts of the run that stopped early, and why

    def redact(self, text: str) -> str:
        text = text.replace(f"{REPO}/", "")  # commands as typed in the repository
        return text.replace(self.tmp, "$TMP") if self.tmp else text

    def command(self, args: Sequence[str]) -> None:
        shown = []
        for arg in args:
            if arg.lower().startswith("cookie:"):
                arg = "Cookie: <session cookie>"
            shown.append(shlex.quote(self.redact(arg)))
        line = " ".join(shown)
        if line not in self.commands:
            self.commands.append(line)

    def config(self, name: str, path: Path) -> None:
        self.configs[name] = self.redact(path.read_text())


class Part:
    """A part of the run (one server's rows): an error stops it, is recorded, and the run goes on."""

    def __init__(self, rec: Record, name: str) -> None:
        self._rec, self._name = rec, name

    def __enter__(self) -> Part:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if not isinstance(exc, Exception):
            return False
        traceback.print_exc()
        print(f"{self._name}: stopped early; the run goes on", file=sys.stderr)
        self._rec.stopped.append(f"{self._name}: stopped early: {type(exc).__name__}: {exc}")
        return True


def _print_row(row: Row) -> None:
    if row.failed:
        print(f"  {row.name:<58} c={row.conns:<4} FAILED: {row.failed.splitlines()[0]}", flush=True)
    else:
        print(f"  {row.name:<58} c={row.conns:<4} {row.rps:>8,.0f} req/s  p99 {row.p99_ms:6.2f} ms", flush=True)


def _print_stream(s: Stream) -> None:
    if s.failed:
        print(f"  {s.name:<58} {s.direction:<8} FAILED: {s.failed.splitlines()[0]}", flush=True)
    else:
        print(f"  {s.name:<58} {s.direction:<8} {s.mib_s:>8,.0f} MiB/s  peak RSS {s.rss_peak / MIB:,.0f} MiB",
              flush=True)


# -- processes -----------------------------------------------------------------------------


@contextmanager
def process(
    rec: Record, args: list[str], log: Path, port: int, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    full_env = None if env is None else {**os.environ, **env}
    rec.command(args)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(args, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=full_env)
    try:
        try:
            wait_for_port(port, proc, timeout=60)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{args[0]} did not start: {exc}\n{log.read_text(errors='replace')[-4000:]}") from exc
        yield proc
    finally:
        stop_process(proc)


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    return inodes


def serving_processes(root: int, port: int) -> tuple[list[int], list[int]]:
    """The process tree of ``root`` and those of its processes holding a socket listening on ``port``."""
    tree = process_tree(root)
    inodes = _listening_inodes(port)
    holders = []
    for pid in tree:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                holders.append(pid)
                break
    return tree, holders


def describe_gateway(rec: Record, name: str, root: int, port: int) -> None:
    """Record how many processes the gateway runs and how many of them serve its port."""
    tree, holders = serving_processes(root, port)
    # workers.py's layout: a parent that holds every socket and serves nothing, and its workers.
    workers = len(holders) - 1 if len(holders) > 1 and root in holders else len(holders)
    line = (f"{name}: {len(tree)} process{'es' if len(tree) != 1 else ''} in its tree, {len(holders)} holding the"
            f" listening socket"
            f" -> {workers} serving worker{'s' if workers != 1 else ''}")
    rec.gateway.append(line)
    print(f"  ({line})", flush=True)


class PeakRss:
    """Samples the summed RSS of a process tree every 20 ms while the block runs."""

    def __init__(self, root: int) -> None:
        self._pids = process_tree(root)
        self.before = rss_bytes(self._pids)
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_bytes(self._pids))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self._pids))


# -- wrk -----------------------------------------------------------------------------------


def _ms(text: str) -> float:
    """wrk's latency ("412.00us", "1.23ms", "2.01s") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[match.group(2)]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _search(pattern: str, text: str, flags: int = 0) -> str:
    match = re.search(pattern, text, flags)
    if match is None:
        raise RuntimeError(f"no {pattern!r} in wrk's output:\n{text}")
    return match.group(1)


def wrk(
    rec: Record, key: str, name: str, url: str, seconds: int, connections: int, server: Callable[[], list[int]],
    headers: Sequence[str] = (), script: Path | None = None,
) -> Row:
    """One wrk run (after a 1 s warm-up at the same connection count); a failed row unless every answer was a 2xx.

    ``server()`` lists the processes whose CPU time is the server's.
    """
    threads = min(2, connections)
    base = ["wrk", f"-t{threads}", f"-c{connections}", "--latency", "--timeout", "10s"]
    for h in headers:
        base += ["-H", h]
    if script is not None:
        base += ["-s", str(script)]
    args = [*base[:3], f"-d{seconds}s", *base[3:], url]
    rec.command(args)
    try:
        # Not measured: Apache's threads, every server's connections and caches see the load once.
        subprocess.run([*base[:3], "-d1s", *base[3:], url], capture_output=True, check=True, timeout=60)
        server0, client0 = cpu_seconds(server()), _children_cpu()
        t0 = time.monotonic()
        out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
        elapsed = time.monotonic() - t0
        server1, client1 = cpu_seconds(server()), _children_cpu()
    except subprocess.CalledProcessError as exc:
        return Row(key, name, connections, failed=f"wrk exited {exc.returncode}: {exc.stderr or exc.stdout}")
    if "Non-2xx" in out:
        return Row(key, name, connections, failed=f"answers other than 2xx ({url}): {_search(r'(Non-2xx.*)', out)}")
    # Counted, not fatal: a handful of reads in 100,000s cut off by a server that closed a
    # keep-alive connection (seen with Apache, whose error log says nothing at info level).
    socket_errors = 0
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        socket_errors = sum(int(n) for n in match.groups())
        total = _search(r"(\d+) requests in", out)
        rec.notes.append(f"wrk, {name}, {connections} connections: {match.group(0)} in {total} requests")
    server_cpu = sum(server1[pid] - server0.get(pid, 0.0) for pid in server1)
    return Row(
        key, name, connections,
        rps=float(_search(r"Requests/sec:\s+([\d.]+)", out)),
        p50_ms=_ms(_search(r"^\s*50%\s+(\S+)", out, re.M)),
        p99_ms=_ms(_search(r"^\s*99%\s+(\S+)", out, re.M)),
        errors=socket_errors,
        server_cores=server_cpu / elapsed,
        client_cores=(client1 - client0) / elapsed,
    )


# -- curl ----------------------------------------------------------------------------------


def _curl_headers(url: str, *extra: str, env: Mapping[str, str] | None = None) -> str:
    out = subprocess.run(
        ["curl", "-4", "-s", "-o", "/dev/null", "-D", "-", *extra, url],
        capture_output=True, text=True, check=True, timeout=30, env=None if env is None else {**os.environ, **env},
    )
    return out.stdout


def _status(headers: str) -> int:
    """The status of the last response curl printed (after a 401 challenge, the authenticated one)."""
    return int(re.findall(r"^HTTP/[\d.]+ (\d{3})", headers, re.M)[-1])


def session_cookie(url: str, *extra: str, env: Mapping[str, str] | None = None) -> str:
    headers = _curl_headers(url, *extra, env=env)
    match = re.search(r"^set-cookie: ([^;]+)", headers, re.I | re.M)
    if _status(headers) != 200 or not match:
        raise RuntimeError(f"no session cookie from {url}: status {_status(headers)}")
    return match.group(1)


def check_cookie(url: str, cookie: str, *extra: str) -> None:
    """The URL refuses a request without the cookie and serves one with it: wrk's 200s are authenticated."""
    without = _status(_curl_headers(url, *extra))
    with_cookie = _status(_curl_headers(url, *extra, "-H", f"Cookie: {cookie}"))
    if without != 401 or with_cookie != 200:
        raise RuntimeError(f"{url}: {without} without the session cookie (want 401), {with_cookie} with it (want 200)")


def negotiate_cookie(url: str, env: Mapping[str, str]) -> str:
    """One real ``curl --negotiate`` handshake; the session cookie it gets, checked to work alone."""
    cookie = session_cookie(url, "--negotiate", "-u", ":", env=env)
    check_cookie(url, cookie)
    return cookie


def transfer(
    rec: Record, key: str, name: str, direction: str, url: str, *, size: int, repeats: int, root_pid: int,
    source: Path | None = None, method: str = "PUT", headers: Sequence[str] = (),
) -> Stream:
    """``repeats`` curl transfers of ``size`` bytes, one at a time; the median MiB/s (curl's own total time)."""
    args = ["curl", "-4", "-s", "-S", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{size_upload} %{time_total}"]
    for h in headers:
        args += ["-H", h]
    if direction == "upload":
        assert source is not None
        # No "Expect: 100-continue" wait: curl would otherwise pause up to 1 s for a server that sends no 100.
        args += ["-T", str(source), "-X", method, "-H", "Expect:", "-H", "Content-Type: application/octet-stream"]
    args.append(url)
    rec.command(args)
    rates, server_cores, client_cores = [], [], []
    rss_before, rss_peak = 0, 0
    for _ in range(repeats):
        server0, client0 = cpu_seconds(process_tree(root_pid)), _children_cpu()
        t0 = time.monotonic()
        with PeakRss(root_pid) as rss:
            done = subprocess.run(args, capture_output=True, text=True, timeout=600)
        elapsed = time.monotonic() - t0
        server1, client1 = cpu_seconds(process_tree(root_pid)), _children_cpu()
        if done.returncode != 0:
            return Stream(key, name, direction, failed=f"curl exited {done.returncode}: {done.stderr.strip()}")
        status, down, up, seconds = done.stdout.split()
        moved = int(down) if direction == "download" else int(up)
        if not status.startswith("2") or moved != size:
            return Stream(key, name, direction, failed=f"HTTP {status}, {moved} of {size} bytes moved")
        rates.append(size / MIB / float(seconds))
        server_cores.append(sum(server1[p] - server0.get(p, 0.0) for p in server1) / elapsed)
        client_cores.append((client1 - client0) / elapsed)
        rss_before = rss_before or rss.before
        rss_peak = max(rss_peak, rss.peak)
    return Stream(
        key, name, direction, mib_s=statistics.median(rates), runs=tuple(rates),
        server_cores=statistics.median(server_cores), client_cores=statistics.median(client_cores),
        rss_before=rss_before, rss_peak=rss_peak,
    )


def write_big(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as fh:
        for _ in range(size // MIB):
            fh.write(block)
        fh.write(block[: size % MIB])


# -- the machine and the versions ----------------------------------------------------------


def _first_line(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except OSError:
        return "not installed"
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else "?"


def _os_release() -> dict[str, str]:
    out = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            out[key] = value.strip('"')
    except OSError:
        pass
    return out


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        cpu = _search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    except (OSError, RuntimeError):
        pass
    mem_kib = int(_search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M))
    release = _os_release()
    distro = (release.get("ID", "linux") + release.get("VERSION_ID", "")).replace(".", "")
    cores = len(os.sched_getaffinity(0))
    mem_gib = round(mem_kib / (1 << 20))
    return {
        "class": f"{cores}c-{mem_gib}g-{distro}",
        "cores": str(cores),
        "memory": f"{mem_kib / (1 << 20):.1f} GiB",
        "cpu": cpu,
        "kernel": platform.release(),
        "os": release.get("PRETTY_NAME", "?"),
    }


def versions(apache2: str) -> dict[str, str]:
    import aiohttp

    git = ["git", "-C", str(REPO)]
    rev = _first_line([*git, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "gateway", "authplugins"],
                           capture_output=True, text=True).stdout.strip()
    mod = _first_line(["dpkg-query", "-W", "-f", "${Version}", "libapache2-mod-auth-gssapi"])
    krb5 = _first_line(["dpkg-query", "-W", "-f", "${Version}", "libkrb5-3"])
    return {
        "nginx": _first_line(["nginx", "-v"]).removeprefix("nginx version: "),
        "apache": _first_line([apache2, "-v"]).removeprefix("Server version: ") + f", mod_auth_gssapi {mod}",
        "wrk": _first_line(["wrk", "-v"]).split(" [")[0],
        "curl": _first_line(["curl", "--version"]).split(" (")[0],
        "MIT Kerberos": krb5,
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "authgateway": rev + (" (with uncommitted changes in gateway/ or authplugins/)" if dirty else ""),
    }


# -- ratios and the report -----------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    what: str
    conns: str
    value: float | None  # None: a side of it failed or was not run
    target: str  # "" when the issue sets none
    meets: str  # "yes", "no" or ""


def _rate(rows: list[Row], key: str, conns: int) -> Row | None:
    return next((r for r in rows if r.key == key and r.conns == conns and not r.failed), None)


def _stream(streams: list[Stream], key: str, direction: str) -> Stream | None:
    return next((s for s in streams if s.key == key and s.direction == direction and not s.failed), None)


def _judge(value: float | None, least: float | None) -> str:
    if value is None or least is None:
        return ""
    return "yes" if value >= least else "no"


def ratios(rec: Record, conns: list[int]) -> list[Ratio]:
    out: list[Ratio] = []

    def rate_ratio(what: str, top: str, bottom: str, least: float | None) -> None:
        for c in conns:
            a, b = _rate(rec.rows, top, c), _rate(rec.rows, bottom, c)
            value = a.rps / b.rps if a and b and b.rps else None
            out.append(Ratio(what, str(c), value, f">= {least:.1f}x" if least else "", _judge(value, least)))

    rate_ratio("authgateway / Apache, session cookie (both proxying to nginx)", "gw-cookie", "apache-cookie", 1.0)
    rate_ratio("authgateway / Apache, full SPNEGO each request", "gw-spnego", "apache-spnego", 1.0)
    rate_ratio("authgateway / nginx plain proxy, session cookie", "gw-cookie", "nginx-proxy", None)
    for face in ("hoop", "webhdfs", "alluxio"):
        rate_ratio(f"embedded default ({face}) / authgateway in front of nginx, cookie", f"gw-{face}", "gw-cookie", 0.8)
    for key, label in (("gw-nginx", "authgateway in front of nginx"), ("gw-embedded", "authgateway default (embedded)")):
        for direction in ("download", "upload"):
            a, b = _stream(rec.streams, key, direction), _stream(rec.streams, "nginx-proxy", direction)
            value = a.mib_s / b.mib_s if a and b and b.mib_s else None
            out.append(Ratio(f"{rec.stream_label} {direction}: {label} / nginx plain proxy", "1", value, ">= 0.9x",
                             _judge(value, 0.9)))
    if 32 in conns:
        for row in rec.rows:
            if row.key.startswith("gw-") and row.conns == 32 and not row.failed:
                out.append(Ratio(f"p99 latency, {row.name} (ms)", "32", row.p99_ms, "< 5 ms",
                                 "yes" if row.p99_ms < 5 else "no"))
    return out


def _fmt_ratio(r: Ratio) -> str:
    if r.value is None:
        return "n/a"
    return f"{r.value:.2f}" if r.what.startswith("p99") else f"{r.value:.2f}x"


def rate_table(rows: list[Row]) -> list[str]:
    lines = ["| row | conns | req/s | p50 ms | p99 ms | socket errors | server CPU (cores) | client CPU (cores) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if r.failed:
            lines.append(f"| {r.name} | {r.conns} | failed: {_md(r.failed.splitlines()[0])} | | | | | |")
        else:
            lines.append(f"| {r.name} | {r.conns} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} | "
                         f"{r.server_cores:.2f} | {r.client_cores:.2f} |")
    return lines


def stream_table(streams: list[Stream]) -> list[str]:
    lines = ["| row | direction | MiB/s (median) | every run, MiB/s | server CPU (cores) | client CPU (cores) | "
             "server RSS before -> peak, MiB |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: |"]
    for s in streams:
        if s.failed:
            lines.append(f"| {s.name} | {s.direction} | failed: {_md(s.failed.splitlines()[0])} | | | | |")
        else:
            runs = ", ".join(f"{x:,.0f}" for x in s.runs)
            lines.append(f"| {s.name} | {s.direction} | {s.mib_s:,.0f} | {runs} | {s.server_cores:.2f} | "
                         f"{s.client_cores:.2f} | {s.rss_before / MIB:,.0f} -> {s.rss_peak / MIB:,.0f} |")
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def print_report(rec: Record, rat: list[Ratio], settings: str) -> None:
    print()
    print(f"{'':<60} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'server CPU':>10} "
          f"{'client CPU':>10}")
    for r in rec.rows:
        if r.failed:
            print(f"{r.name:<60} {r.conns:>5} FAILED: {r.failed.splitlines()[0]}")
        else:
            print(f"{r.name:<60} {r.conns:>5} {r.rps:>8,.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.errors:>6} "
                  f"{r.server_cores:>10.2f} {r.client_cores:>10.2f}")
    print()
    print(f"{rec.stream_label + ', one curl at a time':<60} {'':<8} {'MiB/s':>7} {'server CPU':>10} {'client CPU':>10} "
          f"{'server RSS MiB':>16}")
    for s in rec.streams:
        if s.failed:
            print(f"{s.name:<60} {s.direction:<8} FAILED: {s.failed.splitlines()[0]}")
        else:
            print(f"{s.name:<60} {s.direction:<8} {s.mib_s:>7,.0f} {s.server_cores:>10.2f} {s.client_cores:>10.2f} "
                  f"{s.rss_before / MIB:>7,.0f} -> {s.rss_peak / MIB:<6,.0f}")
    print()
    print(f"{'ratio':<84} {'conns':>5} {'value':>7} {'target':>9} {'meets':>5}")
    for ratio in rat:
        print(f"{ratio.what:<84} {ratio.conns:>5} {_fmt_ratio(ratio):>7} {ratio.target:>9} {ratio.meets:>5}")
    print()
    print(settings)
    for line in rec.gateway:
        print(line)
    for note in [*rec.stopped, *rec.notes]:
        print(note)


def write_markdown(path: Path, rec: Record, rat: list[Ratio], mach: dict[str, str], vers: dict[str, str],
                   settings: str, took: float, chart: Path | None) -> None:
    mode = "quick" if rec.quick else "full"
    out = [
        f"# scripts/bench on {mach['class']} ({mode} run)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {took / 60:.1f} minutes, with "
        f"`{' '.join(shlex.quote(a) for a in rec.argv)}`. Written by scripts/bench; bench/README.md says what "
        "each row means.",
        "",
        "## Machine",
        "",
        f"- {mach['cores']} cores ({mach['cpu']}), {mach['memory']} of memory, shared by the clients and the servers",
        f"- {mach['os']}, kernel {mach['kernel']}",
        "",
        "## Versions",
        "",
        *(f"- {k}: {v}" for k, v in vers.items()),
        "",
        "## Requests per second",
        "",
        *rate_table(rec.rows),
        "",
        f"## {rec.stream_label} streams",
        "",
        *stream_table(rec.streams),
        "",
        "## Ratios and the targets of issue 9",
        "",
        "| ratio | conns | value | target | meets |",
        "| --- | ---: | ---: | --- | --- |",
        *(f"| {_md(r.what)} | {r.conns} | {_fmt_ratio(r)} | {r.target} | {r.meets} |" for r in rat),
        "",
    ]
    if chart is not None:
        out += [f"![chart]({chart.name})", ""]
    out += ["## Settings", "", *settings.splitlines(), "", "## The gateways' processes", "",
            *(f"- {line}" for line in rec.gateway), ""]
    if rec.notes or rec.stopped:
        out += ["## Notes", "", *(f"- {_md(n)}" for n in [*rec.stopped, *rec.notes]), ""]
    out += ["## Commands", "", "Ports are the free ones picked for the run; `$TMP` its temporary directory.", "",
            "```sh", *rec.commands, "```", ""]
    for name, text in rec.configs.items():
        out += [f"### {name}", "", "```", text.rstrip("\n"), "```", ""]
    path.write_text("\n".join(out))


def write_chart(path: Path, rec: Record, mach: dict[str, str], conns: list[int]) -> bool:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no chart (scripts/bench installs it)", file=sys.stderr)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r.name for r in rec.rows))
    streams = list(dict.fromkeys((s.name, s.direction) for s in rec.streams))
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 0.45 * (len(names) * len(conns) + len(streams)) + 3),
        gridspec_kw={"height_ratios": [len(names) * len(conns) + 1, len(streams) + 1]},
    )
    height = 0.8 / len(conns)
    for i, c in enumerate(conns):
        values = []
        for name in names:
            row = next((r for r in rec.rows if r.name == name and r.conns == c and not r.failed), None)
            values.append(row.rps if row else 0.0)
        ys = [n + i * height for n in range(len(names))]
        bars = top.barh(ys, values, height=height, label=f"{c} connection{'s' if c != 1 else ''}")
        top.bar_label(bars, labels=[f"{v:,.0f}" if v else "failed" for v in values], fontsize=7, padding=2)
    top.set_yticks([n + height * (len(conns) - 1) / 2 for n in range(len(names))], names, fontsize=8)
    top.invert_yaxis()
    top.set_xlabel("requests per second (1400-byte file)")
    top.legend(fontsize=8, loc="lower right")
    top.set_title(f"scripts/bench, {mach['class']}, {'quick' if rec.quick else 'full'} run, "
                  f"{time.strftime('%Y-%m-%d', time.gmtime())}", fontsize=10)
    values = []
    for name, direction in streams:
        s = next((x for x in rec.streams if x.name == name and x.direction == direction and not x.failed), None)
        values.append(s.mib_s if s else 0.0)
    bars = bottom.barh(range(len(streams)), values, color=["tab:blue" if d == "download" else "tab:orange"
                                                          for _, d in streams])
    bottom.bar_label(bars, labels=[f"{v:,.0f}" if v else "failed" for v in values], fontsize=7, padding=2)
    bottom.set_yticks(range(len(streams)), [f"{n}, {d}" for n, d in streams], fontsize=8)
    bottom.invert_yaxis()
    bottom.set_xlabel(f"MiB/s, {rec.stream_label}, one transfer at a time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- the run -------------------------------------------------------------------------------


def _kdc_tgs_requests(realm: Realm) -> int:
    return realm.log.read_text(errors="replace").count("TGS_REQ") if realm.log.exists() else 0


def _connection_counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want comma-separated numbers, e.g. 1,32,256") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: want one or more connection counts of at least 1")
    return counts


def scratch_dir(size: int) -> str | None:
    """tmpfs (/dev/shm) when it holds four streamed files and a margin: no row then waits for the disk."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if st.f_bavail * st.f_frsize >= 4 * size + (1 << 30) else None


def gateway_supports_workers() -> bool:
    done = subprocess.run([sys.executable, "-m", "gateway", "serve", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    return "--workers" in done.stdout


def main() -> int:
    started = time.monotonic()
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true",
                        help="about a minute: 3 s a row, 32 connections only, each 1 GiB transfer once")
    parser.add_argument("--duration", type=int, help="seconds per request-rate row (default 10; --quick 3)")
    parser.add_argument("--connections", type=_connection_counts,
                        help="connection counts of the request-rate rows, comma-separated (default 1,32,256; "
                             "--quick 32)")
    parser.add_argument("--stream-mib", type=int, default=1024,
                        help="size of the streamed file in MiB (default %(default)s)")
    parser.add_argument("--stream-repeats", type=int,
                        help="transfers per stream row, the median reported (default 3; --quick 1)")
    parser.add_argument("--clients", type=int, default=len(os.sched_getaffinity(0)),
                        help="SPNEGO client processes, and processes making the tokens (default: the cores, "
                             "%(default)s)")
    parser.add_argument("--spnego-tokens-per-second", type=int, default=10000,
                        help="tokens made in advance per second of a SPNEGO row (default %(default)s); if a "
                             "server answers faster, the row's window ends when they run out, and says so")
    parser.add_argument("--gateway-workers", type=int, metavar="N",
                        help="pass --workers N to authgateway serve (default: pass nothing, so the gateway runs "
                             "its own default)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results",
                        help="where the markdown table and the PNG chart go (default bench/results/)")
    args = parser.parse_args()
    quick = args.quick
    seconds = args.duration or (3 if quick else 10)
    conns = args.connections or ([32] if quick else [1, 32, 256])
    repeats = args.stream_repeats or (1 if quick else 3)
    size = args.stream_mib * MIB

    missing = [tool for tool in ("wrk", "nginx", "curl") if not shutil.which(tool)]
    apache2 = shutil.which("apache2", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if not apache2:
        missing.append("apache2")
    missing += missing_tools()
    if missing or not apache2:
        print(f"missing: {', '.join(missing)} (scripts/bench installs them)", file=sys.stderr)
        return 2
    workers_flag: list[str] = []
    if args.gateway_workers is not None:
        if not gateway_supports_workers():
            print("--gateway-workers: this authgateway's `serve` has no --workers option yet", file=sys.stderr)
            return 2
        workers_flag = ["--workers", str(args.gateway_workers)]

    rec = Record(quick=quick, argv=["scripts/bench", *sys.argv[1:]],
                 stream_label="1 GiB" if size == 1 << 30 else f"{args.stream_mib} MiB")
    mach, vers = machine(), versions(apache2)
    print(f"{mach['class']}: {mach['cores']} cores, {mach['memory']}, {mach['cpu']}; "
          f"{'quick' if quick else 'full'} run, {seconds} s a row, connections {conns}", flush=True)

    def add(row: Row) -> None:
        rec.rows.append(row)
        _print_row(row)

    def add_stream(s: Stream) -> None:
        rec.streams.append(s)
        _print_stream(s)

    token_rate_seen = 0.0
    scratch = scratch_dir(size)
    with tempfile.TemporaryDirectory(prefix="authgateway-bench-", dir=scratch) as td:
        tmp = Path(td)
        rec.tmp = td
        tmp.chmod(0o755)  # nginx workers and Apache's processes drop root privileges and must read www/
        www = tmp / "www"
        www.mkdir(mode=0o755)
        (www / "up").mkdir(mode=0o777)  # nginx's workers write the WebDAV uploads here
        (www / "up").chmod(0o777)
        small = os.urandom(SMALL)
        (www / "file.bin").write_bytes(small)
        big = www / "big.bin"
        write_big(big, size)
        origin, proxy = free_port(), free_port()
        (tmp / "nginx.conf").write_text(NGINX.format(tmp=tmp, www=www, origin=origin, proxy=proxy))
        rec.config("nginx.conf", tmp / "nginx.conf")
        key = tmp / "cookie.key"
        key.write_bytes(os.urandom(48).hex().encode())

        realm = Realm(tmp / "realm", REALM).start()
        try:
            realm.add_user("alice", "alice-pw")
            keytab = realm.add_service(["HTTP/localhost"], tmp / "realm" / "http.keytab")
            ccache = realm.ccache("alice")
            client_env = realm.kinit("alice", "alice-pw", ccache=ccache)
            # This process makes tokens too (token_rate, the processes it forks).
            os.environ.update(client_env)

            def rate_rows(key: str, name: str, url: str, server_pid: int, headers: Sequence[str] = (),
                          script: Path | None = None) -> None:
                for c in conns:
                    add(wrk(rec, key, name, url, seconds, c, lambda: process_tree(server_pid), headers, script))

            def spnego(key: str, name: str, port: int, path: str, server_pid: int, rcache_dir: Path) -> None:
                first, again = replay_statuses(port, path, ccache)
                rcaches = sorted(rcache_dir.glob("*.rcache2"))
                if first != 200:
                    for c in conns:
                        add(Row(key, name, c, failed=f"a fresh token got {first}, not 200"))
                    return
                if again == 200:
                    rec.notes.append(f"{name}: THE SAME TOKEN SENT AGAIN GOT 200: replays are not refused")
                else:
                    rec.notes.append(f"{name}: a replayed token gets {again}; replay cache files in its directory: "
                                     f"{[p.name for p in rcaches] or 'none'}")
                for c in conns:
                    tgs0 = _kdc_tgs_requests(realm)
                    profile = os.environ.get("BENCH_PROFILE")  # a py-spy binary: record the server while it runs
                    spy = None
                    if profile:
                        spy = subprocess.Popen(
                            [profile, "record", "-p", str(server_pid), "--subprocesses", "-d", str(seconds),
                             "-r", "200", "-t", "-f", "raw", "-o", str(Path.cwd() / f"profile-{port}-c{c}.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        )
                    result, server_cpu = spnego_load(
                        port, path, ccache, seconds=seconds, processes=args.clients, conns=c,
                        tokens=args.spnego_tokens_per_second * seconds, makers=args.clients,
                        server=lambda: process_tree(server_pid),
                    )
                    if spy is not None:
                        spy.wait(timeout=seconds + 30)
                    tgs = _kdc_tgs_requests(realm) - tgs0
                    if tgs:
                        rec.notes.append(f"{name}, {c} connections: the KDC saw {tgs} TGS requests during the run "
                                         "(expected none)")
                    if result.errors or result.ok == 0:
                        add(Row(key, name, c, failed=f"{result.ok} 200s, {result.errors} others, statuses "
                                                     f"{result.statuses}"))
                        continue
                    add(Row(
                        key, name, c, rps=result.rps, p50_ms=result.percentile(0.5) * 1e3,
                        p99_ms=result.percentile(0.99) * 1e3, server_cores=server_cpu / result.seconds,
                        client_cores=result.client_cpu / result.seconds,
                    ))
                    rec.notes.append(
                        f"{name}, {c} connections: {result.tokens:,} tokens made in advance in "
                        f"{result.make_seconds:.1f} s; "
                        + (f"they ran out after {result.seconds:.1f} s, the window measured; "
                           if result.ran_out else "")
                        + f"server {server_cpu / result.ok * 1e6:.0f} us CPU per request, client "
                        f"{result.client_cpu / result.ok * 1e6:.0f} us"
                    )

            nginx_cmd = ["nginx", "-c", str(tmp / "nginx.conf")]
            with process(rec, nginx_cmd, tmp / "nginx.log", proxy) as ngx:
                wait_for_port(origin)
                rate_rows("nginx", "nginx, direct", f"http://127.0.0.1:{origin}/file.bin", ngx.pid)
                rate_rows("nginx-proxy", "nginx, plain proxy to nginx", f"http://127.0.0.1:{proxy}/file.bin",
                          ngx.pid)

                def streams(key: str, name: str, url: str, pid: int, headers: Sequence[str] = ()) -> None:
                    """1 GiB down from the nginx origin and up to it (WebDAV PUT), through ``url``."""
                    add_stream(transfer(rec, key, name, "download", f"{url}/big.bin", size=size,
                                        repeats=repeats, root_pid=pid, headers=headers))
                    add_stream(transfer(rec, key, name, "upload", f"{url}/up/big.bin", size=size,
                                        repeats=repeats, root_pid=pid, source=big, method="PUT", headers=headers))
                    (www / "up" / "big.bin").unlink(missing_ok=True)

                streams("nginx", "nginx, direct", f"http://127.0.0.1:{origin}", ngx.pid)
                streams("nginx-proxy", "nginx, plain proxy to nginx", f"http://127.0.0.1:{proxy}", ngx.pid)

                # -- Apache httpd + mod_auth_gssapi -----------------------------------------
                with Part(rec, "Apache"), apache(
                    tmp, port=free_port(), origin=origin, www=www, keytab=keytab, env=realm.env
                ) as httpd:
                    port = httpd.port
                    rec.command(httpd.command)
                    rec.config("httpd.conf (Apache)", httpd.conf)
                    base = f"http://localhost:{port}"
                    # The first handshake also puts the HTTP/localhost ticket in alice's ccache.
                    cookie = negotiate_cookie(f"{base}/nginx/file.bin", client_env)
                    check_cookie(f"{base}/file.bin", cookie)
                    rate_rows("apache-cookie", "Apache mod_auth_gssapi, cookie, proxy to nginx",
                              f"http://127.0.0.1:{port}/nginx/file.bin", httpd.pid, [f"Cookie: {cookie}"])
                    rate_rows("apache-serve", "Apache mod_auth_gssapi, cookie, serves the file",
                              f"http://127.0.0.1:{port}/file.bin", httpd.pid, [f"Cookie: {cookie}"])
                    spnego("apache-spnego", "Apache mod_auth_gssapi, SPNEGO each request, proxy to nginx", port,
                           "/nginx/file.bin", httpd.pid, httpd.rcache_dir)

                # -- the gateway in front of nginx ----------------------------------------------
                port = free_port()
                rcache_dir = tmp / "gw-rcache"
                rcache_dir.mkdir()
                config = tmp / "gw-nginx.toml"
                config.write_text(to_toml({
                    "server": {"port": port, "access_log": False}, "log": {"audit": False},
                    "auth": {"schemes": ["kerberos"], "kerberos": {"keytab": str(keytab), "principal": PRINCIPAL}},
                    "cookie": {"secret_files": [str(key)]},
                    "backend": {"url": f"http://127.0.0.1:{origin}"},
                }))
                rec.config("gw-nginx.toml (authgateway in front of nginx)", config)
                gw_env = {**realm.env, "KRB5RCACHEDIR": str(rcache_dir)}
                gw_env.pop("KRB5CCNAME")
                gw_cmd = [sys.executable, "-m", "gateway", "serve", "-c", str(config), *workers_flag]
                with Part(rec, "authgateway in front of nginx"), \
                        process(rec, gw_cmd, tmp / "gw1.log", port, gw_env) as gw:
                    describe_gateway(rec, "authgateway in front of nginx", gw.pid, port)
                    cookie = negotiate_cookie(f"http://localhost:{port}/file.bin", client_env)
                    rate_rows("gw-cookie", "authgateway, cookie, in front of nginx",
                              f"http://127.0.0.1:{port}/file.bin", gw.pid, [f"Cookie: {cookie}"])
                    spnego("gw-spnego", "authgateway, SPNEGO each request, in front of nginx", port, "/file.bin",
                           gw.pid, rcache_dir)
                    streams("gw-nginx", "authgateway, cookie, in front of nginx", f"http://127.0.0.1:{port}", gw.pid,
                            [f"Cookie: {cookie}"])

            # -- the gateway's default: its embedded backend -----------------------------------
            port, backend = free_port(), free_port()
            root = tmp / "root"
            root.mkdir()
            config = tmp / "gw-embedded.toml"
            config.write_text(to_toml({
                "server": {"port": port, "access_log": False}, "log": {"audit": False},
                "embedded": {"root": str(root), "listen": f"127.0.0.1:{backend}"},
            }))
            rec.config("gw-embedded.toml (authgateway default, embedded backend)", config)
            gw_cmd = [sys.executable, "-m", "gateway", "serve", "-c", str(config), *workers_flag]
            with Part(rec, "authgateway default (embedded backend)"), \
                    process(rec, gw_cmd, tmp / "gw2.log", port) as gw:
                describe_gateway(rec, "authgateway default (embedded backend)", gw.pid, port)
                base = f"http://127.0.0.1:{port}"
                cookie = session_cookie(f"{base}/?op=homedir&user.name=hdfs")
                header = f"Cookie: {cookie}"
                made = subprocess.run(
                    ["curl", "-4", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", header,
                     "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + str(www / "file.bin"),
                     f"{base}/file.bin?op=create&overwrite=true"],
                    capture_output=True, text=True, check=True, timeout=30,
                ).stdout
                if made != "201":
                    raise RuntimeError(f"creating /file.bin in the embedded backend: HTTP {made}")
                lua = tmp / "post.lua"
                lua.write_text(POST_LUA)
                for key_, name, url, script in (
                    ("gw-hoop", "authgateway default (embedded), Hoop op=open", f"{base}/file.bin?op=open", None),
                    ("gw-webhdfs", "authgateway default (embedded), WebHDFS OPEN",
                     f"{base}/webhdfs/v1/file.bin?op=OPEN", None),
                    ("gw-alluxio", "authgateway default (embedded), Alluxio get-status",
                     f"{base}/api/v1/paths//file.bin/get-status", lua),
                ):
                    # Refused without the cookie, served with it (the Alluxio call as wrk sends it).
                    extra = ("-X", "POST") if script else ()
                    check_cookie(url, cookie, *extra)
                    rate_rows(key_, name, url, gw.pid, [header], script)
                add_stream(transfer(rec, "gw-embedded", "authgateway default (embedded), Hoop", "upload",
                                    f"{base}/big.bin?op=create&overwrite=true", size=size, repeats=repeats,
                                    root_pid=gw.pid, source=big, method="POST", headers=(header,)))
                add_stream(transfer(rec, "gw-embedded", "authgateway default (embedded), Hoop", "download",
                                    f"{base}/big.bin?op=open", size=size, repeats=repeats, root_pid=gw.pid,
                                    headers=(header,)))
            token_rate_seen = token_rate(ccache, 2.0)
        except Exception as exc:
            traceback.print_exc()
            print("the run stopped early; what was measured so far follows", file=sys.stderr)
            rec.stopped.append(f"the run stopped early: {type(exc).__name__}: {exc}")
        finally:
            realm.stop()

    rat = ratios(rec, conns)
    settings = (
        f"Request-rate rows: {seconds} s each after a 1 s warm-up, a {SMALL}-byte file, connections {conns}; "
        f"wrk -t2 (-t1 for one connection), or for SPNEGO {args.clients} client processes sharing the connections.\n"
        f"SPNEGO rows: {args.spnego_tokens_per_second * seconds:,} tokens made in advance per row (python-gssapi, "
        f"SPNEGO/Kerberos, mutual authentication requested, as curl --negotiate), each sent once, no cookie; the "
        f"Kerberos default replay cache (file2) on in both servers."
        + (f" One process makes {token_rate_seen:,.0f} tokens/s.\n" if token_rate_seen else "\n")
        + f"{rec.stream_label} rows: curl one transfer at a time, {repeats} transfer(s) per row, the "
        f"median shown. Uploads: WebDAV PUT, written to a file by the nginx origin, or Hoop op=create into "
        f"the embedded backend.\n"
        + (f"Every file (the served ones, the uploads, the embedded backend's root, the replay caches) is on tmpfs "
           f"({scratch}), so no row waits for the disk.\n" if scratch else
           f"Every file (the served ones, the uploads, the embedded backend's root, the replay caches) is on disk "
           f"({tempfile.gettempdir()}; /dev/shm lacks room): the upload rows include the disk's writes.\n")
        + f"CPU columns: cores used (CPU seconds per second) by the server under test (nginx: both roles, all "
        f"workers; Apache: all its processes; gateway: its whole process tree, embedded backend included) and "
        f"by the client (wrk, curl, or the SPNEGO client processes). RSS: the server's whole process tree, "
        f"sampled every 20 ms.\n"
        f"Servers: nginx worker_processes auto; Apache mpm_event "
        f"{', '.join(line for line in APACHE_MPM.splitlines() if line.split()[0] in _APACHE_SHOWN)}; authgateway with "
        f"{'--workers ' + str(args.gateway_workers) if workers_flag else 'its default worker count'}; "
        f"no access log in any."
    )
    print_report(rec, rat, settings)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = mach["class"] + ("-quick" if quick else "")
    chart = args.out / f"{stem}.png"
    have_chart = write_chart(chart, rec, mach, conns)
    markdown = args.out / f"{stem}.md"
    write_markdown(markdown, rec, rat, mach, vers, settings, time.monotonic() - started,
                   chart if have_chart else None)
    print(f"\nwrote {markdown}" + (f" and {chart}" if have_chart else "")
          + f" ({(time.monotonic() - started) / 60:.1f} minutes in all)")
    failed = rec.stopped or any(r.failed for r in rec.rows) or any(s.failed for s in rec.streams)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
