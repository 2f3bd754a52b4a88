"""Deep trees against the embedded backend on a real socket: HDFS's path limits, no recursion, no stall.

A tree as deep as HDFS allows (1000 names) is made, listed, deleted and the
backend started again; deeper or longer paths are refused as the NameNode
refuses them, in each face's format; the state directory never stops a
start, whatever a crash or a deep tree left in it; and neither a deep
``mkdirs`` nor a namespace lock held by another process stalls the event
loop that serves everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.embedded.store import MAX_PATH_DEPTH
from tests.integration.embedded import (
    Backend,
    Reply,
    backend,  # noqa: F401  (the fixture)
    namespace,
    snapshot,
    status,
)
from tests.trees import make_deep_chain, remove_all

W = "/webhdfs/v1"
A = "/api/v1/paths"
LIMIT_MESSAGE = "{op}: Pathname too long.  Limit 8000 characters, 1000 levels."


@pytest.fixture(autouse=True)
def no_deep_tree_left(tmp_path: Path) -> Iterator[None]:
    yield  # after the backend stopped
    remove_all(tmp_path)


def chain(top: str, names: int) -> str:
    """A path of ``names`` names in all: ``top`` then ``d/d/...``."""
    depth = top.count("/")
    return top + "/d" * (names - depth)


async def restart(b: Backend) -> None:
    await b.stop()
    await b.start()


def scratch(b: Backend, name: str) -> Path:
    return b.root / ".authgateway" / name


# -- a tree at the limit ------------------------------------------------------------------


@pytest.mark.parametrize(("user", "top"), [("hdfs", "/deep"), ("bob", "/user/bob/deep")])
async def test_a_tree_at_the_depth_limit_is_made_deleted_and_the_backend_starts_again(
    backend: Backend, user: str, top: str
) -> None:
    bottom = chain(top, MAX_PATH_DEPTH)
    reply = await backend.call("POST", f"{bottom}?op=mkdirs", user)
    assert (reply.status, reply.json()) == (200, {"mkdirs": True})
    st = await status(backend, bottom, user)
    assert (st["owner"], st["isDir"], st["permission"]) == (user, True, "drwxr-xr-x")
    assert (await status(backend, chain(top, 500), user))["permission"] == "drwxr-xr-x"  # implicit: 755 | u+wx
    listing = await backend.call("GET", f"{chain(top, MAX_PATH_DEPTH - 1)}?op=list", user)
    assert [e["path"].rpartition("/")[2] for e in listing.json()] == ["d"]
    reply = await backend.call("DELETE", f"{top}?op=delete&recursive=true", user)  # bob's walks the subtree
    assert (reply.status, reply.json()) == (200, {"delete": True})
    assert os.listdir(scratch(backend, "trash")) == []
    await restart(backend)
    missing = await backend.call("GET", f"{top}?op=status", user)
    assert missing.failure(404, "FileNotFoundException") == f"File does not exist: {top}"
    # And the same once more, now that the metadata of the first is gone.
    assert (await backend.call("POST", f"{bottom}?op=mkdirs", user)).status == 200


async def test_a_recursive_delete_checks_every_directory_of_a_deep_tree(backend: Backend) -> None:
    bottom = chain("/user/bob/t", MAX_PATH_DEPTH)
    assert (await backend.call("POST", f"{bottom}?op=mkdirs")).status == 200
    deepest_but_one = chain("/user/bob/t", MAX_PATH_DEPTH - 1)
    assert (await backend.call("PUT", f"{deepest_but_one}?op=setpermission&permission=555")).status == 200
    reply = await backend.call("DELETE", "/user/bob/t?op=delete&recursive=true")
    assert reply.failure(403, "AccessControlException") == (
        f"Permission denied: user=bob, access=ALL, inode={deepest_but_one}"
    )
    assert (await status(backend, bottom))["owner"] == "bob"
    assert os.listdir(scratch(backend, "trash")) == []


# -- over the limit -----------------------------------------------------------------------

TOO_DEEP = chain("/user/bob/x", MAX_PATH_DEPTH + 1)
TOO_LONG = "/user/bob/x" + ("/" + "n" * 200) * 40  # 8051 characters in 42 names


def hoop_io(reply: Reply) -> str:
    return reply.failure(400, "IOException")


def webhdfs_io(reply: Reply) -> str:
    assert reply.status == 403, (reply.status, reply.body[:300])
    failure = reply.json()["RemoteException"]
    assert (failure["exception"], failure["javaClassName"]) == ("IOException", "java.io.IOException")
    return str(failure["message"])


def alluxio_invalid(reply: Reply) -> str:
    assert reply.status == 400, (reply.status, reply.body[:300])
    doc = reply.json()
    assert doc["statusCode"] == "INVALID_ARGUMENT", doc
    return str(doc["message"])


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("path", [TOO_DEEP, TOO_LONG], ids=["deep", "long"])
@pytest.mark.parametrize(
    ("op", "method", "target", "body", "check"),
    [
        ("mkdirs", "POST", "{p}?op=mkdirs", None, hoop_io),
        ("create", "POST", "{p}?op=create", b"x", hoop_io),
        ("rename", "PUT", "/user/bob/src?op=rename&to={p}", None, hoop_io),
        ("mkdirs", "PUT", W + "{p}?op=MKDIRS", None, webhdfs_io),
        ("create", "PUT", W + "{p}?op=CREATE&data=true", b"x", webhdfs_io),
        ("rename", "PUT", W + "/user/bob/src?op=RENAME&destination={p}", None, webhdfs_io),
        ("mkdirs", "POST", A + "{p}/create-directory", b'{"recursive": true}', alluxio_invalid),
        ("create", "POST", A + "{p}/create-file", b'{"recursive": true}', alluxio_invalid),
        ("rename", "POST", A + "/user/bob/src/rename?dst={p}", None, alluxio_invalid),
    ],
)
async def test_a_path_over_hdfs_limits_is_refused_as_the_namenode_refuses_it(
    backend: Backend, path: str, op: str, method: str, target: str, body: bytes | None, check: object
) -> None:
    assert (await backend.call("POST", "/user/bob/src?op=mkdirs")).status == 200
    before = await snapshot(backend)
    headers = JSON if body is not None and body.startswith(b"{") else None
    reply = await backend.call(method, target.format(p=path), data=body, headers=headers)
    assert callable(check)
    assert check(reply) == LIMIT_MESSAGE.format(op=op)
    assert await snapshot(backend) == before


async def test_a_path_at_the_length_limit_is_made(backend: Backend) -> None:
    path = "/user/bob/x" + ("/" + "n" * 200) * 39 + "/" + "m" * (8000 - 11 - 39 * 201 - 1)
    assert len(path) == 8000
    assert (await backend.call("POST", f"{path}?op=mkdirs")).status == 200
    over = await backend.call("POST", f"{path}m?op=mkdirs")
    assert hoop_io(over) == LIMIT_MESSAGE.format(op="mkdirs")


# -- the state directory never stops a start ---------------------------------------------


@contextlib.contextmanager
def unremovable(directory: Path) -> Iterator[None]:
    """Make ``directory`` impossible to empty for the backend's user (root too: an immutable file)."""
    stuck = directory / "stuck"
    stuck.write_bytes(b"x")
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(stuck)], check=True)
        undo = ["chattr", "-i", str(stuck)]
    else:
        directory.chmod(0o500)
        undo = ["chmod", "700", str(directory)]
    try:
        yield
    finally:
        subprocess.run(undo, check=True)


