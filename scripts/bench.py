"""Benchmark the gateway's per-request path against nginx and Apache httpd + mod_auth_gssapi.

All servers run on this machine's loopback and serve (or proxy to the same
nginx origin for) one 1.4 KB file.  A throwaway MIT realm issues the tickets.

Session cookie, measured by wrk with a cookie got beforehand:

* nginx serving the file directly, and nginx proxying to that nginx;
* Apache + mod_auth_gssapi (session cookie from one ``curl --negotiate``),
  proxying to the nginx origin, and serving the file itself;
* the gateway (Kerberos scheme, cookie from one ``curl --negotiate``) in front
  of the nginx origin, and (pseudo authentication) in front of its embedded
  backend.

Full SPNEGO on every request, Apache and the gateway both proxying to the
nginx origin, measured by one client (scripts/_bench_krb.py): processes making
a fresh token per request, no cookie, replay caches on (the Kerberos default).

Run through scripts/bench, which installs wrk, nginx, Apache and the KDC.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from _bench_krb import apache, cpu_seconds, process_tree, replay_statuses, spnego_load, stop, token_rate  # noqa: E402

from tests.conftest import free_port, to_toml, wait_for_port  # noqa: E402
from tests.kerberos.realm import Realm, missing_tools  # noqa: E402

REALM = "EXAMPLE.COM"
PRINCIPAL = f"HTTP/localhost@{REALM}"

NGINX = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.err;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream origin {{ server 127.0.0.1:{origin}; keepalive 64; }}
  server {{ listen 127.0.0.1:{origin}; root {www}; }}
  server {{
    listen 127.0.0.1:{proxy};
    location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
"""


@dataclass(frozen=True)
class Row:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cores: float  # CPU seconds of the server under test per second of the run
    client_cores: float


