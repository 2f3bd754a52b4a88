"""1 GiB up and down through the gateway, in bounded memory.

The embedded backend runs as its own process here (``authgateway embedded``)
so that the gateway's memory is measured alone.  The peak resident set
(VmHWM) of the gateway after both transfers, summed over its worker
processes, must stay within ``GROWTH_LIMIT`` of what it was before them.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, to_toml, tree_memory, wait_for_port
from tests.e2e.curl import curl

SIZE = 2**30
# Measured on a 2-core Debian 12 machine over three runs: RSS 38.1-38.2 MiB
# before, peak 40.1-40.5 MiB after a 1 GiB upload and download (growth
# 1.9-2.4 MiB).  The limit leaves room for allocator noise and nothing
# proportional to the transfer (one buffered GiB would be 1024 MiB).
GROWTH_LIMIT = 16 * 2**20

pytestmark = pytest.mark.timeout(300)


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATEWAY_")}
    with open(log, "wb") as fh:
        return subprocess.Popen([sys.executable, "-m", "gateway", *args], cwd=REPO, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)


def test_one_gib_up_and_down(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for name in ("cookie.key", "identity.key"):
        (tmp_path / name).write_bytes(os.urandom(48).hex().encode())
    port, backend_port = free_port(), free_port()
    config = tmp_path / "gw.toml"
    config.write_text(to_toml({
        "server": {"port": port, "access_log": False},
        "cookie": {"secret_files": [str(tmp_path / "cookie.key")]},
        "backend": {"url": f"http://127.0.0.1:{backend_port}", "identity_secret_file": str(tmp_path / "identity.key")},
        "embedded": {"root": str(root), "listen": f"127.0.0.1:{backend_port}"},
    }))
    backend = spawn(["embedded", "--config", str(config)], tmp_path / "backend.log")
    gateway = spawn(["serve", "--config", str(config)], tmp_path / "gateway.log")
    try:
        wait_for_port(backend_port, backend)
        wait_for_port(port, gateway)
        url = f"http://localhost:{port}"
        jar = tmp_path / "jar"
        assert curl("-c", str(jar), f"{url}/?op=homedir&user.name=hdfs").status == 200

        source = tmp_path / "big.bin"
        digest = hashlib.sha256()
        block = os.urandom(2**20)
        with open(source, "wb") as fh:
            for i in range(SIZE // len(block)):
                chunk = block[i % 251 :] + block[: i % 251]  # not one repeated block
                fh.write(chunk)
                digest.update(chunk)
        baseline = tree_memory(gateway.pid, "VmRSS")

        t0 = time.monotonic()
        r = curl("-X", "POST", "-T", str(source), "-b", str(jar), "-H", "Content-Type: application/octet-stream",
                 f"{url}/big.bin?op=create", timeout=240)
        up = time.monotonic() - t0
        assert r.status == 201, r.body
        assert (root / "big.bin").stat().st_size == SIZE
        source.unlink()

        t0 = time.monotonic()
        out = tmp_path / "down.bin"
        proc = subprocess.run(["curl", "-s", "-S", "-f", "-b", str(jar), "-o", str(out), f"{url}/big.bin"],
                              capture_output=True, timeout=240, check=False)
        down = time.monotonic() - t0
        assert proc.returncode == 0, proc.stderr
        got = hashlib.sha256()
        with open(out, "rb") as fh:
            while chunk := fh.read(2**22):
                got.update(chunk)
        assert got.hexdigest() == digest.hexdigest()

        peak = tree_memory(gateway.pid, "VmHWM")
        report = (
            f"upload {SIZE / up / 2**20:.0f} MiB/s, download {SIZE / down / 2**20:.0f} MiB/s, "
            f"gateway RSS before {baseline / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB, "
            f"backend peak {tree_memory(backend.pid, 'VmHWM') / 2**20:.1f} MiB"
        )
        print(report)
        (tmp_path / "report.txt").write_text(report)
        assert peak - baseline < GROWTH_LIMIT, report
    finally:
        for proc_ in (gateway, backend):
            proc_.terminate()
            proc_.wait(timeout=10)