async def test_what_a_crash_left_in_the_state_directory_never_stops_a_start(
    backend: Backend, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    await backend.stop()
    trash, tmp = scratch(backend, "trash"), scratch(backend, "tmp")
    make_deep_chain(trash / "deep", 3000)  # what a recursive delete of a deep tree left
    make_deep_chain(tmp / "deepdir", 1500)
    (trash / "damaged").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"keep")
    (trash / "link").symlink_to(outside)
    with unremovable(trash / "damaged"), caplog.at_level(logging.ERROR, logger="gateway.embedded"):
        await backend.start()  # as a worker that replaces one does
        assert sorted(os.listdir(trash)) == ["damaged"]
        assert os.listdir(tmp) == []
        assert (outside / "keep").read_bytes() == b"keep"
        logged = [r.getMessage() for r in caplog.records]
        assert len(logged) == 1 and logged[0].startswith(f"could not remove damaged from {trash} ("), logged
        assert (await backend.call("POST", "/user/bob/ok?op=mkdirs")).status == 200
        await restart(backend)  # and again, with it still there
    await restart(backend)  # and once it can go, it goes
    assert os.listdir(trash) == []


@pytest.mark.parametrize("kind", ["file", "link"])
async def test_a_scratch_directory_that_is_not_one_is_moved_aside(
    backend: Backend, caplog: pytest.LogCaptureFixture, tmp_path: Path, kind: str
) -> None:
    await backend.stop()
    trash = scratch(backend, "trash")
    os.rmdir(trash)
    if kind == "file":
        trash.write_bytes(b"not a directory")
    else:
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "keep").write_bytes(b"keep")
        trash.symlink_to(tmp_path / "elsewhere")
    with caplog.at_level(logging.ERROR, logger="gateway.embedded"):
        await backend.start()
    assert trash.is_dir() and not trash.is_symlink()
    aside = [p for p in trash.parent.iterdir() if p.name.startswith("trash.damaged-")]
    assert len(aside) == 1 and [r.getMessage() for r in caplog.records] == [
        f"{trash} is not a directory; moved aside to {aside[0]}"
    ]
    if kind == "link":
        assert (tmp_path / "elsewhere" / "keep").read_bytes() == b"keep"
    reply = await backend.call("DELETE", "/user?op=delete&recursive=true", "hdfs")
    assert (reply.status, reply.json()) == (200, {"delete": True})
    assert os.listdir(trash) == []


