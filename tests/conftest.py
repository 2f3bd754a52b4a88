"""Fixtures shared by the whole suite.

``gateway`` starts the real ``authgateway serve`` as a subprocess on free
loopback ports (the embedded backend by default) and stops it afterwards.

The loop-latency guard: every gateway :func:`start_gateway` starts watches
its workers' event loops (``log.loop_stall``, :mod:`gateway.loopwatch`) from
:data:`LOOP_STALL_WATCH` and logs each stall.  After every test, and again
after its teardown, the guard reads the new stall lines of every gateway the
suite started and fails the test when a worker's loop was held longer than
:data:`LOOP_STALL_BOUND`: no request may freeze the other requests of its
worker.  Time a worker spent waiting for a CPU (a loaded CI machine) is not
counted by the gateway, so the bound holds under contention.  A test that
stalls a worker on purpose is marked ``stalls_loop`` and reads
:meth:`GatewayProcess.loop_stalls` itself.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
# The longest a test's requests may hold a gateway worker's event loop (seconds).
LOOP_STALL_BOUND = 0.050
# log.loop_stall of the gateways the suite starts: half the bound, so that a stall past the bound is
# measured short by at most a quarter of this (gateway.loopwatch's period) and cannot slip under it.
LOOP_STALL_WATCH = 0.025
_STALL_LINE = re.compile(r"event loop blocked for (\d+) ms \(pid (\d+)")
# The worker count of every gateway the tests start (a test may still set its own).
WORKERS_VARIABLE = "TEST_GATEWAY_WORKERS"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (a gateway's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def tree_memory(pid: int, field: str) -> int:
    """The sum of ``field`` (``VmRSS``, ``VmHWM``: bytes) over ``pid``'s process tree.

    For ``VmHWM`` it is the sum of each process's own peak: at least the
    tree's peak, never less.
    """
    total = 0
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue  # gone meanwhile
        for line in lines:
            if line.startswith(field + ":"):
                total += int(line.split()[1]) * 1024
    return total


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, and SIGKILL after 10 s, unless ``proc`` is gone already."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(tables: Mapping[str, Any], prefix: str = "") -> str:
    """A small TOML writer for test configurations (tables of plain values, arrays of tables)."""
    lines: list[str] = []
    nested: list[tuple[str, Mapping[str, Any]]] = []
    arrays: list[tuple[str, list[Mapping[str, Any]]]] = []
    for key, value in tables.items():
        if isinstance(value, Mapping):
            nested.append((f"{prefix}{key}", value))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            arrays.append((f"{prefix}{key}", value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for name, table in nested:
        out += f"\n[{name}]\n" + to_toml(table, f"{name}.")
    for name, items in arrays:
        for item in items:
            out += f"\n[[{name}]]\n" + to_toml(item, f"{name}.")
    return out


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass
class GatewayProcess:
    """A running ``authgateway serve``."""

    url: str  # http://localhost:PORT
    port: int
    root: Path  # the embedded backend's root directory
    backend_url: str  # the embedded backend, reached directly
    config_path: Path
    log_path: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc)

    def loop_stalls(self) -> list[tuple[int, float]]:
        """Every event loop stall its workers logged so far: (pid, seconds), in order."""
        return [(int(m[2]), int(m[1]) / 1000) for m in _STALL_LINE.finditer(self.log())]


def start_gateway(
    workdir: Path, *, env: Mapping[str, str] | None = None, **sections: Mapping[str, Any]
) -> GatewayProcess:
    port, backend_port = free_port(), free_port()
    root = workdir / "root"
    defaults: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port},
        "embedded": {"root": str(root), "listen": f"127.0.0.1:{backend_port}"},
        "log": {"loop_stall": LOOP_STALL_WATCH},
    }
    if os.environ.get(WORKERS_VARIABLE):  # scripts/test runs the end-to-end tests with 2 workers and with 1
        defaults["server"]["workers"] = int(os.environ[WORKERS_VARIABLE])
    settings = deep_merge(defaults, sections)
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "authgateway.toml"
    config_path.write_text(to_toml(settings))
    log_path = workdir / "gateway.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATEWAY_")}
    full_env.update(env or {})
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config_path)],
            cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )
    gw = GatewayProcess(
        url=f"http://localhost:{port}", port=port,
        root=Path(settings["embedded"]["root"]),
        backend_url=f"http://{settings['embedded']['listen']}",
        config_path=config_path, log_path=log_path, proc=proc,
    )
    _WATCHED.append(_Watched(gw))
    try:
        wait_for_port(port, proc)
    except Exception:
        gw.stop()
        raise RuntimeError(f"gateway did not start:\n{gw.log()}") from None
    return gw


# -- the loop-latency guard ----------------------------------------------------------


@dataclass
class _Watched:
    gw: GatewayProcess
    offset: int = 0  # bytes of its log the guard has read


_WATCHED: list[_Watched] = []
_GUARD_MARKER = "stalls_loop"
_CALL_FAILED = pytest.StashKey[bool]()
# Seconds the guard lets a gateway log a stall its last answer came right before: a few of its timer's periods.
_SETTLE = LOOP_STALL_WATCH


def _new_stalls() -> list[str]:
    """The stall lines past the bound that the gateways logged since the last look; forgets stopped ones."""
    found: list[str] = []
    for watched in list(_WATCHED):
        exited = watched.gw.proc.poll() is not None  # before reading: then its log is whole
        try:
            with open(watched.gw.log_path, "rb") as fh:
                fh.seek(watched.offset)
                data = fh.read()
        except OSError:
            data = b""
        whole = data[: data.rfind(b"\n") + 1]
        watched.offset += len(whole)
        for line in whole.decode(errors="replace").splitlines():
            match = _STALL_LINE.search(line)
            if match and int(match[1]) > LOOP_STALL_BOUND * 1000:
                found.append(f"{watched.gw.url}: {line}")
        if exited:
            _WATCHED.remove(watched)
    return found


def _guard_failure(stalls: list[str]) -> str:
    return (
        f"the loop-latency guard: a gateway worker's event loop was held longer than "
        f"{LOOP_STALL_BOUND * 1000:.0f} ms (every other request of that worker waited):\n  " + "\n  ".join(stalls)
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_GUARD_MARKER}(reason): the test stalls a gateway worker's event loop on purpose; the loop-latency "
        "guard does not fail it (it reads GatewayProcess.loop_stalls itself)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test whose requests stalled a gateway's event loop (in the call, so ``xfail`` applies)."""
    try:
        result = yield
    except BaseException:
        item.stash[_CALL_FAILED] = True
        _new_stalls()  # the test failed anyway: its stalls are not the next test's
        raise
    if _WATCHED:
        time.sleep(_SETTLE)
    _judge(item, _new_stalls())
    return result


def _judge(item: pytest.Item, stalls: list[str]) -> None:
    if not stalls or item.get_closest_marker(_GUARD_MARKER) is not None:
        return
    item.stash[_CALL_FAILED] = True
    pytest.fail(_guard_failure(stalls), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Catch the stalls logged after the call (while its gateways drained and stopped): an error at teardown."""
    result = yield
    stalls = _new_stalls()
    if not item.stash.get(_CALL_FAILED, False):
        _judge(item, stalls)
    return result


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start real gateways: ``gateway(auth={...}, cookie={...}, env={...})``."""
    started: list[GatewayProcess] = []

    def start(*, env: Mapping[str, str] | None = None, **sections: Mapping[str, Any]) -> GatewayProcess:
        gw = start_gateway(tmp_path / f"gw{len(started)}", env=env, **sections)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()
