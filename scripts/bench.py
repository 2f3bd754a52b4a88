"""Benchmark the gateway's per-request path against nginx on this machine.

Every figure is measured by wrk over loopback against a 1.4 KB file:

* nginx serving the file directly, and nginx proxying to that nginx;
* the gateway with a session cookie, in front of that nginx (the cost of
  the gateway alone) and in front of its embedded backend.

Run through scripts/bench, which installs wrk and nginx.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import free_port, to_toml, wait_for_port  # noqa: E402

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


@contextmanager
def process(args: list[str], log: Path, port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    with open(log, "wb") as fh:
        proc = subprocess.Popen(args, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_port(port, proc)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk(url: str, seconds: int, connections: int, headers: list[str] = ()) -> tuple[float, str]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors for {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    return rps, p99


def session_cookie(url: str) -> str:
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-D", "-", url], capture_output=True, text=True, check=True)
    match = re.search(r"^set-cookie: ([^;]+)", out.stdout, re.I | re.M)
    if not match:
        raise RuntimeError(f"no session cookie from {url}")
    return match.group(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("nginx"):
        print("wrk and nginx are required (scripts/bench installs them)", file=sys.stderr)
        return 2

    results: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        tmp.chmod(0o755)  # nginx workers drop root privileges and must read www/
        www = tmp / "www"
        www.mkdir(mode=0o755)
        payload = os.urandom(1400)
        (www / "file.bin").write_bytes(payload)
        origin, proxy = free_port(), free_port()
        (tmp / "nginx.conf").write_text(NGINX.format(tmp=tmp, www=www, origin=origin, proxy=proxy))
        key = tmp / "cookie.key"
        key.write_bytes(os.urandom(48).hex().encode())

        def run(name: str, url: str, headers: list[str] = ()) -> None:
            rps, p99 = wrk(url, args.duration, args.connections, list(headers))
            results.append((name, rps, p99))
            print(f"{name:<48} {rps:>10,.0f} req/s   p99 {p99}", flush=True)

        with process(["nginx", "-c", str(tmp / "nginx.conf")], tmp / "nginx.log", proxy):
            wait_for_port(origin)
            run("nginx, direct", f"http://127.0.0.1:{origin}/file.bin")
            run("nginx, proxy to nginx", f"http://127.0.0.1:{proxy}/file.bin")

            port = free_port()
            config = tmp / "gw-nginx.toml"
            config.write_text(to_toml({
                "server": {"port": port, "access_log": False},
                "cookie": {"secret_files": [str(key)]},
                "backend": {"url": f"http://127.0.0.1:{origin}"},
            }))
            with process([sys.executable, "-m", "gateway", "serve", "-c", str(config)], tmp / "gw1.log", port):
                url = f"http://127.0.0.1:{port}/file.bin"
                cookie = session_cookie(url + "?user.name=bench")
                run("authgateway, cookie, in front of nginx", url, [f"Cookie: {cookie}"])

            port, backend = free_port(), free_port()
            root = tmp / "root"
            root.mkdir()
            (root / "file.bin").write_bytes(payload)
            config = tmp / "gw-embedded.toml"
            config.write_text(to_toml({
                "server": {"port": port, "access_log": False},
                "embedded": {"root": str(root), "listen": f"127.0.0.1:{backend}"},
            }))
            with process([sys.executable, "-m", "gateway", "serve", "-c", str(config)], tmp / "gw2.log", port):
                url = f"http://127.0.0.1:{port}/file.bin"
                cookie = session_cookie(url + "?user.name=hdfs")
                run("authgateway, cookie, embedded backend", url, [f"Cookie: {cookie}"])

    print(f"\n{time.strftime('%Y-%m-%d')} {os.cpu_count()} cores, wrk -t2 -c{args.connections} -d{args.duration}s, 1400-byte file")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
