"""The embedded backend's WebHDFS v1 face, on a real loopback socket.

Signed requests as :mod:`tests.integration.embedded` sends them, and
HdfsCLI (``hdfs.InsecureClient``'s code with a session that signs every
request the way the gateway does) run in a thread against the same server.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from typing import Any

import pytest
import requests
from hdfs import Client, HdfsError

from gateway.identity import SIGNATURE_HEADER
from tests.integration.embedded import (
    USER_HEADER,
    Backend,
    Reply,
    backend,  # noqa: F401  (the fixture)
    create,
    status,
)

W = "/webhdfs/v1"


def remote(reply: Reply, status_code: int, java_class: str) -> str:
    """Assert a WebHDFS RemoteException; return its message."""
    assert reply.status == status_code, (reply.status, reply.body[:300])
    doc = reply.json()
    assert set(doc) == {"RemoteException"}, doc
    exc = doc["RemoteException"]
    assert exc["javaClassName"] == java_class, exc
    assert exc["exception"] == java_class.rsplit(".", 1)[-1], exc
    assert "Traceback" not in exc["message"]
    return str(exc["message"])


# -- reading ------------------------------------------------------------------


async def test_getfilestatus_of_a_file_made_through_hoop(backend: Backend) -> None:
    await create(backend, "/user/bob/a.txt", b"hello", query="&permission=640")
    hoop = await status(backend, "/user/bob/a.txt")
    reply = await backend.call("GET", f"{W}/user/bob/a.txt?op=GETFILESTATUS")
    assert reply.status == 200
    doc = reply.json()["FileStatus"]
    assert doc["type"] == "FILE"
    assert (doc["length"], doc["owner"], doc["group"], doc["permission"]) == (5, "bob", hoop["group"], "640")
    assert doc["pathSuffix"] == ""
    assert (doc["modificationTime"], doc["replication"], doc["blockSize"]) == (
        hoop["modificationTime"], hoop["replication"], hoop["blockSize"]
    )


async def test_op_names_are_case_insensitive(backend: Backend) -> None:
    for op in ("getfilestatus", "GetFileStatus", "GETFILESTATUS"):
        reply = await backend.call("GET", f"{W}/user?op={op}")
        assert reply.status == 200, reply.body
        assert reply.json()["FileStatus"]["type"] == "DIRECTORY"


async def test_liststatus_of_a_directory_and_of_a_file(backend: Backend) -> None:
    await create(backend, "/user/bob/b", b"bb")
    await create(backend, "/user/bob/a", b"a")
    await backend.call("POST", "/user/bob/d?op=mkdirs")
    reply = await backend.call("GET", f"{W}/user/bob?op=LISTSTATUS")
    entries = reply.json()["FileStatuses"]["FileStatus"]
    assert [(e["pathSuffix"], e["type"], e["length"]) for e in entries] == [
        ("a", "FILE", 1), ("b", "FILE", 2), ("d", "DIRECTORY", 0)
    ]
    reply = await backend.call("GET", f"{W}/user/bob/a?op=LISTSTATUS")
    assert [e["pathSuffix"] for e in reply.json()["FileStatuses"]["FileStatus"]] == [""]


async def test_open_with_offset_and_length(backend: Backend) -> None:
    await create(backend, "/user/bob/f", b"0123456789")
    reply = await backend.call("GET", f"{W}/user/bob/f?op=OPEN")
    assert (reply.status, reply.body) == (200, b"0123456789")
    reply = await backend.call("GET", f"{W}/user/bob/f?op=open&offset=3&length=4")
    assert (reply.status, reply.body) == (200, b"3456")
    reply = await backend.call("GET", f"{W}/user/bob/f?op=OPEN&offset=11")
    remote(reply, 400, "java.lang.IllegalArgumentException")


async def test_open_with_noredirect_names_the_data_url(backend: Backend) -> None:
    await create(backend, "/user/bob/f", b"data")
    reply = await backend.call("GET", f"{W}/user/bob/f?op=OPEN&noredirect=true&offset=1&user.name=bob")
    location = reply.json()["Location"]
    assert location == f"{backend.base}{W}/user/bob/f?op=OPEN&offset=1&data=true"
    target = location.removeprefix(backend.base)
    assert (await backend.call("GET", target)).body == b"ata"


async def test_gethomedirectory(backend: Backend) -> None:
    reply = await backend.call("GET", f"{W}/?op=GETHOMEDIRECTORY", "alice")
    assert reply.json() == {"Path": "/user/alice"}


async def test_failures_are_remote_exceptions(backend: Backend) -> None:
    remote(await backend.call("GET", f"{W}/nope?op=GETFILESTATUS"), 404, "java.io.FileNotFoundException")
    remote(await backend.call("GET", f"{W}/?op=NOSUCHOP"), 400, "java.lang.IllegalArgumentException")
    remote(await backend.call("GET", f"{W}/"), 400, "java.lang.IllegalArgumentException")
    remote(await backend.call("PUT", f"{W}/?op=GETFILESTATUS"), 400, "java.lang.IllegalArgumentException")
    remote(await backend.call("PUT", f"{W}/x?op=MKDIRS"), 403, "org.apache.hadoop.security.AccessControlException")
    remote(
        await backend.call("GET", f"{W}/.authgateway?op=LISTSTATUS", "hdfs"),
        403,
        "org.apache.hadoop.security.AccessControlException",
    )
    remote(await backend.call("GET", f"{W}/?op=LISTSTATUS", user=None), 401, "java.lang.SecurityException")


# -- writing ------------------------------------------------------------------


async def test_create_in_two_steps(backend: Backend) -> None:
    reply = await backend.call("PUT", f"{W}/user/bob/new?op=CREATE&overwrite=false&permission=600&user.name=bob")
    assert reply.status == 307
    location = reply.headers["Location"]
    assert location == f"{backend.base}{W}/user/bob/new?op=CREATE&overwrite=false&permission=600&data=true"
    assert (await backend.call("GET", "/user/bob/new?op=status")).status == 404  # nothing yet
    step2 = await backend.call("PUT", location.removeprefix(backend.base), data=b"payload")
    assert step2.status == 201, step2.body
    assert step2.headers["Location"] == f"{backend.base}{W}/user/bob/new"
    doc = await status(backend, "/user/bob/new")
    assert (doc["len"], doc["permission"], doc["owner"]) == (7, "-rw-------", "bob")


async def test_create_noredirect_and_one_step(backend: Backend) -> None:
    reply = await backend.call("PUT", f"{W}/user/bob/x?op=CREATE&noredirect=true")
    assert reply.status == 200
    assert reply.json() == {"Location": f"{backend.base}{W}/user/bob/x?op=CREATE&data=true"}
    reply = await backend.call("PUT", f"{W}/user/bob/x?op=CREATE&data=true", data=b"one")
    assert reply.status == 201
    again = await backend.call("PUT", f"{W}/user/bob/x?op=CREATE&data=true", data=b"two")
    remote(again, 403, "org.apache.hadoop.fs.FileAlreadyExistsException")
    reply = await backend.call("PUT", f"{W}/user/bob/x?op=CREATE&data=true&overwrite=true", data=b"three")
    assert reply.status == 201
    assert (await backend.call("GET", "/user/bob/x")).body == b"three"


async def test_append_in_two_steps(backend: Backend) -> None:
    await create(backend, "/user/bob/log", b"a")
    reply = await backend.call("POST", f"{W}/user/bob/log?op=APPEND")
    assert reply.status == 307
    step2 = await backend.call("POST", reply.headers["Location"].removeprefix(backend.base), data=b"bc")
    assert step2.status == 200, step2.body
    assert (await backend.call("GET", "/user/bob/log")).body == b"abc"


async def test_mkdirs_rename_delete(backend: Backend) -> None:
    assert (await backend.call("PUT", f"{W}/user/bob/d/e?op=MKDIRS&permission=700")).json() == {"boolean": True}
    assert (await status(backend, "/user/bob/d/e"))["permission"] == "drwx------"
    reply = await backend.call("PUT", f"{W}/user/bob/d?op=RENAME&destination=/user/bob/d2")
    assert reply.json() == {"boolean": True}
    reply = await backend.call("PUT", f"{W}/user/bob/missing?op=RENAME&destination=/user/bob/d3")
    assert reply.json() == {"boolean": False}
    remote(
        await backend.call("PUT", f"{W}/user/bob/d2?op=RENAME"), 400, "java.lang.IllegalArgumentException"
    )
    not_empty = await backend.call("DELETE", f"{W}/user/bob/d2?op=DELETE")
    remote(not_empty, 403, "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException")
    reply = await backend.call("DELETE", f"{W}/user/bob/d2?op=DELETE&recursive=true")
    assert reply.json() == {"boolean": True}
    reply = await backend.call("DELETE", f"{W}/user/bob/d2?op=DELETE&recursive=true")
    assert reply.json() == {"boolean": False}


async def test_attributes(backend: Backend) -> None:
    await create(backend, "/user/bob/f", b"x")
    assert (await backend.call("PUT", f"{W}/user/bob/f?op=SETPERMISSION&permission=1600")).status == 200
    assert (await backend.call("PUT", f"{W}/user/bob/f?op=SETTIMES&modificationtime=5000&accesstime=6000")).status == 200
    reply = await backend.call("PUT", f"{W}/user/bob/f?op=SETREPLICATION&replication=2")
    assert reply.json() == {"boolean": True}
    remote(
        await backend.call("PUT", f"{W}/user/bob/f?op=SETOWNER&owner=alice"),
        403,
        "org.apache.hadoop.security.AccessControlException",
    )
    assert (await backend.call("PUT", f"{W}/user/bob/f?op=SETOWNER&owner=alice&group=staff", "hdfs")).status == 200
    doc = (await backend.call("GET", f"{W}/user/bob/f?op=GETFILESTATUS")).json()["FileStatus"]
    assert (doc["permission"], doc["modificationTime"], doc["accessTime"]) == ("1600", 5000, 6000)
    assert (doc["replication"], doc["owner"], doc["group"]) == (2, "alice", "staff")


# -- HdfsCLI ------------------------------------------------------------------


class _Signing(requests.auth.AuthBase):
    """Sign each request as the gateway would for ``user``."""

    def __init__(self, backend: Backend, user: str) -> None:
        self.backend = backend
        self.user = user

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        assert r.method is not None
        r.headers.update(self.backend.signed(r.method, r.path_url, self.user))
        return r


def _client(backend: Backend, user: str = "bob") -> Client:
    session = requests.Session()
    session.auth = _Signing(backend, user)
    return Client(backend.base, session=session)


async def test_hdfscli_does_its_everyday_operations(backend: Backend) -> None:
    big = os.urandom(3 * 1024 * 1024 + 17)

    def run() -> dict[str, Any]:
        client = _client(backend)
        seen: dict[str, Any] = {}
        client.makedirs("/user/bob/dir", permission="750")
        client.write("/user/bob/dir/big", data=big)
        client.write("/user/bob/dir/small", data=b"hello", overwrite=True)
        client.write("/user/bob/dir/small", data=b" world", append=True)
        with client.read("/user/bob/dir/small") as reader:
            seen["small"] = reader.read()
        with client.read("/user/bob/dir/big", offset=1000, length=2 * 1024 * 1024) as reader:
            seen["slice"] = reader.read()
        seen["list"] = client.list("/user/bob/dir")
        seen["status"] = client.status("/user/bob/dir/big")
        seen["missing"] = client.status("/user/bob/nope", strict=False)
        client.rename("/user/bob/dir/small", "/user/bob/renamed")
        client.set_permission("/user/bob/renamed", "600")
        seen["renamed"] = client.status("/user/bob/renamed")
        seen["deleted"] = client.delete("/user/bob/dir", recursive=True)
        seen["deleted_again"] = client.delete("/user/bob/dir", recursive=True)
        try:
            client.makedirs("/elsewhere")
        except HdfsError as exc:
            seen["denied"] = str(exc)
        return seen

    seen = await asyncio.to_thread(run)
    assert seen["small"] == b"hello world"
    assert seen["slice"] == big[1000 : 1000 + 2 * 1024 * 1024]
    assert seen["list"] == ["big", "small"]
    assert (seen["status"]["length"], seen["status"]["type"]) == (len(big), "FILE")
    assert seen["missing"] is None
    assert (seen["renamed"]["permission"], seen["renamed"]["length"]) == ("600", 11)
    assert (seen["deleted"], seen["deleted_again"]) == (True, False)
    assert seen["denied"].startswith("Permission denied: user=bob, access=WRITE")


@pytest.mark.parametrize("path", ["/webhdfs/v1", "/webhdfs/v1/"])
async def test_the_prefix_itself_is_the_root(backend: Backend, path: str) -> None:
    reply = await backend.call("GET", f"{path}?op=GETFILESTATUS")
    assert reply.json()["FileStatus"]["type"] == "DIRECTORY"
    assert json.loads(reply.body)["FileStatus"]["owner"] == "hdfs"


async def test_getcontentsummary(backend: Backend) -> None:
    await create(backend, "/user/bob/a", b"12345", query="&replication=2")
    await create(backend, "/user/bob/d/b", b"123")
    await backend.call("POST", "/user/bob/d/e?op=mkdirs")
    reply = await backend.call("GET", f"{W}/user/bob?op=GETCONTENTSUMMARY")
    assert reply.json() == {"ContentSummary": {
        "directoryCount": 3, "fileCount": 2, "length": 8, "quota": -1, "spaceConsumed": 5 * 2 + 3 * 3,
        "spaceQuota": -1, "typeQuota": {},
    }}  # fmt: skip
    file_summary = (await backend.call("GET", f"{W}/user/bob/a?op=GETCONTENTSUMMARY")).json()["ContentSummary"]
    assert (file_summary["directoryCount"], file_summary["fileCount"], file_summary["length"]) == (0, 1, 5)
    # READ_EXECUTE on every directory below, as HDFS asks.
    await backend.call("PUT", "/user/bob/d/e?op=setpermission&permission=700")
    denied = await backend.call("GET", f"{W}/user/bob?op=GETCONTENTSUMMARY", "alice")
    assert "inode=/user/bob/d/e" in remote(denied, 403, "org.apache.hadoop.security.AccessControlException")


async def test_liststatus_batch(backend: Backend) -> None:
    for name in ("c", "a", "b"):
        await create(backend, f"/user/bob/{name}", b"x")
    reply = await backend.call("GET", f"{W}/user/bob?op=LISTSTATUS_BATCH&startAfter=a")
    listing = reply.json()["DirectoryListing"]
    assert [e["pathSuffix"] for e in listing["partialListing"]["FileStatuses"]["FileStatus"]] == ["b", "c"]
    assert listing["remainingEntries"] == 0


async def test_truncate(backend: Backend) -> None:
    await create(backend, "/user/bob/t", b"0123456789")
    reply = await backend.call("POST", f"{W}/user/bob/t?op=TRUNCATE&newlength=4")
    assert reply.json() == {"boolean": True}
    assert (await backend.call("GET", "/user/bob/t")).body == b"0123"
    remote(
        await backend.call("POST", f"{W}/user/bob/t?op=TRUNCATE&newlength=5"), 400, "java.lang.IllegalArgumentException"
    )
    remote(await backend.call("POST", f"{W}/user/bob/t?op=TRUNCATE"), 400, "java.lang.IllegalArgumentException")
    remote(
        await backend.call("POST", f"{W}/user/bob/t?op=TRUNCATE&newlength=0", "alice"),
        403,
        "org.apache.hadoop.security.AccessControlException",
    )


def _hdfs_crc32_checksum(data: bytes, block_size: int) -> tuple[str, str]:
    """HDFS's MD5-of-MD5-of-CRC32, written out plainly."""
    import hashlib
    import struct
    import zlib

    blocks = [data[i : i + block_size] for i in range(0, len(data), block_size)]
    block_md5s = b"".join(
        hashlib.md5(b"".join(struct.pack(">I", zlib.crc32(b[i : i + 512])) for i in range(0, len(b), 512))).digest()
        for b in blocks
    )
    per_block = block_size // 512 if len(blocks) > 1 else 0
    raw = struct.pack(">iq", 512, per_block) + hashlib.md5(block_md5s).digest()
    return f"MD5-of-{per_block}MD5-of-512CRC32", raw.hex()


