"""Properties of the embedded backend over random trees up to HDFS's depth limit, on a real socket.

Hypothesis draws a tree (a chain of names up to 1002 deep, so past the
limit too) and a run of operations of every kind, through the three faces,
as the superuser, the owner and a stranger, on prefixes of that chain.
Whatever they do:

- no answer is an internal error (a 500 of Hoop, an ``IOException`` of
  WebHDFS other than HDFS's own path limit, ``INTERNAL`` of Alluxio), and
  nothing is logged as a failure of the backend;
- the backend always starts again, its state directory reopens, what was
  there before is there after, and nothing is left in its scratch
  directories.

The example budget is fixed so that the run stays short.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.embedded.store import MAX_PATH_DEPTH
from tests.integration.embedded import Backend, Reply, make_config, running
from tests.trees import remove_all

W = "/webhdfs/v1"
A = "/api/v1/paths"
USERS = ("hdfs", "bob", "alice")
DEFAULT_RECURSION_LIMIT = 1000  # CPython's


@dataclass(frozen=True)
class Op:
    """One request: ``kind`` names it; ``path`` and ``other`` are prefixes of the tree (``other`` for rename)."""

    kind: str
    user: str
    path: int
    other: int = 0
    flag: bool = False


KINDS = (
    "mkdirs", "create", "append", "rename", "delete", "status", "list", "open", "setpermission", "setowner",
    "w_mkdirs", "w_liststatus", "w_summary", "w_delete", "w_rename", "w_create",
    "a_create_directory", "a_list_status", "a_delete", "a_get_status",
)  # fmt: skip


@st.composite
def trees(draw: st.DrawFn) -> tuple[str, ...]:
    """A chain of names below ``/t`` or ``/user/bob``: shallow, or about as deep as HDFS allows."""
    top = draw(st.sampled_from([("t",), ("user", "bob")]))
    depth = draw(st.one_of(st.integers(1, 6), st.integers(MAX_PATH_DEPTH - 3, MAX_PATH_DEPTH + 2)))
    # Short names: a request line holds two such paths (rename) within aiohttp's 8190 bytes.
    motif = draw(st.lists(st.sampled_from(["d", "a b", "ü", "%", "x.y"]), min_size=1, max_size=3))
    below = depth - len(top)
    return top + tuple((motif * (below // len(motif) + 1))[:below])


def operations(size: int) -> st.SearchStrategy[list[Op]]:
    prefix = st.integers(1, size)
    op = st.builds(Op, st.sampled_from(KINDS), st.sampled_from(USERS), prefix, prefix, st.booleans())
    return st.lists(op, min_size=1, max_size=8)


def url(parts: tuple[str, ...]) -> str:
    return "/" + "/".join(quote(name, safe="") for name in parts)


async def send(b: Backend, tree: tuple[str, ...], op: Op) -> Reply:
    path = url(tree[: op.path])
    other = url(tree[: min(op.other, 40)] + ("moved",))  # renames out of the deep end, mostly
    body = b"data" if op.flag else b""
    json_body = {"Content-Type": "application/json"}
    requests: dict[str, tuple[str, str, Any, dict[str, str] | None]] = {
        "mkdirs": ("POST", f"{path}?op=mkdirs&permission={'700' if op.flag else '755'}", None, None),
        "create": ("POST", f"{path}?op=create&overwrite={str(op.flag).lower()}", b"data", None),
        "append": ("POST", f"{path}?op=append", b"more", None),
        "rename": ("PUT", f"{path}?op=rename&to={other}", None, None),
        "delete": ("DELETE", f"{path}?op=delete&recursive={str(op.flag).lower()}", None, None),
        "status": ("GET", f"{path}?op=status", None, None),
        "list": ("GET", f"{path}?op=list", None, None),
        "open": ("GET", f"{path}?op=open", None, None),
        "setpermission": ("PUT", f"{path}?op=setpermission&permission={'000' if op.flag else '1777'}", None, None),
        "setowner": ("PUT", f"{path}?op=setowner&owner=alice", None, None),
        "w_mkdirs": ("PUT", f"{W}{path}?op=MKDIRS", None, None),
        "w_liststatus": ("GET", f"{W}{path}?op=LISTSTATUS", None, None),
        "w_summary": ("GET", f"{W}{path}?op=GETCONTENTSUMMARY", None, None),
        "w_delete": ("DELETE", f"{W}{path}?op=DELETE&recursive=true", None, None),
        "w_rename": ("PUT", f"{W}{path}?op=RENAME&destination={other}", None, None),
        "w_create": ("PUT", f"{W}{path}?op=CREATE&data=true&overwrite=true", body, None),
        "a_create_directory": ("POST", f"{A}{path}/create-directory", b'{"recursive": true}', json_body),
        "a_list_status": ("POST", f"{A}{path}/list-status", None, None),
        "a_delete": ("POST", f"{A}{path}/delete", b'{"recursive": true}', json_body),
        "a_get_status": ("POST", f"{A}{path}/get-status", None, None),
    }
    method, target, data, headers = requests[op.kind]
    return await b.call(method, target, op.user, data=data, headers=headers)


def assert_not_internal(op: Op, reply: Reply) -> None:
    what = f"{op}: {reply.status} {reply.body[:300]!r}"
    assert b"Internal error" not in reply.body, what
    if op.kind.startswith("a_"):
        assert reply.status == 200 or reply.json()["statusCode"] != "INTERNAL", what
    elif op.kind.startswith("w_"):
        assert reply.status < 500, what
        if reply.status == 403 and reply.json()["RemoteException"]["exception"] == "IOException":
            assert "Pathname too long" in reply.json()["RemoteException"]["message"], what
    else:
        assert reply.status < 500, what


async def everything(b: Backend) -> Any:
    """What the superuser sees of the whole namespace: counts and bytes."""
    reply = await b.call("GET", f"{W}/?op=GETCONTENTSUMMARY", "hdfs")
    assert reply.status == 200, reply.body[:300]
    return reply.json()


async def scenario(root: Path, tree: tuple[str, ...], ops: list[Op]) -> None:
    config = make_config(root, supergroup="admins")
    backends = running(config)
    b = await anext(backends)
    try:
        for op in ops:
            assert_not_internal(op, await send(b, tree, op))
        before = await everything(b)
        had_user = (await b.call("GET", "/user?op=status", "hdfs")).status == 200
        await b.stop()
        await b.start()  # the state directory reopens, whatever the tree
        after = await everything(b)
        if not had_user:  # a start makes /user again
            after["ContentSummary"]["directoryCount"] -= 1
        assert after == before
        state = root / ".authgateway"
        assert (os.listdir(state / "trash"), os.listdir(state / "tmp")) == ([], [])
        assert (await b.call("POST", "/after?op=mkdirs", "hdfs")).status == 200
        reply = await b.call("DELETE", f"{url(tree[:1])}?op=delete&recursive=true", "hdfs")  # whatever is left
        assert reply.status in (200, 404), reply.body[:300]
        assert (os.listdir(state / "trash"), os.listdir(state / "tmp")) == ([], [])
    finally:
        await backends.aclose()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
@example(data=None)  # the reported case: a 1000-deep mkdirs, a recursive delete, a restart
def test_random_trees_never_fail_the_backend_and_it_always_starts_again(
    data: st.DataObject | None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if data is None:
        tree: tuple[str, ...] = ("deep",) + ("d",) * (MAX_PATH_DEPTH - 1)
        ops = [Op("mkdirs", "hdfs", MAX_PATH_DEPTH), Op("delete", "hdfs", 1, flag=True)]
    else:
        tree = data.draw(trees(), label="tree")
        ops = data.draw(operations(len(tree)), label="ops")
    root = tmp_path / uuid.uuid4().hex
    caplog.clear()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)  # as served, not as Hypothesis raised it
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.embedded"):
            asyncio.run(scenario(root, tree, ops))
        assert [r.getMessage() for r in caplog.records if r.name.startswith("gateway.embedded")] == []
    finally:
        sys.setrecursionlimit(limit)
        if root.exists():
            remove_all(root)
