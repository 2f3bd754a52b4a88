"""The embedded backend on a real loopback socket, with a real IdentitySigner.

The server and the client helpers are in :mod:`tests.integration.embedded`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from yarl import URL

from gateway.identity import SIGNATURE_HEADER, IdentitySigner
from tests.integration.embedded import (
    STATUS_KEYS,
    USER_HEADER,
    Backend,
    backend,  # noqa: F401  (the fixture)
    create,
    status,
    wait_until,
)


# -- identity ------------------------------------------------------------------


async def test_unsigned_requests_are_refused(backend: Backend) -> None:
    for headers in ({}, {USER_HEADER: "bob"}, {USER_HEADER: "bob", SIGNATURE_HEADER: "1:00"}):
        reply = await backend.call("GET", "/?op=homedir&user.name=bob", user=None, headers=headers)
        reply.failure(401, "AuthenticationException")


@pytest.mark.parametrize(
    ("signed_for", "sent"),
    [
        (("alice", "GET", "/?op=homedir"), ("bob", "GET", "/?op=homedir")),
        (("bob", "GET", "/?op=homedir"), ("bob", "GET", "/?op=homedir&x=1")),
        (("bob", "GET", "/a?op=status"), ("bob", "GET", "/b?op=status")),
        (("bob", "GET", "/a?op=delete"), ("bob", "DELETE", "/a?op=delete")),
    ],
)
async def test_signature_for_another_request_is_refused(
    backend: Backend, signed_for: tuple[str, str, str], sent: tuple[str, str, str]
) -> None:
    user, method, target = signed_for
    headers = {USER_HEADER: sent[0], SIGNATURE_HEADER: backend.signer.sign(user, method, target)}
    reply = await backend.call(sent[1], sent[2], user=None, headers=headers)
    reply.failure(401, "AuthenticationException")


async def test_signature_from_another_key_is_refused(backend: Backend) -> None:
    other = IdentitySigner(b"x" * 48)
    headers = {USER_HEADER: "bob", SIGNATURE_HEADER: other.sign("bob", "GET", "/?op=homedir")}
    reply = await backend.call("GET", "/?op=homedir", user=None, headers=headers)
    reply.failure(401, "AuthenticationException")


async def test_expired_signature_is_refused(backend: Backend) -> None:
    stale = backend.signer.sign("bob", "GET", "/?op=homedir", now=time.time() - 3600)
    reply = await backend.call("GET", "/?op=homedir", user=None, headers={USER_HEADER: "bob", SIGNATURE_HEADER: stale})
    reply.failure(401, "AuthenticationException")


async def test_user_name_parameter_is_ignored(backend: Backend) -> None:
    reply = await backend.call("GET", "/?op=homedir&user.name=hdfs", "bob")
    assert reply.json() == {"homeDir": f"{backend.base}/user/bob"}


# -- the seed's operations ------------------------------------------------------------------


async def test_homedir_uses_forwarded_host(backend: Backend) -> None:
    reply = await backend.call(
        "GET", "/?op=homedir", "babu", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "gw.example:14000"}
    )
    assert reply.status == 200
    assert reply.json() == {"homeDir": "https://gw.example:14000/user/babu"}


async def test_create_and_read(backend: Backend) -> None:
    body = b"Hello, Hoop!\n" * 100
    reply = await create(backend, "/user/bob/data.txt", body)
    assert reply.headers["Location"] == f"{backend.base}/user/bob/data.txt"
    assert reply.headers["Content-Type"].split(";")[0] == "application/json"
    assert reply.headers["Content-Length"] == "0"
    assert reply.body == b""
    assert (backend.root / "user/bob/data.txt").read_bytes() == body

    for target in ("/user/bob/data.txt", "/user/bob/data.txt?op=open", "/user/bob/data.txt?op=OPEN&offset=-1&len=-1"):
        reply = await backend.call("GET", target)
        assert reply.status == 200
        assert reply.body == body
        assert reply.headers["Content-Type"] == "application/octet-stream"
        assert reply.headers["Location"] == f"{backend.base}/user/bob/data.txt"
        # The seed shows chunked encoding; a Content-Length also tells the size up front.
        assert reply.headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize("size", [100, 200_000])  # below and above the one-write read
async def test_head_is_get_without_the_body(backend: Backend, size: int) -> None:
    await create(backend, "/user/bob/h.bin", b"h" * size)
    reply = await backend.call("HEAD", "/user/bob/h.bin")
    assert reply.status == 200 and reply.body == b""
    assert reply.headers["Content-Length"] == str(size)
    assert reply.headers["Content-Type"] == "application/octet-stream"
    reply = await backend.call("HEAD", "/user/bob/h.bin?op=status")
    assert reply.status == 200 and reply.body == b""
    reply = await backend.call("HEAD", "/user/bob/missing")
    assert reply.status == 404


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("offset=7&len=5", b"Hoop!"),
        ("offset=7", b"Hoop!\n"),
        ("len=5", b"Hello"),
        ("offset=13", b""),
        ("offset=0&len=100", b"Hello, Hoop!\n"),
        ("offset=12&len=0", b""),
    ],
)
async def test_read_offset_and_len(backend: Backend, query: str, expected: bytes) -> None:
    await create(backend, "/user/bob/f", b"Hello, Hoop!\n")
    reply = await backend.call("GET", f"/user/bob/f?{query}")
    assert (reply.status, reply.body) == (200, expected)


async def test_create_defaults_and_parameters(backend: Backend) -> None:
    await create(backend, "/user/bob/plain")
    st = await status(backend, "/user/bob/plain")
    assert list(st) == STATUS_KEYS
    assert st["path"] == f"{backend.base}/user/bob/plain"
    assert (st["isDir"], st["len"], st["owner"], st["group"], st["permission"]) == (
        False, 4, "bob", "admins", "-rw-r--r--"
    )  # fmt: skip
    assert (st["blockSize"], st["replication"]) == (67108864, 3)
    assert abs(st["modificationTime"] - time.time() * 1000) < 60_000

    await create(backend, "/user/bob/tuned", query="&replication=2&blocksize=1048576&permission=-rw-------")
    st = await status(backend, "/user/bob/tuned")
    assert (st["permission"], st["replication"], st["blockSize"]) == ("-rw-------", 2, 1048576)
    await create(backend, "/user/bob/octal", query="&permission=640")
    assert (await status(backend, "/user/bob/octal"))["permission"] == "-rw-r-----"


async def test_create_overwrite(backend: Backend) -> None:
    await create(backend, "/user/bob/f", b"old")
    reply = await backend.call("POST", "/user/bob/f?op=create&overwrite=false", data=b"new")
    assert "already exists" in reply.failure(409, "FileAlreadyExistsException")
    assert (backend.root / "user/bob/f").read_bytes() == b"old"
    await create(backend, "/user/bob/f", b"newer")  # overwrite defaults to true
    assert (backend.root / "user/bob/f").read_bytes() == b"newer"
    await create(backend, "/user/bob/f", b"newest", query="&overwrite=true")
    assert (backend.root / "user/bob/f").read_bytes() == b"newest"
    reply = await backend.call("POST", "/user/bob?op=create", data=b"x")
    reply.failure(409, "FileAlreadyExistsException")
    assert backend.temp_files() == []


async def test_create_makes_parents_and_refuses_file_parents(backend: Backend) -> None:
    await create(backend, "/user/bob/a/b/c.txt", b"deep")
    assert (await status(backend, "/user/bob/a/b"))["isDir"] is True
    reply = await backend.call("POST", "/user/bob/a/b/c.txt/d?op=create", data=b"x")
    reply.failure(409, "ParentNotDirectoryException")


async def test_append(backend: Backend) -> None:
    await create(backend, "/user/bob/log", b"one\n")
    reply = await backend.call("PUT", "/user/bob/log?op=append", data=b"two\n")
    assert reply.status == 200
    assert reply.headers["Location"] == f"{backend.base}/user/bob/log"
    assert reply.headers["Content-Type"].split(";")[0] == "application/json"
    assert reply.headers["Content-Length"] == "0"
    assert (backend.root / "user/bob/log").read_bytes() == b"one\ntwo\n"
    (await backend.call("PUT", "/user/bob/missing?op=append", data=b"x")).failure(404, "FileNotFoundException")
    (await backend.call("PUT", "/user/bob?op=append", data=b"x")).failure(404, "FileNotFoundException")


async def test_rename(backend: Backend) -> None:
    await create(backend, "/user/bob/a", b"A")
    reply = await backend.call("PUT", "/user/bob/a?op=rename&to=/user/bob/b")
    assert (reply.status, reply.json()) == (200, {"rename": True})
    assert (backend.root / "user/bob/b").read_bytes() == b"A"
    # into an existing directory: moves below it, metadata follows
    await backend.call("POST", "/user/bob/dir?op=mkdirs")
    await backend.call("PUT", "/user/bob/b?op=setreplication&replication=5")
    assert (await backend.call("PUT", "/user/bob/b?op=rename&to=/user/bob/dir")).json() == {"rename": True}
    st = await status(backend, "/user/bob/dir/b")
    assert (st["replication"], st["owner"]) == (5, "bob")
    # onto an existing file, into a missing parent, into itself: false, nothing moves
    await create(backend, "/user/bob/c", b"C")
    for to in ("/user/bob/c", "/user/bob/nope/x", "/user/bob/dir/sub"):
        source = "/user/bob/dir/b" if to == "/user/bob/c" else "/user/bob/dir"
        reply = await backend.call("PUT", f"{source}?op=rename&to={to}")
        assert (reply.status, reply.json()) == (200, {"rename": False}), to
    assert (backend.root / "user/bob/c").read_bytes() == b"C"
    (await backend.call("PUT", "/user/bob/zzz?op=rename&to=/user/bob/y")).failure(404, "FileNotFoundException")
    (await backend.call("PUT", "/user/bob/c?op=rename")).failure(400, "IllegalArgumentException")
    (await backend.call("PUT", "/user/bob/c?op=rename&to=/.authgateway/x")).failure(403, "AccessControlException")


async def test_delete(backend: Backend) -> None:
    await create(backend, "/user/bob/d/e/f", b"x")
    reply = await backend.call("DELETE", "/user/bob/d?op=delete&recursive=false")
    reply.failure(409, "PathIsNotEmptyDirectoryException")
    assert (backend.root / "user/bob/d/e/f").exists()
    reply = await backend.call("DELETE", "/user/bob/d?op=delete&recursive=true")
    assert (reply.status, reply.json()) == (200, {"delete": True})
    assert not (backend.root / "user/bob/d").exists()
    assert os.listdir(backend.root / ".authgateway" / "trash") == []
    await create(backend, "/user/bob/d/e/f", b"y")
    assert (await status(backend, "/user/bob/d/e/f"))["len"] == 1
    reply = await backend.call("DELETE", "/user/bob/d?op=delete")  # recursive defaults to true
    assert reply.json() == {"delete": True}
    (await backend.call("DELETE", "/user/bob/d?op=delete")).failure(404, "FileNotFoundException")
    await create(backend, "/user/bob/g")
    assert (await backend.call("DELETE", "/user/bob/g?op=delete&recursive=false")).json() == {"delete": True}
    assert (await backend.call("DELETE", "/?op=delete", "hdfs")).json() == {"delete": False}


async def test_list(backend: Backend) -> None:
    for name in ("b.txt", "a.txt", "c.csv", "part-1"):
        await create(backend, f"/user/bob/dir/{name}", name.encode())
    await backend.call("POST", "/user/bob/dir/sub?op=mkdirs")
    reply = await backend.call("GET", "/user/bob/dir?op=list")
    assert reply.status == 200
    entries = reply.json()
    assert [e["path"] for e in entries] == [
        f"{backend.base}/user/bob/dir/{n}" for n in ("a.txt", "b.txt", "c.csv", "part-1", "sub")
    ]
    assert all(list(e) == STATUS_KEYS for e in entries)
    assert entries[0]["len"] == 5 and entries[-1]["isDir"] is True and entries[-1]["permission"] == "drwxr-xr-x"
    for pattern, names in [
        ("*.txt", ["a.txt", "b.txt"]),
        ("%7Ba,c%7D.*", ["a.txt", "c.csv"]),
        ("[ab].txt", ["a.txt", "b.txt"]),
        ("[^a]*", ["b.txt", "c.csv", "part-1", "sub"]),
        ("?.csv", ["c.csv"]),
        ("nothing", []),
    ]:
        reply = await backend.call("GET", f"/user/bob/dir?op=list&filter={pattern}")
        assert [e["path"].rsplit("/", 1)[1] for e in reply.json()] == names, pattern
    # listing a file lists that file
    reply = await backend.call("GET", "/user/bob/dir/a.txt?op=list")
    assert [e["path"] for e in reply.json()] == [f"{backend.base}/user/bob/dir/a.txt"]
    (await backend.call("GET", "/user/bob/dir?op=list&filter=[ab")).failure(400, "IllegalArgumentException")
    (await backend.call("GET", "/user/bob/nope?op=list")).failure(404, "FileNotFoundException")


async def test_root_listing_hides_the_reserved_directory(backend: Backend) -> None:
    reply = await backend.call("GET", "/?op=list", "hdfs")
    assert [e["path"] for e in reply.json()] == [f"{backend.base}/user"]
    for target in ("/.authgateway?op=status", "/.authgateway/meta.sqlite3", "/.authgateway/tmp?op=list"):
        (await backend.call("GET", target, "hdfs")).failure(403, "AccessControlException")
    reply = await backend.call("DELETE", "/.authgateway?op=delete", "hdfs")
    reply.failure(403, "AccessControlException")
    assert (backend.root / ".authgateway" / "meta.sqlite3").exists()


async def test_mkdirs_and_status(backend: Backend) -> None:
    reply = await backend.call("POST", "/user/bob/x/y?op=mkdirs&permission=-rwxr-x---")
    assert (reply.status, reply.json()) == (200, {"mkdirs": True})
    st = await status(backend, "/user/bob/x/y")
    assert (st["isDir"], st["len"], st["permission"], st["owner"], st["blockSize"], st["replication"]) == (
        True, 0, "drwxr-x---", "bob", 0, 0
    )  # fmt: skip
    assert (await status(backend, "/user/bob/x"))["permission"] == "drwxr-xr-x"
    assert (await backend.call("POST", "/user/bob/x/y?op=mkdirs")).json() == {"mkdirs": True}  # idempotent
    await create(backend, "/user/bob/file")
    (await backend.call("POST", "/user/bob/file?op=mkdirs")).failure(409, "FileAlreadyExistsException")
    (await backend.call("GET", "/user/bob/none?op=status")).failure(404, "FileNotFoundException")
    root = await status(backend, "/")
    assert (root["owner"], root["group"], root["permission"]) == ("hdfs", "admins", "drwxr-xr-x")
    user = await status(backend, "/user")
    assert (user["owner"], user["permission"]) == ("hdfs", "drwxr-xr-x")


async def test_home_is_created_for_its_owner_only(backend: Backend) -> None:
    await backend.call("POST", "/user/carol/sub?op=mkdirs", "carol")
    home = await status(backend, "/user/carol", "carol")
    assert (home["owner"], home["group"], home["permission"]) == ("carol", "admins", "drwxr-xr-x")
    # bob cannot create carol's (or dave's) home
    (await backend.call("POST", "/user/dave?op=mkdirs", "bob")).failure(403, "AccessControlException")
    (await backend.call("POST", "/user/carol/x?op=create", "bob", data=b"x")).failure(403, "AccessControlException")


async def test_setowner(backend: Backend) -> None:
    await create(backend, "/user/bob/f")
    reply = await backend.call("PUT", "/user/bob/f?op=setowner&owner=alice&group=staff")
    message = reply.failure(403, "AccessControlException")
    assert "Non-super user cannot change owner" in message
    # the owner may change the group to one of its own groups
    reply = await backend.call("PUT", "/user/bob/f?op=setowner&group=staff")
    assert (reply.status, reply.body) == (200, b"")
    assert reply.headers["Content-Type"].split(";")[0] == "application/json"
    (await backend.call("PUT", "/user/bob/f?op=setowner&group=admins")).failure(403, "AccessControlException")
    # the superuser (or a supergroup member) may change both; omitted values are kept
    assert (await backend.call("PUT", "/user/bob/f?op=setowner&owner=alice", "hdfs")).status == 200
    st = await status(backend, "/user/bob/f")
    assert (st["owner"], st["group"]) == ("alice", "staff")
    assert (await backend.call("PUT", "/user/bob/f?op=setowner&group=other", "root2")).status == 200
    st = await status(backend, "/user/bob/f")
    assert (st["owner"], st["group"]) == ("alice", "other")
    # bob is no longer the owner
    (await backend.call("PUT", "/user/bob/f?op=setowner&group=staff")).failure(403, "AccessControlException")


async def test_setpermission_settimes_setreplication(backend: Backend) -> None:
    await create(backend, "/user/bob/f")
    for value, shown in (("-rw-------", "-rw-------"), ("755", "-rwxr-xr-x"), ("default", "-rw-r--r--")):
        reply = await backend.call("PUT", f"/user/bob/f?op=setpermission&permission={value}")
        assert (reply.status, reply.body) == (200, b"")
        assert (await status(backend, "/user/bob/f"))["permission"] == shown
    (await backend.call("PUT", "/user/bob/f?op=setpermission&permission=999")).failure(400, "IllegalArgumentException")
    (await backend.call("PUT", "/user/bob/f?op=setpermission&permission=700", "alice")).failure(
        403, "AccessControlException"
    )

    reply = await backend.call("PUT", "/user/bob/f?op=settimes&mtime=1310671662423&atime=1310671662000")
    assert (reply.status, reply.body) == (200, b"")
    st = await status(backend, "/user/bob/f")
    assert (st["modificationTime"], st["accessTime"]) == (1310671662423, 1310671662000)
    await backend.call("PUT", "/user/bob/f?op=settimes&mtime=1400000000000")
    st = await status(backend, "/user/bob/f")
    assert (st["modificationTime"], st["accessTime"]) == (1400000000000, 1310671662000)
    await backend.call("PUT", "/user/bob/f?op=settimes&mtime=-1&atime=1400000000001")
    st = await status(backend, "/user/bob/f")
    assert (st["modificationTime"], st["accessTime"]) == (1400000000000, 1400000000001)
    (await backend.call("PUT", "/user/bob/f?op=settimes&mtime=yesterday")).failure(400, "IllegalArgumentException")

    reply = await backend.call("PUT", "/user/bob/f?op=setreplication&replication=2")
    assert (reply.status, reply.json()) == (200, {"setReplication": True})
    assert (await status(backend, "/user/bob/f"))["replication"] == 2
    assert (await backend.call("PUT", "/user/bob/f?op=setreplication")).json() == {"setReplication": True}
    assert (await status(backend, "/user/bob/f"))["replication"] == 3
    assert (await backend.call("PUT", "/user/bob?op=setreplication&replication=2")).json() == {"setReplication": False}
    (await backend.call("PUT", "/user/bob/f?op=setreplication&replication=0")).failure(400, "IllegalArgumentException")


# -- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/x?op=nosuchop"),
        ("GET", "/x?op=create"),  # right op, wrong method
        ("POST", "/x"),  # no op on POST
        ("PUT", "/x?op=mkdirs"),
        ("GET", "/x?offset=abc"),
        ("GET", "/x?len=-2"),
        ("POST", "/x?op=create&overwrite=maybe"),
        ("POST", "/x?op=create&replication=70000"),
        ("POST", "/x?op=create&blocksize=0"),
        ("POST", "/x?op=mkdirs&permission=rwx"),
        ("DELETE", "/x?op=delete&recursive=yes"),
        ("GET", "/a/../b?op=status"),
        ("GET", "/a/%2e%2e/b?op=status"),
        ("GET", "/a/%2E%2E?op=status"),
        ("GET", "/a%00b?op=status"),
        ("GET", "/%ff?op=status"),
        ("PUT", "/user/bob/x?op=rename&to=relative"),
        ("PUT", "/user/bob/x?op=rename&to=/a/../b"),
        ("GET", "/user/" + "n" * 300 + "?op=status"),
        ("POST", "/user/bob/" + "n" * 300 + "?op=create"),
        ("POST", "/user/bob/" + "n" * 300 + "/x?op=mkdirs"),
    ],
)
async def test_bad_input_is_400(backend: Backend, method: str, target: str) -> None:
    data = b"x" if method in ("POST", "PUT") else None
    (await backend.call(method, target, data=data)).failure(400, "IllegalArgumentException")


async def test_op_values_are_case_insensitive_but_names_are_not(backend: Backend) -> None:
    assert (await backend.call("GET", "/?op=HomeDir")).status == 200
    assert (await backend.call("GET", "/user?op=STATUS")).json()["isDir"] is True
    # "OP" is not "op": this is a plain read of a directory
    message = (await backend.call("GET", "/user?OP=status")).failure(404, "FileNotFoundException")
    assert message == "Path is not a file: /user"


async def test_other_methods_are_405(backend: Backend) -> None:
    (await backend.call("PATCH", "/x?op=status")).failure(405, "UnsupportedOperationException")


async def test_double_slashes_collapse(backend: Backend) -> None:
    await create(backend, "//user//bob///f", b"alluxio")
    assert (backend.root / "user/bob/f").read_bytes() == b"alluxio"
    reply = await backend.call("GET", "//user/bob//f?op=status")
    assert reply.json()["path"] == f"{backend.base}/user/bob/f"


async def test_percent_encoded_names(backend: Backend) -> None:
    await create(backend, "/user/bob/a%20b%C3%A9", b"x")
    assert (backend.root / "user/bob/a bé").read_bytes() == b"x"
    reply = await backend.call("GET", "/user/bob?op=list")
    assert [e["path"] for e in reply.json()] == [f"{backend.base}/user/bob/a bé"]


async def test_symlinks_are_never_followed(backend: Backend, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"TOP-SECRET-CONTENT")
    await backend.call("POST", "/user/bob?op=mkdirs")
    (backend.root / "user/bob/out").symlink_to(outside)
    (backend.root / "user/bob/link").symlink_to(outside / "secret")
    for target in ("/user/bob/out/secret", "/user/bob/link", "/user/bob/out?op=status", "/user/bob/out?op=list"):
        reply = await backend.call("GET", target, "hdfs")
        reply.failure(404, "FileNotFoundException")
        assert b"TOP-SECRET" not in reply.body and str(tmp_path).encode() not in reply.body
    # Creating below the link would make its missing parent /user/bob/out, whose
    # name the hidden link holds: a conflict, and nothing is written through it.
    reply = await backend.call("POST", "/user/bob/out/planted?op=create", "hdfs", data=b"x")
    assert reply.failure(409, "FileAlreadyExistsException") == "Path already exists: /user/bob/out"
    assert backend.temp_files() == []
    assert os.listdir(outside) == ["secret"]
    assert (await backend.call("GET", "/user/bob?op=list")).json() == []


# -- permissions ------------------------------------------------------------------


async def test_permissions_are_enforced(backend: Backend) -> None:
    await create(backend, "/user/bob/private", b"p", query="&permission=600")
    await create(backend, "/user/bob/shared", b"s", query="&permission=640")
    await create(backend, "/user/bob/public", b"o")
    # owner
    assert (await backend.call("GET", "/user/bob/private")).body == b"p"
    # group (alice is in staff with bob, but the file's group is supergroup): change it first
    await backend.call("PUT", "/user/bob/shared?op=setowner&group=staff")
    assert (await backend.call("GET", "/user/bob/shared", "alice")).body == b"s"
    assert (await backend.call("GET", "/user/bob/shared", "dave")).status == 403
    # other
    message = (await backend.call("GET", "/user/bob/private", "alice")).failure(403, "AccessControlException")
    assert message == "Permission denied: user=alice, access=READ, inode=/user/bob/private"
    assert (await backend.call("GET", "/user/bob/public", "dave")).body == b"o"
    # writing needs WRITE on the parent (bob's home is 755)
    reply = await backend.call("POST", "/user/bob/intruder?op=create", "alice", data=b"x")
    assert "access=WRITE, inode=/user/bob" in reply.failure(403, "AccessControlException")
    (await backend.call("DELETE", "/user/bob/public?op=delete", "alice")).failure(403, "AccessControlException")
    (await backend.call("PUT", "/user/bob/public?op=append", "alice", data=b"x")).failure(403, "AccessControlException")
    # traversal needs EXECUTE on every ancestor
    await backend.call("PUT", "/user/bob?op=setpermission&permission=700")
    reply = await backend.call("GET", "/user/bob/public?op=status", "alice")
    assert "access=EXECUTE, inode=/user/bob" in reply.failure(403, "AccessControlException")
    # a missing path below a directory one cannot traverse is still 403, not a 404 that leaks
    (await backend.call("GET", "/user/bob/nothing?op=status", "alice")).failure(403, "AccessControlException")
    # superuser and supergroup bypass
    assert (await backend.call("GET", "/user/bob/private", "hdfs")).body == b"p"
    assert (await backend.call("GET", "/user/bob/private", "root2")).body == b"p"


async def test_recursive_delete_needs_all_below(backend: Backend) -> None:
    await backend.call("POST", "/tmp?op=mkdirs&permission=777", "hdfs")
    await backend.call("POST", "/tmp/bobs/locked?op=mkdirs", "bob")
    await create(backend, "/tmp/bobs/locked/f")
    await backend.call("POST", "/tmp/bobs/alices?op=mkdirs&permission=777", "bob")
    await create(backend, "/tmp/bobs/alices/x", user="alice")
    await backend.call("PUT", "/tmp/bobs/alices?op=setowner&owner=alice", "hdfs")
    await backend.call("PUT", "/tmp/bobs/alices?op=setpermission&permission=755", "alice")
    reply = await backend.call("DELETE", "/tmp/bobs?op=delete&recursive=true")
    assert "access=ALL, inode=/tmp/bobs/alices" in reply.failure(403, "AccessControlException")
    assert (backend.root / "tmp/bobs/alices/x").exists()
    assert (await backend.call("DELETE", "/tmp/bobs?op=delete&recursive=true", "hdfs")).json() == {"delete": True}


async def test_sticky_directory(backend: Backend) -> None:
    await backend.call("POST", "/tmp?op=mkdirs&permission=1777", "hdfs")
    assert (await status(backend, "/tmp"))["permission"] == "drwxrwxrwt"
    await create(backend, "/tmp/bobs", user="bob")
    reply = await backend.call("DELETE", "/tmp/bobs?op=delete", "alice")
    assert "sticky bit" in reply.failure(403, "AccessControlException")
    reply = await backend.call("PUT", "/tmp/bobs?op=rename&to=/tmp/alices", "alice")
    reply.failure(403, "AccessControlException")
    assert (await backend.call("DELETE", "/tmp/bobs?op=delete", "bob")).json() == {"delete": True}


# -- persistence ------------------------------------------------------------------


async def test_metadata_survives_a_restart(backend: Backend) -> None:
    await create(backend, "/user/bob/keep", b"k", query="&permission=640&replication=2&blocksize=2097152")
    await backend.call("PUT", "/user/bob/keep?op=setowner&owner=alice&group=staff", "hdfs")
    await backend.call("POST", "/user/bob/d/e?op=mkdirs&permission=700")
    await backend.call("PUT", "/user/bob/d?op=rename&to=/user/bob/moved")
    before = [await status(backend, p, "hdfs") for p in ("/user/bob/keep", "/user/bob/moved/e", "/", "/user/bob")]
    await backend.stop()
    await backend.start()
    after = [await status(backend, p, "hdfs") for p in ("/user/bob/keep", "/user/bob/moved/e", "/", "/user/bob")]
    assert after == before
    assert (before[0]["owner"], before[0]["group"], before[0]["permission"], before[0]["replication"]) == (
        "alice", "staff", "-rw-r-----", 2
    )  # fmt: skip
    assert before[1]["permission"] == "drwx------"
    # a deleted path's metadata is gone: a new file there starts afresh
    await backend.call("DELETE", "/user/bob/keep?op=delete", "hdfs")
    await create(backend, "/user/bob/keep", b"new")
    st = await status(backend, "/user/bob/keep")
    assert (st["owner"], st["group"], st["permission"], st["replication"]) == ("bob", "admins", "-rw-r--r--", 3)


# -- uploads that do not complete ------------------------------------------------------------------


async def _raw_request(b: Backend, head: str, body: bytes, *, started: Callable[[], bool]) -> None:
    """Send a request head and part of a body on a raw socket, then hang up.

    ``started()`` must become true (the server is writing) before we hang up.
    """
    _reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
    writer.write(head.encode("latin-1") + body)
    await writer.drain()
    await wait_until(started, "the server is writing the upload")
    writer.close()
    await writer.wait_closed()


def _head(b: Backend, method: str, target: str, extra: str) -> str:
    sig = b.signer.sign("bob", method, target)
    return (
        f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{b.port}\r\n{USER_HEADER}: bob\r\n"
        f"{SIGNATURE_HEADER}: {sig}\r\nContent-Type: application/octet-stream\r\n{extra}\r\n"
    )


@pytest.mark.parametrize(
    "framing",
    ["content-length", "chunked"],
)
async def test_interrupted_create_leaves_nothing(backend: Backend, framing: str) -> None:
    await create(backend, "/user/bob/existing", b"precious")
    for path in ("/user/bob/new", "/user/bob/existing"):
        target = f"{path}?op=create"
        if framing == "content-length":
            head = _head(backend, "POST", target, "Content-Length: 3000000\r\n")
            body = b"x" * 1_500_000
        else:
            head = _head(backend, "POST", target, "Transfer-Encoding: chunked\r\n")
            body = b"%x\r\n%s\r\n" % (1_500_000, b"x" * 1_500_000)  # no terminating chunk
        await _raw_request(backend, head, body, started=lambda: backend.temp_files() != [])
        await wait_until(lambda: backend.temp_files() == [], f"the temp file of {path} is removed")
    assert not (backend.root / "user/bob/new").exists()
    assert (backend.root / "user/bob/existing").read_bytes() == b"precious"
    assert (await backend.call("GET", "/user/bob?op=list")).json()[0]["len"] == 8


async def test_interrupted_append_is_rolled_back(backend: Backend) -> None:
    await create(backend, "/user/bob/log", b"line 1\n")
    head = _head(backend, "PUT", "/user/bob/log?op=append", "Content-Length: 3000000\r\n")
    log = backend.root / "user/bob/log"
    await _raw_request(backend, head, b"y" * 1_500_000, started=lambda: log.stat().st_size > 7)
    await wait_until(lambda: log.stat().st_size == 7, "the append is truncated back")
    assert (backend.root / "user/bob/log").read_bytes() == b"line 1\n"
    # and the file is usable afterwards
    await backend.call("PUT", "/user/bob/log?op=append", data=b"line 2\n")
    assert (backend.root / "user/bob/log").read_bytes() == b"line 1\nline 2\n"


async def test_refused_create_does_not_take_the_body(backend: Backend) -> None:
    reply = await backend.call("POST", "/user/alice/x?op=create", "bob", data=b"x" * 100_000)
    reply.failure(403, "AccessControlException")
    assert backend.temp_files() == []


async def test_leftover_temp_files_are_removed_at_start(backend: Backend) -> None:
    (backend.root / ".authgateway" / "tmp" / "stale").write_bytes(b"x")
    await backend.stop()
    await backend.start()
    assert backend.temp_files() == []


# -- big files ------------------------------------------------------------------


async def test_50_mib_round_trip(backend: Backend) -> None:
    size = 50 * 1024 * 1024
    block = os.urandom(1024 * 1024 + 7)  # not aligned with the server's chunks
    sent = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        left = size
        while left:
            piece = block[: min(len(block), left)]
            sent.update(piece)
            left -= len(piece)
            yield piece

    reply = await backend.call("POST", "/user/bob/big?op=create", data=body())
    assert reply.status == 201, reply.body
    assert (await status(backend, "/user/bob/big"))["len"] == size

    assert backend.session is not None
    target = "/user/bob/big"
    received = hashlib.sha256()
    total = 0
    async with backend.session.get(
        URL(backend.base + target, encoded=True), headers=backend.signed("GET", target, "bob")
    ) as response:
        assert response.status == 200
        async for chunk in response.content.iter_chunked(1 << 20):
            received.update(chunk)
            total += len(chunk)
    assert total == size
    assert received.hexdigest() == sent.hexdigest()

    # a slice from the middle
    target = f"/user/bob/big?offset={size // 2}&len=3000000"
    reply = await backend.call("GET", target)
    with open(backend.root / "user/bob/big", "rb") as fh:
        fh.seek(size // 2)
        assert reply.body == fh.read(3_000_000)



def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_abandoned_read_releases_the_file(backend: Backend) -> None:
    await create(backend, "/user/bob/big", io.BytesIO(os.urandom(8 * 1024 * 1024)))
    await create(backend, "/user/bob/small", b"x")
    await status(backend, "/user/bob/big")  # warm up the connection pool
    before = _open_fds()
    for _ in range(5):
        target = "/user/bob/big"
        reader, writer = await asyncio.open_connection("127.0.0.1", backend.port)
        sig = backend.signer.sign("bob", "GET", target)
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: x\r\n{USER_HEADER}: bob\r\n{SIGNATURE_HEADER}: {sig}\r\n\r\n".encode()
        )
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        await reader.read(65536)
        writer.close()
        await writer.wait_closed()
    await wait_until(lambda: _open_fds() <= before, "the abandoned reads close their files")
    reply = await backend.call("GET", "/user/bob/small")
    assert reply.body == b"x"


async def test_created_location_uses_forwarded_host(backend: Backend) -> None:
    reply = await backend.call(
        "POST", "/user/bob/f%20g?op=create", data=b"x",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "gw.example"},
    )  # fmt: skip
    assert reply.headers["Location"] == "https://gw.example/user/bob/f%20g"
    reply = await backend.call("GET", "/user/bob?op=list", headers={"X-Forwarded-Host": "gw.example"})
    assert reply.json()[0]["path"] == "http://gw.example/user/bob/f g"


async def test_creating_a_file_named_like_ones_home_does_not_make_the_home(backend: Backend) -> None:
    reply = await backend.call("POST", "/user/erin?op=create", "erin", data=b"x")
    assert "access=WRITE, inode=/user" in reply.failure(403, "AccessControlException")
    (await backend.call("GET", "/user/erin?op=status", "erin")).failure(404, "FileNotFoundException")
    assert (await backend.call("POST", "/user/erin?op=mkdirs", "erin")).json() == {"mkdirs": True}
    assert (await status(backend, "/user/erin", "erin"))["owner"] == "erin"


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


async def test_streaming_memory_is_bounded(backend: Backend) -> None:
    """Up and down 256 MiB in this process: the peak RSS must not grow with the size."""
    size = 256 * 1024 * 1024
    block = b"\xa5" * (1 << 20)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    before = _peak_rss()
    reply = await backend.call("POST", "/user/bob/huge?op=create", data=body())
    assert reply.status == 201, reply.body
    assert backend.session is not None
    target = "/user/bob/huge?offset=1"
    total = 0
    async with backend.session.get(
        URL(backend.base + target, encoded=True), headers=backend.signed("GET", target, "bob")
    ) as response:
        async for chunk in response.content.iter_chunked(1 << 20):
            total += len(chunk)
    assert total == size - 1
    assert _peak_rss() - before < 64 * 1024 * 1024