@pytest.mark.parametrize(("size", "block_size"), [(0, 1024), (700, 1024), (5000, 1024), (2048, 1024)])
async def test_getfilechecksum(backend: Backend, size: int, block_size: int) -> None:
    data = os.urandom(size)
    await create(backend, "/user/bob/c", data, query=f"&blocksize={block_size}")
    reply = await backend.call("GET", f"{W}/user/bob/c?op=GETFILECHECKSUM")
    algorithm, hexbytes = _hdfs_crc32_checksum(data, block_size)
    assert reply.json() == {"FileChecksum": {"algorithm": algorithm, "bytes": hexbytes, "length": 28}}
    remote(
        await backend.call("GET", f"{W}/user/bob?op=GETFILECHECKSUM"), 404, "java.io.FileNotFoundException"
    )


async def test_concat(backend: Backend) -> None:
    big = os.urandom(3 * 1024 * 1024 + 5)
    await create(backend, "/user/bob/t", b"head:")
    await create(backend, "/user/bob/s1", io.BytesIO(big))
    await create(backend, "/user/bob/s2", b":tail")
    reply = await backend.call("POST", f"{W}/user/bob/t?op=CONCAT&sources=/user/bob/s1,/user/bob/s2")
    assert reply.status == 200, reply.body
    assert (await backend.call("GET", "/user/bob/t")).body == b"head:" + big + b":tail"
    for gone in ("s1", "s2"):
        remote(await backend.call("GET", f"{W}/user/bob/{gone}?op=GETFILESTATUS"), 404, "java.io.FileNotFoundException")
    assert backend.temp_files() == []


