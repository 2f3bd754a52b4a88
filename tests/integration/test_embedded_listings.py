"""Listings of every face over a real socket: HDFS's paging, streaming, and filters that cannot backtrack.

``ls_limit`` is set small here so that a few entries make many pages; the
answers must be the same documents a single page would give.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.embedded import BACKEND_KEY
from tests.integration.embedded import (
    Backend,
    backend,  # noqa: F401  (the fixture)
    by_hand,
    make_config,
    running,
)
from tests.integration.test_embedded_webhdfs import remote

W = "/webhdfs/v1"
LIMIT = 3
NAMES = ["a", "b0", "b1", "c", "d.txt", "e", "f.txt", "g", "h", "i", "sub"]


@pytest.fixture
async def paged(tmp_path: Path) -> AsyncIterator[Backend]:
    """A backend with ``ls_limit`` 3 and bob's home holding :data:`NAMES` (``sub`` a directory)."""
    async for server in running(make_config(tmp_path / "root", supergroup="admins", ls_limit=LIMIT)):
        for name in NAMES:
            by_hand(server, f"/user/bob/{name}", None if name == "sub" else name.encode())
        yield server


async def test_liststatus_batch_pages_as_hdfs_does(paged: Backend) -> None:
    """``ls_limit`` entries a batch; ``startAfter`` the last ``pathSuffix``; ``remainingEntries`` what follows."""
    seen: list[str] = []
    remaining: list[int] = []
    after = ""
    while True:
        reply = await paged.call("GET", f"{W}/user/bob?op=LISTSTATUS_BATCH" + (f"&startAfter={after}" if after else ""))
        listing = reply.json()["DirectoryListing"]
        assert set(listing) == {"partialListing", "remainingEntries"}
        batch = [s["pathSuffix"] for s in listing["partialListing"]["FileStatuses"]["FileStatus"]]
        assert len(batch) == min(LIMIT, len(NAMES) - len(seen))
        seen += batch
        remaining.append(listing["remainingEntries"])
        if listing["remainingEntries"] == 0:
            break
        after = batch[-1]
    assert seen == NAMES
    assert remaining == [8, 5, 2, 0]
    # startAfter need not name an entry: what sorts after it follows.
    reply = await paged.call("GET", f"{W}/user/bob?op=LISTSTATUS_BATCH&startAfter=bz")
    listing = reply.json()["DirectoryListing"]
    assert [s["pathSuffix"] for s in listing["partialListing"]["FileStatuses"]["FileStatus"]] == ["c", "d.txt", "e"]
    assert listing["remainingEntries"] == 5
    # A file is its own listing, whatever startAfter says.
    reply = await paged.call("GET", f"{W}/user/bob/a?op=LISTSTATUS_BATCH&startAfter=zzz")
    listing = reply.json()["DirectoryListing"]
    assert [s["pathSuffix"] for s in listing["partialListing"]["FileStatuses"]["FileStatus"]] == [""]
    assert listing["remainingEntries"] == 0
    remote(await paged.call("GET", f"{W}/user/bob/nope?op=LISTSTATUS_BATCH"), 404, "java.io.FileNotFoundException")


async def test_the_default_batch_is_dfs_ls_limit(backend: Backend) -> None:
    for i in range(1001):
        by_hand(backend, f"/user/bob/many/{i:04d}", b"")
    listing = (await backend.call("GET", f"{W}/user/bob/many?op=LISTSTATUS_BATCH")).json()["DirectoryListing"]
    assert len(listing["partialListing"]["FileStatuses"]["FileStatus"]) == 1000
    assert listing["remainingEntries"] == 1


async def test_every_face_streams_a_listing_of_many_pages(paged: Backend) -> None:
    """Many pages make one document, byte for byte what ``json.dumps`` gives, sent chunked."""
    reply = await paged.call("GET", f"{W}/user/bob?op=LISTSTATUS")
    assert reply.headers.get("Transfer-Encoding") == "chunked" and reply.headers["Content-Type"] == "application/json"
    doc = reply.json()
    assert json.dumps(doc).encode() == reply.body
    assert [s["pathSuffix"] for s in doc["FileStatuses"]["FileStatus"]] == NAMES
    assert doc["FileStatuses"]["FileStatus"][-1]["type"] == "DIRECTORY"

    reply = await paged.call("GET", "/user/bob?op=list")
    assert reply.headers.get("Transfer-Encoding") == "chunked"
    assert json.dumps(reply.json()).encode() == reply.body
    assert [e["path"] for e in reply.json()] == [f"{paged.base}/user/bob/{n}" for n in NAMES]

    reply = await paged.call("POST", "/api/v1/paths//user/bob/list-status")
    assert reply.headers.get("Transfer-Encoding") == "chunked"
    assert json.dumps(reply.json()).encode() == reply.body
    assert [i["name"] for i in reply.json()] == NAMES

    # A filter that matches on some pages only still makes one well-formed array.
    reply = await paged.call("GET", "/user/bob?op=list&filter=*.txt")
    assert [e["path"].rsplit("/", 1)[1] for e in reply.json()] == ["d.txt", "f.txt"]
    reply = await paged.call("GET", "/user/bob?op=list&filter=i")
    assert [e["path"].rsplit("/", 1)[1] for e in reply.json()] == ["i"]
    reply = await paged.call("GET", "/user/bob?op=list&filter=none")
    assert (reply.status, reply.body) == (200, b"[]")


