"""The namespace's own edges: inodes nobody recorded, the root, host failures.

Everything runs in the test's process (the backend on a loopback socket, or
the ``Namespace`` called directly), so scripts/mutate can link these tests to
the code they guard.  Host failures that cannot be provoked from outside are
injected by replacing one ``HostTree`` method on the running backend.
"""

from __future__ import annotations

import errno
import os

import pytest

from gateway.embedded.store._namespace import DEFAULT_BLOCK_SIZE, DEFAULT_REPLICATION
from gateway.embedded.store._paths import Parts
from tests.integration.embedded import (
    Backend,
    backend,  # noqa: F401  (the fixture)
    by_hand,
    namespace,
    snapshot,
    status,
)

# -- inodes nobody recorded --------------------------------------------------------------


async def test_inodes_put_there_by_hand_read_as_the_superusers_in_the_parents_group(backend: Backend) -> None:
    assert (await backend.call("POST", "/d?op=mkdirs&permission=775", "hdfs")).status == 200
    assert (await backend.call("PUT", "/d?op=setowner&group=staff", "hdfs")).status == 200
    by_hand(backend, "/d/hand/sub/f", b"12345")
    by_hand(backend, "/top")
    directory = ("hdfs", "staff", "drwxr-xr-x", 0, 0, 0)
    expected = {
        "/d/hand": directory,
        "/d/hand/sub": directory,  # the group of a parent that is itself unrecorded
        "/d/hand/sub/f": ("hdfs", "staff", "-rw-r--r--", 5, DEFAULT_REPLICATION, DEFAULT_BLOCK_SIZE),
        "/top": ("hdfs", "admins", "drwxr-xr-x", 0, 0, 0),  # the root's group
    }
    for path, want in expected.items():
        st = await status(backend, path)  # as bob, who must traverse them all
        assert (st["owner"], st["group"], st["permission"], st["len"], st["replication"], st["blockSize"]) == want


# -- the root ---------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["bob", "hdfs"])
async def test_creating_the_root_is_a_conflict(backend: Backend, user: str) -> None:
    before = await snapshot(backend)
    reply = await backend.call("POST", "/?op=create", user, data=b"x")
    assert reply.failure(409, "FileAlreadyExistsException") == "Path already exists as a directory: /"
    assert await snapshot(backend) == before


@pytest.mark.parametrize("user", ["bob", "hdfs"])
@pytest.mark.parametrize("recursive", [True, False])
async def test_check_delete_of_the_root_asks_for_no_walk(backend: Backend, user: str, recursive: bool) -> None:
    # The root is not empty (/user): a walk would be due for anything else.
    ns = namespace(backend)
    target, walk = ns.check_delete(ns.groups.principal(user), (), recursive)
    assert (target.path, target.is_dir, walk) == ("/", True, False)


# -- host failures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "path"),
    [
        ("GET", "/user/{n}?op=status", "/user/{n}"),
        ("POST", "/user/bob/{n}?op=create", "/user/bob/{n}"),
        ("POST", "/user/bob/{n}/x?op=mkdirs", "/user/bob/{n}/x"),
    ],
)
async def test_an_over_long_name_is_400_naming_the_path(backend: Backend, method: str, target: str, path: str) -> None:
    name = "n" * 300
    reply = await backend.call(method, target.format(n=name), data=b"x" if method == "POST" else None)
    assert reply.failure(400, "IllegalArgumentException") == f"File name too long: {path.format(n=name)}"


async def test_a_directory_gone_before_the_emptiness_check_is_404(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in ("/d", "/d/e"):
        assert (await backend.call("POST", f"{path}?op=mkdirs&permission=777", "hdfs")).status == 200
    host = namespace(backend).host
    is_empty_dir = host.is_empty_dir

    def removed_first(parts: Parts) -> bool:  # someone removes it on the host just before
        os.rmdir(backend.root / "d/e")
        return is_empty_dir(parts)

    monkeypatch.setattr(host, "is_empty_dir", removed_first)
    reply = await backend.call("DELETE", "/d/e?op=delete")
    assert reply.failure(404, "FileNotFoundException") == "File does not exist: /d/e"
    assert os.listdir(backend.root / "d") == []


async def test_a_host_failure_in_the_emptiness_check_is_500_naming_the_path(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in ("/d", "/d/e"):
        assert (await backend.call("POST", f"{path}?op=mkdirs&permission=777", "hdfs")).status == 200
    before = await snapshot(backend)

    def failing(parts: Parts) -> bool:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(namespace(backend).host, "is_empty_dir", failing)
    reply = await backend.call("DELETE", "/d/e?op=delete")
    assert reply.failure(500, "IOException") == "Input/output error: /d/e"
    assert await snapshot(backend) == before