@pytest.mark.parametrize(
    ("sources", "user", "status_code", "java_class"),
    [
        ("", "bob", 400, "java.lang.IllegalArgumentException"),
        ("/user/bob/t", "bob", 400, "java.lang.IllegalArgumentException"),
        ("/user/bob/s,/user/bob/s", "bob", 400, "java.lang.IllegalArgumentException"),
        ("/user/bob/empty", "bob", 400, "java.lang.IllegalArgumentException"),
        ("/user/bob/d/other", "bob", 400, "java.lang.IllegalArgumentException"),
        ("/user/bob/missing", "bob", 404, "java.io.FileNotFoundException"),
        ("/user/bob/s", "alice", 403, "org.apache.hadoop.security.AccessControlException"),
    ],
)
async def test_concat_refusals_change_nothing(
    backend: Backend, sources: str, user: str, status_code: int, java_class: str
) -> None:
    await create(backend, "/user/bob/t", b"T")
    await create(backend, "/user/bob/s", b"S")
    await create(backend, "/user/bob/empty", b"")
    await create(backend, "/user/bob/d/other", b"O")
    reply = await backend.call("POST", f"{W}/user/bob/t?op=CONCAT&sources={sources}", user)
    remote(reply, status_code, java_class)
    assert (await backend.call("GET", "/user/bob/t")).body == b"T"
    assert (await backend.call("GET", "/user/bob/s")).body == b"S"


@pytest.mark.parametrize("spoof", ["doas=hdfs", "user.name=hdfs", "DoAs=hdfs", "delegation=x"])
async def test_only_the_signed_identity_counts(backend: Backend, spoof: str) -> None:
    reply = await backend.call("PUT", f"{W}/spoofed?op=MKDIRS&{spoof}", "bob")
    assert "user=bob" in remote(reply, 403, "org.apache.hadoop.security.AccessControlException")
    home = await backend.call("GET", f"{W}/?op=GETHOMEDIRECTORY&{spoof}", "bob")
    assert home.json() == {"Path": "/user/bob"}
    forged = {USER_HEADER: "hdfs", SIGNATURE_HEADER: backend.signer.sign("hdfs", "PUT", f"{W}/other?op=MKDIRS")}
    reply = await backend.call("PUT", f"{W}/spoofed?op=MKDIRS", user=None, headers=forged)
    remote(reply, 401, "java.lang.SecurityException")
    assert not (backend.root / "spoofed").exists()