@contextmanager
def process(
    args: list[str], log: Path, port: int, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    full_env = None if env is None else {**os.environ, **env}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(args, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=full_env)
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        stop(proc)


def _ms(text: str) -> float:
    """wrk's latency ("412.00us", "1.23ms", "2.01s") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[match.group(2)]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(
    name: str, url: str, seconds: int, connections: int, server: Callable[[], list[int]], headers: list[str] = ()
) -> Row:
    """One wrk run; raises unless every response was a 2xx and no socket failed.

    ``server()`` lists the processes whose CPU time is the server's.
    """
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for h in headers:
        args += ["-H", h]
    # Warm-up, not measured: Apache spawns its spare children, every server sees the connections once.
    subprocess.run([*args[:3], "-d1s", *args[5:], url], capture_output=True, check=True, timeout=60)
    server0, client0 = cpu_seconds(server()), _children_cpu()
    t0 = time.monotonic()
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    elapsed = time.monotonic() - t0
    server1, client1 = cpu_seconds(server()), _children_cpu()
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw responses other than 2xx for {name} ({url}):\n{out}")
    # Counted, not fatal: a handful of reads in 100,000s cut off by a server that closed a
    # keep-alive connection (seen with Apache, whose error log says nothing at info level).
    socket_errors = 0
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        socket_errors = sum(int(n) for n in match.groups())
        total = re.search(r"(\d+) requests in", out).group(1)  # type: ignore[union-attr]
        print(f"  wrk, {name}: {match.group(0)} in {total} requests", file=sys.stderr)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    server_cpu = sum(server1[pid] - server0.get(pid, 0.0) for pid in server1)
    return Row(name, rps, p50, p99, socket_errors, server_cpu / elapsed, (client1 - client0) / elapsed)


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
        raise RuntimeError(f"no session cookie from {url}:\n{headers}")
    return match.group(1)


def check_cookie(url: str, cookie: str) -> None:
    """The URL refuses a request without the cookie and serves one with it: wrk's 200s are authenticated."""
    without = _status(_curl_headers(url))
    with_cookie = _status(_curl_headers(url, "-H", f"Cookie: {cookie}"))
    if without != 401 or with_cookie != 200:
        raise RuntimeError(f"{url}: {without} without the session cookie (want 401), {with_cookie} with it (want 200)")


def negotiate_cookie(url: str, env: Mapping[str, str]) -> str:
    """One real ``curl --negotiate`` handshake; the session cookie it gets, checked to work alone."""
    cookie = session_cookie(url, "--negotiate", "-u", ":", env=env)
    check_cookie(url, cookie)
    return cookie


def _kdc_tgs_requests(realm: Realm) -> int:
    return realm.log.read_text(errors="replace").count("TGS_REQ") if realm.log.exists() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default %(default)s)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default %(default)s)")
    parser.add_argument("--clients", type=int, default=2, help="SPNEGO client processes (default %(default)s)")
    parser.add_argument(
        "--client-connections", type=int, default=8,
        help="keep-alive connections per SPNEGO client process (default %(default)s)",
    )
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "nginx", "curl") if not shutil.which(tool)]
    if not shutil.which("apache2", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"])):
        missing.append("apache2")
    missing += missing_tools()
    if missing:
        print(f"missing: {', '.join(missing)} (scripts/bench installs them)", file=sys.stderr)
        return 2

    rows: list[Row] = []

    def report(row: Row) -> None:
        rows.append(row)
        print(f"  {row.name:<52} {row.rps:>8,.0f} req/s", flush=True)

    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="authgateway-bench-") as td:
        tmp = Path(td)
        tmp.chmod(0o755)  # nginx workers and Apache's processes drop root privileges and must read www/
        www = tmp / "www"
        www.mkdir(mode=0o755)
        payload = os.urandom(1400)
        (www / "file.bin").write_bytes(payload)
        origin, proxy = free_port(), free_port()
        (tmp / "nginx.conf").write_text(NGINX.format(tmp=tmp, www=www, origin=origin, proxy=proxy))
        key = tmp / "cookie.key"
        key.write_bytes(os.urandom(48).hex().encode())

        realm = Realm(tmp / "realm", REALM).start()
        try:
            realm.add_user("alice", "alice-pw")
            keytab = realm.add_service(["HTTP/localhost"], tmp / "realm" / "http.keytab")
            ccache = realm.ccache("alice")
            client_env = realm.kinit("alice", "alice-pw", ccache=ccache)
            # This process makes tokens too (token_rate, the client processes it forks).
            os.environ.update(client_env)

            def run(name: str, url: str, server_pid: int, headers: list[str] = ()) -> None:
                server = lambda: process_tree(server_pid)  # noqa: E731
                report(wrk(name, url, args.duration, args.connections, server, list(headers)))

            def spnego(name: str, port: int, path: str, server_pid: int, rcache_dir: Path) -> None:
                first, again = replay_statuses(port, path, ccache)
                rcaches = sorted(rcache_dir.glob("*.rcache2"))
                if first != 200 or again == 200 or not rcaches:
                    raise RuntimeError(
                        f"{name}: a token got {first}, the same token again {again} (want 200, then a refusal); "
                        f"replay cache files in {rcache_dir}: {[p.name for p in rcaches]}"
                    )
                notes.append(f"{name}: a replayed token gets {again}; replay cache {rcaches[0].name}")
                tgs0 = _kdc_tgs_requests(realm)
                profile = os.environ.get("BENCH_PROFILE")  # a py-spy binary: record the server while it runs
                spy = None
                if profile:
                    spy = subprocess.Popen(
                        [profile, "record", "-p", str(server_pid), "-d", str(args.duration), "-r", "200", "-t",
                         "-f", "raw", "-o", str(Path.cwd() / f"profile-{port}.txt")],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )
                result, server_cpu = spnego_load(
                    port, path, ccache, seconds=args.duration, processes=args.clients,
                    conns=args.client_connections, server=lambda: process_tree(server_pid),
                )
                if spy is not None:
                    spy.wait(timeout=args.duration + 30)
                if result.errors or result.ok == 0:
                    raise RuntimeError(f"{name}: {result.ok} 200s, {result.errors} errors, statuses {result.statuses}")
                tgs = _kdc_tgs_requests(realm) - tgs0
                if tgs:
                    notes.append(f"{name}: the KDC saw {tgs} TGS requests during the run (expected none)")
                report(Row(
                    name, result.rps, result.percentile(0.5) * 1e3, result.percentile(0.99) * 1e3, 0,
                    server_cpu / args.duration, result.client_cpu / args.duration,
                ))
                notes.append(
                    f"{name}: client {result.client_cpu / result.ok * 1e6:.0f} us CPU per request "
                    f"(at most {result.ok / result.client_cpu:,.0f} req/s per client core), "
                    f"server {server_cpu / result.ok * 1e6:.0f} us CPU per request"
                )

            with process(["nginx", "-c", str(tmp / "nginx.conf")], tmp / "nginx.log", proxy) as ngx:
                wait_for_port(origin)
                run("nginx, direct", f"http://127.0.0.1:{origin}/file.bin", ngx.pid)
                run("nginx, proxy to nginx", f"http://127.0.0.1:{proxy}/file.bin", ngx.pid)

                # -- Apache httpd + mod_auth_gssapi -----------------------------------------
                port = free_port()
                with apache(tmp, port=port, origin=origin, www=www, keytab=keytab, env=realm.env) as httpd:
                    base = f"http://localhost:{port}"
                    # The first handshake also puts the HTTP/localhost ticket in alice's ccache.
                    cookie = negotiate_cookie(f"{base}/nginx/file.bin", client_env)
                    check_cookie(f"{base}/file.bin", cookie)
                    run("Apache mod_auth_gssapi, cookie, proxy to nginx",
                        f"http://127.0.0.1:{port}/nginx/file.bin", httpd.pid, [f"Cookie: {cookie}"])
                    run("Apache mod_auth_gssapi, cookie, serves the file",
                        f"http://127.0.0.1:{port}/file.bin", httpd.pid, [f"Cookie: {cookie}"])
                    spnego("Apache mod_auth_gssapi, SPNEGO each request, proxy", port, "/nginx/file.bin", httpd.pid,
                           httpd.rcache_dir)

                # -- the gateway --------------------------------------------------------------
                port = free_port()
                rcache_dir = tmp / "gw-rcache"
                rcache_dir.mkdir()
                config = tmp / "gw-nginx.toml"
                config.write_text(to_toml({
                    "server": {"port": port, "access_log": False},
                    "auth": {"schemes": ["kerberos"], "kerberos": {"keytab": str(keytab), "principal": PRINCIPAL}},
                    "cookie": {"secret_files": [str(key)]},
                    "backend": {"url": f"http://127.0.0.1:{origin}"},
                }))
                gw_env = {**realm.env, "KRB5RCACHEDIR": str(rcache_dir)}
                gw_env.pop("KRB5CCNAME")
                with process(
                    [sys.executable, "-m", "gateway", "serve", "-c", str(config)], tmp / "gw1.log", port, gw_env
                ) as gw:
                    cookie = negotiate_cookie(f"http://localhost:{port}/file.bin", client_env)
                    run("authgateway, cookie, in front of nginx",
                        f"http://127.0.0.1:{port}/file.bin", gw.pid, [f"Cookie: {cookie}"])
                    spnego("authgateway, SPNEGO each request, in front of nginx", port, "/file.bin", gw.pid, rcache_dir)

                port, backend = free_port(), free_port()
                root = tmp / "root"
                root.mkdir()
                (root / "file.bin").write_bytes(payload)
                config = tmp / "gw-embedded.toml"
                config.write_text(to_toml({
                    "server": {"port": port, "access_log": False},
                    "embedded": {"root": str(root), "listen": f"127.0.0.1:{backend}"},
                }))
                with process([sys.executable, "-m", "gateway", "serve", "-c", str(config)], tmp / "gw2.log", port) as gw:
                    url = f"http://127.0.0.1:{port}/file.bin"
                    cookie = session_cookie(url + "?user.name=hdfs")
                    run("authgateway, cookie (simple), embedded backend", url, gw.pid,
                        [f"Cookie: {cookie}"])

            rate = token_rate(ccache, 3.0)
        finally:
            realm.stop()

    print()
    print(f"{'':<54} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'server CPU':>10} {'client CPU':>10}")
    for row in rows:
        print(f"{row.name:<54} {row.rps:>8,.0f} {row.p50_ms:>7.2f} {row.p99_ms:>7.2f} {row.errors:>6} "
              f"{row.server_cores:>10.2f} {row.client_cores:>10.2f}")
    print(
        f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores shared by client and server, {args.duration}s per run,"
        f" 1400-byte file.\nCookie lines: wrk -t2 -c{args.connections}. SPNEGO lines: {args.clients} client processes"
        f" x {args.client_connections} keep-alive connections, a fresh token per request (python-gssapi, SPNEGO,"
        f" mutual auth requested), no cookie; Kerberos default replay cache on in both servers."
        f"\nCPU columns: cores used (CPU seconds per second) by the server under test (nginx: both roles; Apache:"
        f" all its processes; gateway: its process) and by the client (wrk, or the SPNEGO client processes)."
        f"\nOne client process alone makes {rate:,.0f} SPNEGO tokens/s on one core (no I/O)."
    )
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
