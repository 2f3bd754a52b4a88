"""``scripts/demo-realm`` does what it prints: type its commands, get in."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port
from tests.kerberos.conftest import KdcRealm

pytestmark = pytest.mark.kerberos


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    out = ""
    deadline = time.monotonic() + timeout
    while marker not in out:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"demo-realm ended before {marker!r}:\n{out}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} within {timeout}s:\n{out}")
        out += line
    return out


def test_the_printed_commands_work(kdc: KdcRealm, tmp_path: Path) -> None:
    # kdc: the tools are installed (or the test is skipped/failed like the others).
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KRB5", "AUTHGATEWAY_"))}
    with subprocess.Popen(
        [str(REPO / "scripts" / "demo-realm"), "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    ) as proc:
        try:
            out = _read_until(proc, "Ctrl-C here stops")
            base = Path(re.search(r"files in (\S+)", out).group(1))  # type: ignore[union-attr]
            exports = dict(re.findall(r"^\s+export (\w+)=(\S+)$", out, re.M))
            assert set(exports) == {"KRB5_CONFIG", "KRB5CCNAME"}
            lines = [line.strip() for line in out.split("Then, in another shell:")[1].splitlines()]
            commands = [c.split("  #")[0].strip() for c in lines if c and not c.startswith(("#", "export", "Ctrl-C"))]
            assert [c.split()[0] for c in commands] == ["kinit", "curl", "kdestroy", "curl", "curl"]
            client_env = {**env, **exports}
            results = []
            for command in commands:
                stdin = "alice\n" if command.startswith("kinit") else None
                done = subprocess.run(
                    command, shell=True, env=client_env, input=stdin, capture_output=True, text=True, timeout=30
                )
                assert done.returncode == 0, (command, done.stderr)
                results.append(done.stdout)
            assert "/user/alice" in results[1] and "/user/alice" in results[3] and "/user/bob" in results[4]
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(20)
    assert proc.returncode == 0
    assert not base.exists(), "the temporary realm is removed at exit"