async def test_a_listing_that_fits_one_page_has_a_length(paged: Backend) -> None:
    reply = await paged.call("GET", f"{W}/user/bob/sub?op=LISTSTATUS")
    assert reply.headers["Content-Length"] == str(len(reply.body))
    assert reply.json() == {"FileStatuses": {"FileStatus": []}}
    reply = await paged.call("GET", f"{W}/user/bob/a?op=LISTSTATUS")
    assert [s["pathSuffix"] for s in reply.json()["FileStatuses"]["FileStatus"]] == [""]
    head = await paged.call("HEAD", "/user/bob?op=list")
    assert (head.status, head.body) == (200, b"")
    # Refusals come before anything is sent, in the face's format.
    remote(await paged.call("GET", f"{W}/user/bob/nope?op=LISTSTATUS"), 404, "java.io.FileNotFoundException")
    assert (await paged.call("PUT", "/user/bob?op=setpermission&permission=700", "hdfs")).status == 200
    remote(await paged.call("GET", f"{W}/user/bob?op=LISTSTATUS", "alice"), 403,
           "org.apache.hadoop.security.AccessControlException")


async def test_a_pathological_filter_answers_at_once(backend: Backend) -> None:
    """``*a*a*a*a*a*a*a*a*a*a*b`` took seconds over 32 characters (hours over 60) with a backtracking regex."""
    for length in (32, 60):
        by_hand(backend, f"/user/bob/d{length}/{'a' * length}", b"")
        started = time.monotonic()
        reply = await backend.call("GET", f"/user/bob/d{length}?op=list&filter=*a*a*a*a*a*a*a*a*a*a*b")
        elapsed = time.monotonic() - started
        assert (reply.status, reply.json()) == (200, [])
        assert elapsed < 0.5, f"{length} characters took {elapsed:.2f} s"
        reply = await backend.call("GET", f"/user/bob/d{length}?op=list&filter=*a*a*a*a*a*a*a*a*a*a*a")
        assert [e["path"].rsplit("/", 1)[1] for e in reply.json()] == ["a" * length]


async def test_deeply_nested_filters_are_refused(backend: Backend) -> None:
    by_hand(backend, "/user/bob/x/a", b"")
    reply = await backend.call("GET", "/user/bob/x?op=list&filter=" + "{" * 1500 + "a" + "}" * 1500)
    assert "More than 100 nested groups" in reply.failure(400, "IllegalArgumentException")
    reply = await backend.call("GET", "/user/bob/x?op=list&filter=" + "{" * 101 + "a" + "}" * 101)
    reply.failure(400, "IllegalArgumentException")
    reply = await backend.call("GET", "/user/bob/x?op=list&filter=" + "{" * 100 + "a" + "}" * 100)
    assert [e["path"].rsplit("/", 1)[1] for e in reply.json()] == ["a"]


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("a%2Cb", ["a,b"]),  # "," outside a group is itself
        ("a}", ["a}"]),
        ("%7Ba%2Cx%7B1%2C2%7D%7D", ["a", "x1"]),  # {a,x{1,2}}
        ("x%5C*", ["x*"]),  # an escaped star
        ("%5B%21a%5D*", ["(x", "b", "x*", "x1", "é"]),  # [!a]*
        ("?", ["a", "b", "é"]),  # one character, not one byte
        ("(*", ["(x"]),  # regex syntax is only itself
        ("%5B%5D-%5D", []),  # []-]: an empty set, refused below
    ],
)
async def test_glob_syntax(backend: Backend, pattern: str, names: list[str]) -> None:
    for name in ("a", "a,b", "a}", "b", "x*", "x1", "(x", "é"):
        by_hand(backend, f"/user/bob/g/{name}", b"")
    reply = await backend.call("GET", f"/user/bob/g?op=list&filter={pattern}")
    if pattern == "%5B%5D-%5D":
        reply.failure(400, "IllegalArgumentException")
        return
    assert sorted(e["path"].rsplit("/", 1)[1] for e in reply.json()) == sorted(names)


async def test_a_directory_replaced_by_a_file_mid_listing_ends_it(paged: Backend) -> None:
    """Each pass resolves the path again: a file found there then ends the listing, never joins it."""
    for i in range(30):
        by_hand(paged, f"/user/bob/many/{i:02d}", b"")
    store = paged.runner.app[BACKEND_KEY] if paged.runner else None
    assert store is not None
    pages = store.list_pages(store.principal("bob"), ("user", "bob", "many"))
    first_pass = [await anext(pages) for _ in range(8)]  # 8 x ls_limit names a pass, 3 a page
    assert [e.parts[-1] for page in first_pass for e in page.entries] == [f"{i:02d}" for i in range(24)]
    many = paged.root / "user" / "bob" / "many"
    many.rename(many.with_name("gone"))
    many.write_bytes(b"now a file")
    assert [page async for page in pages] == []
