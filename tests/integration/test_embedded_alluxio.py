"""The embedded backend's Alluxio proxy REST API v1 face, with signed requests on a real socket."""

from __future__ import annotations

import io
import json
import os
from typing import Any

import pytest

from tests.integration.embedded import (
    Backend,
    Reply,
    backend,  # noqa: F401  (the fixture)
    create,
    status,
)

P = "/api/v1/paths/"
S = "/api/v1/streams/"


def alluxio_error(reply: Reply, status_name: str, http_status: int = 500) -> str:
    assert reply.status == http_status, (reply.status, reply.body[:300])
    doc = reply.json()
    assert doc.keys() == {"statusCode", "message"} and doc["statusCode"] == status_name, doc
    return str(doc["message"])


async def post(b: Backend, target: str, options: dict[str, Any] | None = None, user: str = "bob",
               data: Any = None) -> Reply:
    body = json.dumps(options).encode() if options is not None else data
    headers = {"Content-Type": "application/json"} if options is not None else None
    return await b.call("POST", target, user, data=body, headers=headers)


async def test_status_list_exists_of_what_hoop_made(backend: Backend) -> None:
    await create(backend, "/user/bob/a", b"hello", query="&permission=640")
    hoop = await status(backend, "/user/bob/a")
    info = (await post(backend, f"{P}/user/bob/a/get-status")).json()
    assert (info["path"], info["name"], info["length"], info["folder"], info["mode"]) == (
        "/user/bob/a", "a", 5, False, 0o640
    )
    assert (info["owner"], info["group"], info["lastModificationTimeMs"]) == (
        "bob", hoop["group"], hoop["modificationTime"]
    )
    listing = (await post(backend, f"{P}//user/bob//list-status")).json()
    assert [i["name"] for i in listing] == ["a"]
    assert (await post(backend, f"{P}/user/bob/a/exists")).json() is True
    assert (await post(backend, f"{P}/user/bob/nope/exists")).json() is False
    alluxio_error(await post(backend, f"{P}/user/bob/nope/get-status"), "NOT_FOUND")


async def test_write_and_read_through_streams(backend: Backend) -> None:
    big = os.urandom(3 * 1024 * 1024 + 1)
    reply = await post(backend, f"{P}/user/bob/f/create-file", {"recursive": True})
    sid = reply.json()
    assert isinstance(sid, int)
    assert (await post(backend, f"{S}{sid}/write", data=b"first,")).json() == 6
    assert (await post(backend, f"{S}{sid}/write", data=io.BytesIO(big))).json() == len(big)
    assert (await post(backend, f"{P}/user/bob/f/exists")).json() is False  # not before close
    alluxio_error(await post(backend, f"{S}{sid}/write", user="alice", data=b"x"), "NOT_FOUND")
    assert (await post(backend, f"{S}{sid}/close")).status == 200
    rid = (await post(backend, f"{P}/user/bob/f/open-file")).json()
    reply = await post(backend, f"{S}{rid}/read")
    assert reply.body == b"first," + big
    assert (await post(backend, f"{S}{rid}/close")).status == 200
    alluxio_error(await post(backend, f"{S}{rid}/read"), "NOT_FOUND")
    alluxio_error(await post(backend, f"{P}/user/bob/f/create-file"), "ALREADY_EXISTS")


async def test_directories_rename_delete_attributes(backend: Backend) -> None:
    alluxio_error(await post(backend, f"{P}/user/bob/a/b/create-directory"), "NOT_FOUND")
    assert (await post(backend, f"{P}/user/bob/a/b/create-directory", {"recursive": True})).status == 200
    alluxio_error(await post(backend, f"{P}/user/bob/a/b/create-directory", {"recursive": True}), "ALREADY_EXISTS")
    opts = {"allowExists": True, "recursive": True}
    assert (await post(backend, f"{P}/user/bob/a/b/create-directory", opts)).status == 200
    alluxio_error(await post(backend, f"{P}/user/bob/a/delete"), "FAILED_PRECONDITION")
    assert (await post(backend, f"{P}/user/bob/a/rename?dst=/user/bob/z")).status == 200
    alluxio_error(await post(backend, f"{P}/user/bob/a/rename?dst=/user/bob/y"), "NOT_FOUND")
    mode = {"ownerBits": "ALL", "groupBits": "READ_EXECUTE", "otherBits": "NONE"}
    assert (await post(backend, f"{P}/user/bob/z/set-attribute", {"mode": mode})).status == 200
    assert (await status(backend, "/user/bob/z"))["permission"] == "drwxr-x---"
    alluxio_error(await post(backend, f"{P}/user/bob/z/set-attribute", {"owner": "alice"}), "PERMISSION_DENIED")
    assert (await post(backend, f"{P}/user/bob/z/delete", {"recursive": True})).status == 200
    assert (await post(backend, f"{P}/user/bob/z/exists")).json() is False


@pytest.mark.parametrize(
    ("method", "target", "status_name", "http_status"),
    [
        ("POST", f"{P}/x/mount", "UNIMPLEMENTED", 500),
        ("POST", f"{P}/x/bogus", "INVALID_ARGUMENT", 400),
        ("GET", f"{P}/x/exists", "UNIMPLEMENTED", 500),
        ("POST", f"{S}abc/read", "NOT_FOUND", 500),
        ("POST", f"{P}/.authgateway/exists", "PERMISSION_DENIED", 500),
        ("POST", f"{P}/py-test-dir/create-directory", "PERMISSION_DENIED", 500),
    ],
)
async def test_refusals_in_alluxio_shape(
    backend: Backend, method: str, target: str, status_name: str, http_status: int
) -> None:
    alluxio_error(await backend.call(method, target), status_name, http_status)


async def test_unsigned_is_401_in_alluxio_shape(backend: Backend) -> None:
    alluxio_error(await backend.call("POST", f"{P}/x/exists", user=None), "UNAUTHENTICATED", 401)


async def test_bad_options_are_invalid_argument(backend: Backend) -> None:
    reply = await post(backend, f"{P}/user/bob/d/create-directory", data=b"[1]")
    alluxio_error(reply, "INVALID_ARGUMENT", 400)
    reply = await post(backend, f"{P}/user/bob/d/create-directory", {"recursive": "yes"})
    alluxio_error(reply, "INVALID_ARGUMENT", 400)
    reply = await post(backend, f"{P}/user/bob/d/create-directory", {"mode": {"ownerBits": "EVERYTHING"}})
    alluxio_error(reply, "INVALID_ARGUMENT", 400)


async def test_options_arriving_in_pieces_and_too_large(backend: Backend) -> None:
    async def pieces() -> Any:
        for piece in (b'{"recur', b'sive": ', b"true}"):
            yield piece

    reply = await backend.call("POST", f"{P}/user/bob/p/q/create-directory", data=pieces())
    assert reply.status == 200, reply.body
    assert (await post(backend, f"{P}/user/bob/p/q/exists")).json() is True
    huge = {"recursive": True, "padding": "x" * 70000}
    alluxio_error(await post(backend, f"{P}/user/bob/r/create-directory", huge), "INVALID_ARGUMENT", 400)
