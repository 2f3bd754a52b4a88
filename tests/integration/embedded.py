"""The embedded backend on a real loopback socket, for the tests that talk to it.

The server runs exactly as the CLI runs it (``AppRunner`` with
``handler_cancellation=True`` on a TCP site); requests are signed for their
raw request target and sent with ``encoded=True`` so the target on the wire
is the one signed.  Test modules import the ``backend`` fixture from here.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from gateway.config import EmbeddedConfig
from gateway.embedded import BACKEND_KEY, build_embedded_app
from gateway.embedded.store import Namespace
from gateway.identity import SIGNATURE_HEADER, IdentitySigner

__all__ = (
    "FAILURE_KEYS",
    "STATUS_KEYS",
    "USER_HEADER",
    "Backend",
    "Reply",
    "backend",
    "by_hand",
    "create",
    "make_config",
    "namespace",
    "running",
    "snapshot",
    "status",
    "wait_until",
)

KEY = b"k" * 48
USER_HEADER = "X-Forwarded-User"
STATUS_KEYS = [
    "path", "isDir", "len", "owner", "group", "permission",
    "accessTime", "modificationTime", "blockSize", "replication",
]  # fmt: skip
FAILURE_KEYS = {"statusCode", "reason", "message", "exception"}


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        assert self.headers["Content-Type"].startswith("application/json"), self.headers
        return json.loads(self.body)

    def failure(self, status: int, exception: str) -> str:
        """Assert the Hoop failure JSON; return its message."""
        assert self.status == status, f"expected {status} {exception}, got {self.status}: {self.body[:300]!r}"
        doc = self.json()
        assert set(doc) == FAILURE_KEYS, doc
        assert (self.status, doc["statusCode"], doc["exception"]) == (status, status, exception), doc
        assert "Traceback" not in doc["message"]
        return str(doc["message"])


@dataclass
class Backend:
    root: Path
    config: EmbeddedConfig
    signer: IdentitySigner = field(default_factory=lambda: IdentitySigner(KEY))
    runner: web.AppRunner | None = None
    port: int = 0
    session: aiohttp.ClientSession | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = build_embedded_app(self.config, signer=self.signer, identity_header=USER_HEADER)
        self.runner = web.AppRunner(app, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def signed(self, method: str, target: str, user: str | None) -> dict[str, str]:
        if user is None:
            return {}
        return {USER_HEADER: user, SIGNATURE_HEADER: self.signer.sign(user, method, target)}

    async def call(
        self,
        method: str,
        target: str,
        user: str | None = "bob",
        *,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        assert self.session is not None
        all_headers = {**self.signed(method, target, user), **(headers or {})}
        if data is not None:
            all_headers.setdefault("Content-Type", "application/octet-stream")
        async with self.session.request(
            method, URL(self.base + target, encoded=True), headers=all_headers, data=data, allow_redirects=False
        ) as response:
            body = await response.read()
            return Reply(response.status, response.headers, body)

    def temp_files(self) -> list[str]:
        return os.listdir(self.root / ".authgateway" / "tmp")


def namespace(b: Backend) -> Namespace:
    """The started backend's namespace, for tests that call it directly in-process."""
    assert b.runner is not None
    return b.runner.app[BACKEND_KEY].ns


def make_config(root: Path, **overrides: Any) -> EmbeddedConfig:
    values: dict[str, Any] = {"root": str(root), "groups": ("staff:bob,alice", "admins:root2")}
    values.update(overrides)
    return EmbeddedConfig(**values)


async def running(config: EmbeddedConfig) -> AsyncIterator[Backend]:
    """A started backend with a client session; the body of a fixture."""
    server = Backend(Path(config.root), config)
    await server.start()
    server.session = aiohttp.ClientSession()
    try:
        yield server
    finally:
        await server.session.close()
        await server.stop()


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    """Superuser ``hdfs``, supergroup ``admins`` (``root2``), ``staff`` = bob and alice."""
    async for server in running(make_config(tmp_path / "root", supergroup="admins")):
        yield server


async def create(b: Backend, path: str, data: Any = b"data", user: str = "bob", query: str = "") -> Reply:
    reply = await b.call("POST", f"{path}?op=create{query}", user, data=data)
    assert reply.status == 201, reply.body
    return reply


async def status(b: Backend, path: str, user: str = "bob") -> dict[str, Any]:
    reply = await b.call("GET", f"{path}?op=status", user)
    assert reply.status == 200, reply.body
    doc: dict[str, Any] = reply.json()
    return doc


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        await asyncio.sleep(0.01)


def by_hand(b: Backend, path: str, data: bytes | None = None) -> None:
    """Put a file (``data``) or else a directory at ``path`` on the host, and any
    missing parent directories, as someone would by hand: no metadata is recorded."""
    host = b.root / path.lstrip("/")
    if data is None:
        host.mkdir(parents=True)
    else:
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_bytes(data)


def _read(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)  # reading must not change what it observes
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


async def snapshot(b: Backend) -> dict[str, Any]:
    """What a refused request must leave alone.

    Every inode's status as the superuser lists it (directories without their
    access time, which the listing itself updates), the bytes of every host
    file, and the backend's scratch directories.
    """
    inodes: dict[str, Any] = {"/": await status(b, "/", "hdfs")}
    pending = ["/"]
    while pending:
        directory = pending.pop()
        for entry in (await b.call("GET", f"{directory}?op=list", "hdfs")).json():
            path = entry["path"].removeprefix(b.base)
            if entry["isDir"]:
                pending.append(path)
                entry.pop("accessTime")
            inodes[path] = entry
    inodes["/"].pop("accessTime")
    host: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(b.root):
        here = Path(dirpath)
        if here == b.root:
            dirnames.remove(".authgateway")
        for name in dirnames:
            host[str((here / name).relative_to(b.root)) + "/"] = None
        for name in filenames:
            host[str((here / name).relative_to(b.root))] = _read(here / name)
    state = b.root / ".authgateway"
    scratch = {name: sorted(os.listdir(state / name)) for name in ("tmp", "trash")}
    return {"inodes": inodes, "host": host, "scratch": scratch}
