"""The store's streams (Alluxio's stream ids), called in-process on a started backend.

No face serves them yet; these pin the store's contract for the one that will.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import EmbeddedConfig
from gateway.embedded import BACKEND_KEY
from gateway.embedded.store import AccessDeniedError, BadRequestError, NotFoundError, Store
from tests.integration.embedded import (
    Backend,
    backend,  # noqa: F401  (the fixture)
    create,
    make_config,
    status,
)


class _Body:
    """A request body that has fully arrived (what aiohttp's StreamReader offers)."""

    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)

    async def readany(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""

    def read_nowait(self, n: int = -1) -> bytes:
        return b""

    def is_eof(self) -> bool:
        return not self._chunks


def _store(b: Backend) -> Store:
    assert b.runner is not None
    return b.runner.app[BACKEND_KEY]


async def _read_all(store: Store, user: str, stream_id: int) -> bytes:
    reader = await store.stream_read(store.principal(user), stream_id)
    try:
        return await reader.read(reader.remaining)
    finally:
        await reader.close()


async def test_a_write_stream_is_invisible_until_closed_and_writes_append(backend: Backend) -> None:
    store = _store(backend)
    bob = store.principal("bob")
    sid = await store.open_write_stream(bob, ("user", "bob", "s"), overwrite=False, perm=0o600, replication=2,
                                        block_size=-1)
    assert 0 < sid < 2**31
    assert await store.stream_write(bob, sid, _Body(b"one,", b"two,"), None) == 8
    assert await store.stream_write(bob, sid, _Body(b"three"), 5) == 5
    assert (await backend.call("GET", "/user/bob/s?op=status")).status == 404
    await store.stream_close(bob, sid)
    doc = await status(backend, "/user/bob/s")
    assert (doc["len"], doc["permission"], doc["replication"], doc["owner"]) == (13, "-rw-------", 2, "bob")
    assert (await backend.call("GET", "/user/bob/s")).body == b"one,two,three"
    with pytest.raises(NotFoundError):
        await store.stream_close(bob, sid)
    assert backend.temp_files() == []


async def test_a_read_stream_reads_once(backend: Backend) -> None:
    await create(backend, "/user/bob/r", b"content")
    store = _store(backend)
    sid = await store.open_read_stream(store.principal("bob"), ("user", "bob", "r"))
    assert await _read_all(store, "bob", sid) == b"content"
    assert await _read_all(store, "bob", sid) == b""
    with pytest.raises(BadRequestError):
        await store.stream_write(store.principal("bob"), sid, _Body(b"x"), None)
    await store.stream_close(store.principal("bob"), sid)


async def test_a_stream_is_useless_to_anyone_but_its_opener(backend: Backend) -> None:
    await create(backend, "/user/bob/r", b"content")
    store = _store(backend)
    rid = await store.open_read_stream(store.principal("bob"), ("user", "bob", "r"))
    wid = await store.open_write_stream(store.principal("bob"), ("user", "bob", "w"), overwrite=False, perm=None,
                                        replication=3, block_size=-1)
    for user in ("alice", "hdfs"):
        with pytest.raises(NotFoundError, match=f"Stream {rid} does not exist"):
            await store.stream_read(store.principal(user), rid)
        with pytest.raises(NotFoundError):
            await store.stream_write(store.principal(user), wid, _Body(b"x"), None)
        with pytest.raises(NotFoundError):
            await store.stream_close(store.principal(user), wid)
    with pytest.raises(NotFoundError):
        await store.stream_read(store.principal("bob"), 12345)


async def test_opening_checks_permissions_as_read_and_create_do(backend: Backend) -> None:
    await create(backend, "/user/bob/private", b"x", query="&permission=600")
    store = _store(backend)
    with pytest.raises(AccessDeniedError):
        await store.open_read_stream(store.principal("alice"), ("user", "bob", "private"))
    with pytest.raises(AccessDeniedError):
        await store.open_write_stream(store.principal("alice"), ("user", "bob", "x"), overwrite=False, perm=None,
                                      replication=3, block_size=-1)
    assert backend.temp_files() == []


async def test_an_abandoned_stream_expires_and_leaves_nothing(backend: Backend) -> None:
    store = _store(backend)
    bob = store.principal("bob")
    store.stream_ttl_ms = 0
    sid = await store.open_write_stream(bob, ("user", "bob", "gone"), overwrite=False, perm=None, replication=3,
                                        block_size=-1)
    with pytest.raises(NotFoundError):
        await store.stream_write(bob, sid, _Body(b"late"), None)
    store.stream_ttl_ms = 60_000
    await create(backend, "/user/bob/other", b"x")
    await store.open_read_stream(bob, ("user", "bob", "other"))  # opening sweeps the expired
    assert backend.temp_files() == []
    assert (await backend.call("GET", "/user/bob/gone?op=status")).status == 404


async def test_streams_survive_a_restart(tmp_path: Path) -> None:
    config: EmbeddedConfig = make_config(tmp_path / "root")
    first = Store(config)
    first.start()
    try:
        bob = first.principal("bob")
        sid = await first.open_write_stream(bob, ("user", "bob", "kept"), overwrite=False, perm=None,
                                            replication=3, block_size=-1)
        await first.stream_write(bob, sid, _Body(b"before "), None)
    finally:
        first.stop()
    second = Store(config)
    second.start()  # clears the leftovers of a crash, but not an open stream's bytes
    try:
        bob = second.principal("bob")
        await second.stream_write(bob, sid, _Body(b"after"), None)
        await second.stream_close(bob, sid)
        reader = await second.open(bob, ("user", "bob", "kept"), -1, -1)
        try:
            assert await reader.read(reader.remaining) == b"before after"
        finally:
            await reader.close()
    finally:
        second.stop()


# -- state shared with other processes ------------------------------------------------------------------


async def test_an_append_waits_for_another_process_holding_the_file(backend: Backend) -> None:
    import asyncio
    import fcntl
    import os

    await create(backend, "/user/bob/shared", b"a")
    other = os.open(backend.root / "user/bob/shared", os.O_RDONLY)  # another open file: as another process
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        append = asyncio.ensure_future(backend.call("PUT", "/user/bob/shared?op=append", data=b"b"))
        await asyncio.sleep(0.3)
        assert not append.done()
        fcntl.flock(other, fcntl.LOCK_UN)
        assert (await append).status == 200
    finally:
        os.close(other)
    assert (await backend.call("GET", "/user/bob/shared")).body == b"ab"


async def test_start_keeps_a_temporary_file_another_process_is_writing(backend: Backend) -> None:
    import fcntl
    import os

    tmp = backend.root / ".authgateway" / "tmp"
    (tmp / "stale").write_bytes(b"x")
    (tmp / "live").write_bytes(b"y")
    live = os.open(tmp / "live", os.O_RDONLY)
    try:
        fcntl.flock(live, fcntl.LOCK_EX)
        await backend.stop()
        await backend.start()
        assert backend.temp_files() == ["live"]
    finally:
        os.close(live)
    await backend.stop()
    await backend.start()
    assert backend.temp_files() == []


async def test_close_waits_for_a_write_to_the_stream_in_another_process(backend: Backend) -> None:
    import asyncio
    import fcntl
    import os

    store = _store(backend)
    bob = store.principal("bob")
    sid = await store.open_write_stream(bob, ("user", "bob", "w"), overwrite=False, perm=None, replication=3,
                                        block_size=-1)
    [temp] = backend.temp_files()
    other = os.open(backend.root / ".authgateway" / "tmp" / temp, os.O_RDONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)  # as another process's write in progress
        close = asyncio.ensure_future(store.stream_close(bob, sid))
        await asyncio.sleep(0.3)
        assert not close.done()
        fcntl.flock(other, fcntl.LOCK_UN)
        await close
    finally:
        os.close(other)
    assert (await status(backend, "/user/bob/w"))["len"] == 0


async def test_abandoned_streams_are_swept_without_any_request(tmp_path: Path) -> None:
    from gateway.embedded.store import _store as store_module
    from tests.integration.embedded import running, wait_until

    sweep, store_module.STREAM_SWEEP_S = store_module.STREAM_SWEEP_S, 0.05
    try:
        async for b in running(make_config(tmp_path / "root")):
            store = _store(b)
            stream_id = await store.open_write_stream(
                store.principal("bob"), ("user", "bob", "x"), overwrite=False, perm=None, replication=3, block_size=-1
            )
            assert b.temp_files() != []
            # Expire it only now: with a zero lifetime from the start, a sweep
            # could remove the file before the line above looked (seen under load).
            store.streams.update(stream_id, expires_ms=0)
            await wait_until(lambda: b.temp_files() == [], "the expired stream's temp file is swept")
    finally:
        store_module.STREAM_SWEEP_S = sweep