# -- nothing stalls the event loop --------------------------------------------------------


@dataclass
class Stall:
    """The longest time the event loop went without running a 1 ms ticker (``wall``), and the
    most CPU its thread spent in one such gap (``busy``: work done on the loop, whatever else
    the machine was doing meanwhile), in seconds."""

    wall: float = 0.0
    busy: float = 0.0


@contextlib.asynccontextmanager
async def loop_stall() -> AsyncIterator[Stall]:
    worst = Stall()
    stop = asyncio.Event()

    async def tick() -> None:
        last, last_cpu = time.perf_counter(), time.thread_time()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now, cpu = time.perf_counter(), time.thread_time()
            worst.wall = max(worst.wall, now - last)
            worst.busy = max(worst.busy, cpu - last_cpu)
            last, last_cpu = now, cpu

    ticker = asyncio.create_task(tick())
    try:
        yield worst
    finally:
        stop.set()
        await ticker


@pytest.mark.parametrize(("op", "data", "created"), [("mkdirs", None, 200), ("create", b"bottom", 201)])
async def test_a_deep_mkdirs_or_create_never_stalls_the_event_loop(
    backend: Backend, op: str, data: bytes | None, created: int
) -> None:
    bottom = chain("/user/bob/deep", MAX_PATH_DEPTH)
    async with loop_stall() as worst:
        making = asyncio.create_task(backend.call("POST", f"{bottom}?op={op}", data=data))
        waits = []
        while not making.done():
            began = time.perf_counter()
            assert (await backend.call("GET", "/user?op=status", "alice")).status == 200
            waits.append(time.perf_counter() - began)
        assert (await making).status == created
    assert worst.busy < 0.05, f"the event loop was held {worst.busy * 1000:.0f} ms"
    assert len(waits) > 1 and max(waits) < 0.25, waits  # was seconds; 0.05 when the machine is quiet
    parent = await status(backend, bottom.rpartition("/")[0])
    assert (parent["owner"], parent["isDir"], parent["permission"]) == ("bob", True, "drwxr-xr-x")


async def test_lookups_and_a_delete_of_a_deep_tree_never_stall_the_event_loop(backend: Backend) -> None:
    bottom = chain("/user/bob/deep", MAX_PATH_DEPTH)
    assert (await backend.call("POST", f"{bottom}?op=mkdirs")).status == 200
    async with loop_stall() as worst:
        for _ in range(5):
            # A change anywhere drops every cached row: each lookup reads its 1000 rows again.
            assert (await backend.call("PUT", "/user/bob?op=setpermission&permission=755")).status == 200
            assert (await status(backend, bottom))["isDir"] is True
            file = chain("/user/bob/deep", MAX_PATH_DEPTH - 1) + "/f"
            assert (await backend.call("POST", f"{file}?op=create&overwrite=true", data=b"x")).status == 201
        reply = await backend.call("DELETE", "/user/bob/deep?op=delete&recursive=true")
        assert (reply.status, reply.json()) == (200, {"delete": True})
    assert worst.busy < 0.05, f"the event loop was held {worst.busy * 1000:.0f} ms"


