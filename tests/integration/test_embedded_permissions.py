"""Each permission check of the embedded backend, one near miss at a time.

Every tree is built by the superuser ``hdfs``, or put on the host by hand
(nobody recorded it: it reads as the superuser's, 755/644), so its inodes
belong to ``hdfs:admins``; ``bob`` is not in ``admins`` and falls in the
*other* class unless a test makes him the owner or changes the group.  Each refusal is made by a user who lacks
exactly the one permission the check is about and has every other one it
takes, and asserts the exact message (so the refusal comes from that check)
and that nothing changed: statuses, bytes on the host, scratch directories.
Each has a twin that has exactly that permission and succeeds.  Removing or
weakening any one check therefore fails a test here.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.embedded import (
    Backend,
    backend,  # noqa: F401  (the fixture)
    by_hand,
    create,
    make_config,
    running,
    snapshot,
    status,
    wait_until,
)

TIMES = "mtime=1310671662423&atime=1310671662000"


@pytest.fixture
async def stock(tmp_path: Path) -> AsyncIterator[Backend]:
    """The shipped names: superuser ``hdfs``, supergroup ``supergroup`` (root2 in it)."""
    config = make_config(tmp_path / "root", groups=("staff:bob,alice", "supergroup:root2"))
    assert config.supergroup == "supergroup"
    async for server in running(config):
        yield server


async def mkdir(b: Backend, path: str, perm: str) -> None:
    reply = await b.call("POST", f"{path}?op=mkdirs&permission={perm}", "hdfs")
    assert reply.json() == {"mkdirs": True}
    assert (await status(b, path, "hdfs"))["owner"] == "hdfs"


async def put(b: Backend, path: str, perm: str, data: bytes = b"old", owner: str | None = None) -> None:
    await create(b, path, data, user="hdfs", query=f"&permission={perm}")
    if owner is not None:
        assert (await b.call("PUT", f"{path}?op=setowner&owner={owner}", "hdfs")).status == 200


async def refused(b: Backend, user: str, method: str, target: str, message: str, data: bytes | None = None) -> None:
    """``target`` is 403 with exactly ``message`` for ``user``, and changes nothing."""
    before = await snapshot(b)
    reply = await b.call(method, target, user, data=data)
    assert reply.failure(403, "AccessControlException") == message
    assert await snapshot(b) == before


def denied(user: str, action: str, inode: str) -> str:
    return f"Permission denied: user={user}, access={action}, inode={inode}"


# -- rename: WRITE on both parents, and never into the reserved directory ------------------


async def test_rename_needs_write_on_the_source_parent(backend: Backend) -> None:
    await mkdir(backend, "/src", "755")  # bob: r-x
    await put(backend, "/src/f", "644")
    await mkdir(backend, "/dst", "777")
    for to in ("/dst/f", "/dst"):  # a name, or into the directory
        await refused(backend, "bob", "PUT", f"/src/f?op=rename&to={to}", denied("bob", "WRITE", "/src"))
    # the twin: WRITE on both parents
    await mkdir(backend, "/src2", "757")
    await put(backend, "/src2/f", "644")
    reply = await backend.call("PUT", "/src2/f?op=rename&to=/dst/f")
    assert (reply.status, reply.json()) == (200, {"rename": True})
    assert not (backend.root / "src2/f").exists()
    assert (backend.root / "dst/f").read_bytes() == b"old"


async def test_rename_needs_write_on_the_destination_parent(backend: Backend) -> None:
    await mkdir(backend, "/src", "777")
    await put(backend, "/src/f", "644")
    await mkdir(backend, "/dst", "755")  # bob: r-x
    for to in ("/dst/f", "/dst"):  # a name, or into the directory: both land in /dst
        await refused(backend, "bob", "PUT", f"/src/f?op=rename&to={to}", denied("bob", "WRITE", "/dst"))
    # the twin
    await mkdir(backend, "/dst2", "757")
    reply = await backend.call("PUT", "/src/f?op=rename&to=/dst2")
    assert (reply.status, reply.json()) == (200, {"rename": True})
    assert not (backend.root / "src/f").exists()
    assert (backend.root / "dst2/f").read_bytes() == b"old"


@pytest.mark.parametrize(
    "to", ["/.authgateway", "/.authgateway/x", "/.authgateway/tmp", "//.authgateway/trash/y", "/%2Eauthgateway/z"]
)
async def test_rename_into_the_reserved_directory_is_refused_even_to_the_superuser(backend: Backend, to: str) -> None:
    # The superuser passes every permission check: only the reserved-path check stands here.
    await put(backend, "/f", "644")
    await refused(backend, "hdfs", "PUT", f"/f?op=rename&to={to}", "Permission denied: /.authgateway is reserved")
    # the twin: a name that merely starts like it is an ordinary name
    reply = await backend.call("PUT", "/f?op=rename&to=/.authgateway-old", "hdfs")
    assert (reply.status, reply.json()) == (200, {"rename": True})
    assert (backend.root / ".authgateway-old").read_bytes() == b"old"


# -- create: EXECUTE on the ancestors, WRITE on the parent, WRITE on a file it overwrites ------


async def test_create_needs_write_on_the_parent(backend: Backend) -> None:
    await mkdir(backend, "/ro", "755")  # bob: r-x
    await put(backend, "/ro/g", "666")  # writable by bob: only the parent is missing
    for path in ("/ro/new", "/ro/g", "/ro/a/b"):  # new file, overwrite, missing parents
        await refused(backend, "bob", "POST", f"{path}?op=create", denied("bob", "WRITE", "/ro"), data=b"new")
    # the twin
    await mkdir(backend, "/rw", "757")
    await put(backend, "/rw/g", "666")
    for path in ("/rw/new", "/rw/g", "/rw/a/b"):
        await create(backend, path, b"new", user="bob")
        assert (backend.root / path[1:]).read_bytes() == b"new"
        assert (await status(backend, path))["owner"] == "bob"


async def test_overwrite_needs_write_on_the_file(backend: Backend) -> None:
    await mkdir(backend, "/d", "777")
    await put(backend, "/d/f", "644")  # bob: r--
    await refused(backend, "bob", "POST", "/d/f?op=create", denied("bob", "WRITE", "/d/f"), data=b"new")
    # the twin
    await put(backend, "/d/g", "646")  # bob: rw-
    await create(backend, "/d/g", b"new", user="bob")
    assert (backend.root / "d/g").read_bytes() == b"new"


async def test_create_needs_execute_on_every_ancestor(backend: Backend) -> None:
    await mkdir(backend, "/nx", "776")  # bob: rw-
    await mkdir(backend, "/nx/in", "777")
    for path, inode in (("/nx/in/f", "/nx"), ("/nx/f", "/nx")):  # a grandparent, the parent
        await refused(backend, "bob", "POST", f"{path}?op=create", denied("bob", "EXECUTE", inode), data=b"new")
    # the twin
    await mkdir(backend, "/x", "777")
    await mkdir(backend, "/x/in", "777")
    for path in ("/x/in/f", "/x/f"):
        await create(backend, path, b"new", user="bob")
        assert (backend.root / path[1:]).read_bytes() == b"new"


@pytest.mark.parametrize(("target", "revoke"), [("/d/new", "/d"), ("/d/f", "/d/f")])
async def test_create_checks_again_when_the_upload_is_complete(backend: Backend, target: str, revoke: str) -> None:
    """WRITE taken away while the body is in flight: the upload is refused, nothing lands."""
    await mkdir(backend, "/d", "777")
    await put(backend, "/d/f", "666")
    go_on = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"first "
        await go_on.wait()
        yield b"last"

    upload = asyncio.ensure_future(backend.call("POST", f"{target}?op=create", "bob", data=body()))
    try:
        await wait_until(lambda: backend.temp_files() != [], "the upload is being received")
        perm = "755" if revoke == "/d" else "644"
        reply = await backend.call("PUT", f"{revoke}?op=setpermission&permission={perm}", "hdfs")
        assert reply.status == 200
    finally:
        go_on.set()
        reply = await upload
    assert reply.failure(403, "AccessControlException") == denied("bob", "WRITE", revoke)
    assert not (backend.root / "d/new").exists()
    assert (backend.root / "d/f").read_bytes() == b"old"
    assert backend.temp_files() == []


# -- delete: WRITE on the parent, ALL on every directory of a non-empty subtree ------------


@pytest.mark.parametrize("perm", ["776", "775", "773"], ids=["no-execute", "no-write", "no-read"])
async def test_recursive_delete_needs_all_on_the_top(backend: Backend, perm: str) -> None:
    await mkdir(backend, "/p", "777")
    await mkdir(backend, "/p/t", perm)
    await put(backend, "/p/t/f", "666")
    await mkdir(backend, "/p/t/s", "777")  # everything below grants ALL: only the top is short
    await put(backend, "/p/t/s/g", "666")
    await refused(backend, "bob", "DELETE", "/p/t?op=delete&recursive=true", denied("bob", "ALL", "/p/t"))
    # the twin
    assert (await backend.call("PUT", "/p/t?op=setpermission&permission=777", "hdfs")).status == 200
    reply = await backend.call("DELETE", "/p/t?op=delete&recursive=true")
    assert (reply.status, reply.json()) == (200, {"delete": True})
    assert not (backend.root / "p/t").exists()


async def test_recursive_delete_needs_all_on_every_directory_below_by_its_own_group(backend: Backend) -> None:
    await mkdir(backend, "/p", "777")
    await mkdir(backend, "/p/t", "777")
    for path in ("/p/t/s", "/p/t/s/u"):  # ALL for their group alone
        await mkdir(backend, path, "770")
    assert (await backend.call("PUT", "/p/t/s?op=setowner&group=staff", "hdfs")).status == 200
    await put(backend, "/p/t/s/u/f", "666")
    # bob is in staff, which /p/t/s has, but not in admins, which /p/t/s/u still has
    await refused(backend, "bob", "DELETE", "/p/t?op=delete&recursive=true", denied("bob", "ALL", "/p/t/s/u"))
    # the twin: the nested directory's group is one of bob's
    assert (await backend.call("PUT", "/p/t/s/u?op=setowner&group=staff", "hdfs")).status == 200
    reply = await backend.call("DELETE", "/p/t?op=delete&recursive=true")
    assert (reply.status, reply.json()) == (200, {"delete": True})
    assert not (backend.root / "p/t").exists()


@pytest.mark.parametrize("recursive", ["false", "true"])
async def test_deleting_an_empty_directory_needs_only_write_on_its_parent(backend: Backend, recursive: str) -> None:
    # No ALL on an empty directory, as HDFS: there is no subtree to check.
    await mkdir(backend, "/w", "701")  # bob: --x
    await mkdir(backend, "/w/e", "000")
    target = f"/w/e?op=delete&recursive={recursive}"
    await refused(backend, "bob", "DELETE", target, denied("bob", "WRITE", "/w"))
    # the twin: -wx on the parent and nothing at all on the directory
    assert (await backend.call("PUT", "/w?op=setpermission&permission=703", "hdfs")).status == 200
    reply = await backend.call("DELETE", target)
    assert (reply.status, reply.json()) == (200, {"delete": True})
    assert not (backend.root / "w/e").exists()


# -- list: READ_EXECUTE on the directory ------------------------------------------------


@pytest.mark.parametrize("perm", ["754", "751"], ids=["no-execute", "no-read"])
async def test_list_needs_read_and_execute(backend: Backend, perm: str) -> None:
    await mkdir(backend, "/l", perm)
    await put(backend, "/l/a", "644")
    await refused(backend, "bob", "GET", "/l?op=list", denied("bob", "READ_EXECUTE", "/l"))
    # the twin
    assert (await backend.call("PUT", "/l?op=setpermission&permission=755", "hdfs")).status == 200
    reply = await backend.call("GET", "/l?op=list")
    assert reply.status == 200
    assert [e["path"] for e in reply.json()] == [f"{backend.base}/l/a"]


# -- settimes: the owner, or WRITE ------------------------------------------------------


async def test_settimes_needs_ownership_or_write(backend: Backend) -> None:
    await mkdir(backend, "/d", "777")
    await put(backend, "/d/mine", "444", owner="bob")  # the owner, without WRITE
    await put(backend, "/d/writable", "646")  # WRITE, not the owner
    await put(backend, "/d/theirs", "644")  # neither
    await refused(backend, "bob", "PUT", f"/d/theirs?op=settimes&{TIMES}", denied("bob", "WRITE", "/d/theirs"))
    # the twins
    for path in ("/d/mine", "/d/writable"):
        reply = await backend.call("PUT", f"{path}?op=settimes&{TIMES}")
        assert (reply.status, reply.body) == (200, b""), path
        st = await status(backend, path)
        assert (st["modificationTime"], st["accessTime"]) == (1310671662423, 1310671662000), path


async def test_setreplication_needs_ownership_or_write(backend: Backend) -> None:
    await mkdir(backend, "/d", "777")
    await put(backend, "/d/mine", "444", owner="bob")
    await put(backend, "/d/writable", "646")
    await put(backend, "/d/theirs", "644")
    message = denied("bob", "WRITE", "/d/theirs")
    await refused(backend, "bob", "PUT", "/d/theirs?op=setreplication&replication=2", message)
    # the twins
    for path in ("/d/mine", "/d/writable"):
        reply = await backend.call("PUT", f"{path}?op=setreplication&replication=2")
        assert (reply.status, reply.json()) == (200, {"setReplication": True}), path
        assert (await status(backend, path))["replication"] == 2, path


# -- setowner: only a superuser changes an owner ------------------------------------------


async def test_an_owner_cannot_give_its_file_away(backend: Backend) -> None:
    await create(backend, "/user/bob/f")
    message = "Permission denied: Non-super user cannot change owner."
    await refused(backend, "bob", "PUT", "/user/bob/f?op=setowner&owner=alice", message)
    # the twin: naming itself as the owner is no change of owner
    assert (await backend.call("PUT", "/user/bob/f?op=setowner&owner=bob&group=staff")).status == 200
    st = await status(backend, "/user/bob/f")
    assert (st["owner"], st["group"]) == ("bob", "staff")


# -- groups come from embedded.groups only -------------------------------------------------


async def test_a_user_named_like_the_supergroup_is_no_superuser(stock: Backend) -> None:
    await create(stock, "/user/bob/secret", b"s", query="&permission=700")
    not_owner = "Permission denied: user=supergroup is not the owner of inode=/user/bob/secret"
    for method, target, message in [
        ("GET", "/user/bob/secret", denied("supergroup", "READ", "/user/bob/secret")),
        ("PUT", "/user/bob/secret?op=setowner&owner=supergroup", not_owner),
        ("PUT", "/user/bob/secret?op=setpermission&permission=777", not_owner),
        ("DELETE", "/user/bob/secret?op=delete", denied("supergroup", "WRITE", "/user/bob")),
    ]:
        await refused(stock, "supergroup", method, target, message)
    # the twin: a configured member of the supergroup
    assert (await stock.call("GET", "/user/bob/secret", "root2")).body == b"s"
    assert (await stock.call("PUT", "/user/bob/secret?op=setowner&owner=root2", "root2")).status == 200
    assert (await status(stock, "/user/bob/secret", "root2"))["owner"] == "root2"


async def test_a_user_named_like_a_group_gets_none_of_its_bits(backend: Backend) -> None:
    await create(backend, "/user/bob/shared", b"s", query="&permission=640")
    await backend.call("POST", "/user/bob/team?op=mkdirs&permission=770")
    for path in ("/user/bob/shared", "/user/bob/team"):
        assert (await backend.call("PUT", f"{path}?op=setowner&group=staff")).status == 200
    await refused(backend, "staff", "GET", "/user/bob/shared", denied("staff", "READ", "/user/bob/shared"))
    message = denied("staff", "EXECUTE", "/user/bob/team")
    await refused(backend, "staff", "POST", "/user/bob/team/x?op=create", message, data=b"x")
    # the twin: a configured member of staff
    assert (await backend.call("GET", "/user/bob/shared", "alice")).body == b"s"
    await create(backend, "/user/bob/team/x", b"x", user="alice")


async def test_an_owner_cannot_change_the_group_to_its_own_name(backend: Backend) -> None:
    await create(backend, "/user/bob/f")
    message = "Permission denied: user=bob does not belong to bob"
    await refused(backend, "bob", "PUT", "/user/bob/f?op=setowner&group=bob", message)
    # the twin: a group bob is configured into
    assert (await backend.call("PUT", "/user/bob/f?op=setowner&group=staff")).status == 200
    assert (await status(backend, "/user/bob/f"))["group"] == "staff"


# -- inodes nobody recorded (put on the host by hand): the superuser's, 755 / 644 ----------


async def test_a_hand_made_tree_can_be_traversed_listed_and_read_by_others(backend: Backend) -> None:
    await mkdir(backend, "/d", "777")
    by_hand(backend, "/d/hand/sub/f", b"by hand")
    by_hand(backend, "/d/hand/g", b"g")
    # bob is "other" on all of them: r-x on the directories, r-- on the files
    reply = await backend.call("GET", "/d/hand/sub/f")
    assert (reply.status, reply.body) == (200, b"by hand")
    reply = await backend.call("GET", "/d/hand?op=list")
    assert reply.status == 200
    assert [e["path"] for e in reply.json()] == [f"{backend.base}/d/hand/g", f"{backend.base}/d/hand/sub"]


async def test_a_hand_made_tree_refuses_others_writing(backend: Backend) -> None:
    await mkdir(backend, "/d", "777")
    by_hand(backend, "/d/hand/sub/f", b"by hand")
    for method, target, inode in [
        ("POST", "/d/hand/new?op=create", "/d/hand"),
        ("POST", "/d/hand/sub/f?op=create", "/d/hand/sub/f"),
        ("PUT", "/d/hand/sub/f?op=append", "/d/hand/sub/f"),
        ("POST", "/d/hand/sub/x?op=mkdirs", "/d/hand/sub"),
        ("DELETE", "/d/hand/sub/f?op=delete", "/d/hand/sub"),
    ]:
        await refused(backend, "bob", method, target, denied("bob", "WRITE", inode), data=b"new")
    # the twin: the same directory once the superuser grants WRITE on it
    assert (await backend.call("PUT", "/d/hand?op=setpermission&permission=757", "hdfs")).status == 200
    await create(backend, "/d/hand/new", b"new")
    assert (backend.root / "d/hand/new").read_bytes() == b"new"


async def test_recursive_delete_over_a_hand_made_directory_is_for_superusers(backend: Backend) -> None:
    await mkdir(backend, "/p", "777")
    await mkdir(backend, "/p/t", "777")  # ALL for bob on the top ...
    by_hand(backend, "/p/t/h/f", b"f")  # ... but not on what is below it
    by_hand(backend, "/p/h/f", b"f")  # nor on a top put there by hand
    await refused(backend, "bob", "DELETE", "/p/t?op=delete&recursive=true", denied("bob", "ALL", "/p/t/h"))
    await refused(backend, "bob", "DELETE", "/p/h?op=delete&recursive=true", denied("bob", "ALL", "/p/h"))
    # the twin: the superuser
    for path in ("/p/t", "/p/h"):
        reply = await backend.call("DELETE", f"{path}?op=delete&recursive=true", "hdfs")
        assert (reply.status, reply.json()) == (200, {"delete": True}), path
    assert os.listdir(backend.root / "p") == []