async def test_mkdirs_costs_linear_in_depth(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = [0]
    real_open, real_mkdir = os.open, os.mkdir

    def counted_open(*args: object, **kwargs: object) -> int:
        calls[0] += 1
        return real_open(*args, **kwargs)  # type: ignore[arg-type]

    def counted_mkdir(*args: object, **kwargs: object) -> None:
        calls[0] += 1
        real_mkdir(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", counted_open)
    monkeypatch.setattr(os, "mkdir", counted_mkdir)
    cost = {}
    for depth in (100, 800):
        calls[0] = 0
        assert (await backend.call("POST", f"{chain(f'/d{depth}', depth)}?op=mkdirs", "hdfs")).status == 200
        cost[depth] = calls[0]
    # A walk from the root per level (as before) made it 8 * 8 = 64 times dearer.
    assert cost[800] < 8 * 3 * cost[100], cost


async def test_a_contended_namespace_lock_stalls_no_other_request(backend: Backend) -> None:
    # Another process in the middle of a step: its own open file, so its own flock.
    other = os.open(scratch(backend, "namespace.lock"), os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)
    released = threading.Timer(1.0, fcntl.flock, (other, fcntl.LOCK_UN))  # not on this loop: it may be stuck
    released.start()
    try:
        async with loop_stall() as worst:
            mkdirs = asyncio.create_task(backend.call("POST", "/user/bob/waits?op=mkdirs"))
            await asyncio.sleep(0.1)
            began = time.perf_counter()
            reply = await backend.call("GET", "/user?op=status", "alice")
            waited = time.perf_counter() - began
            assert reply.status == 200 and not mkdirs.done()
            assert (await mkdirs).json() == {"mkdirs": True}  # once the other step is over
        assert waited < 0.5, f"a status waited {waited:.2f} s for another process's lock"
        assert worst.wall < 0.5, f"the event loop stalled {worst.wall:.2f} s"
    finally:
        released.join()
        os.close(other)
    assert (await status(backend, "/user/bob/waits"))["isDir"] is True


# -- a long mkdirs is made aside, then placed: the races in between -----------------------


@pytest.mark.parametrize("race", ["made meanwhile", "cleared by a starting worker"])
async def test_a_staged_chain_that_cannot_be_placed_is_made_again(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, race: str
) -> None:
    ns = namespace(backend)
    stage_chain = ns.stage_chain
    staged: list[object] = []

    def raced(parts: tuple[str, ...], existing: int) -> object:
        top = stage_chain(parts, existing)
        if not staged:  # the first time only
            if race == "made meanwhile":
                os.mkdir(backend.root.joinpath(*parts[: existing + 1]))  # by hand: deepest moves on
            else:
                remove_all(scratch(backend, "tmp"))
        staged.append(top)
        return top

    monkeypatch.setattr(ns, "stage_chain", raced)
    bottom = chain("/deep", MAX_PATH_DEPTH)
    reply = await backend.call("POST", f"{bottom}?op=mkdirs", "hdfs")
    assert (reply.status, reply.json()) == (200, {"mkdirs": True})
    assert len(staged) == 2
    assert (await status(backend, bottom, "hdfs"))["owner"] == "hdfs"
    assert os.listdir(scratch(backend, "tmp")) == []


async def test_listings_and_summaries_of_a_deep_tree_never_stall_the_event_loop(backend: Backend) -> None:
    bottom = chain("/user/bob/deep", MAX_PATH_DEPTH)
    assert (await backend.call("POST", f"{bottom}?op=mkdirs")).status == 200
    async with loop_stall() as worst:
        for _ in range(3):
            assert (await backend.call("PUT", "/user/bob?op=setpermission&permission=755")).status == 200
            assert (await backend.call("GET", f"{bottom}?op=list")).json() == []
            reply = await backend.call("GET", f"{W}{bottom}?op=LISTSTATUS_BATCH")
            assert reply.json()["DirectoryListing"]["remainingEntries"] == 0
        # The last 50 levels: each of their listings looks up a path of more than 950 names.
        summary = await backend.call("GET", f"{W}{chain('/user/bob/deep', MAX_PATH_DEPTH - 49)}?op=GETCONTENTSUMMARY")
        assert summary.json()["ContentSummary"]["directoryCount"] == 50
    assert worst.busy < 0.05, f"the event loop was held {worst.busy * 1000:.0f} ms"
