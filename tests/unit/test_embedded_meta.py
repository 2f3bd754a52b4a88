"""The metadata store: subtree renames and deletes, persistence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.embedded.store._meta import InodeMeta, MetaStore


def meta(owner: str) -> InodeMeta:
    return InodeMeta(owner, "g", 0o644, 3, 1024)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetaStore]:
    s = MetaStore(tmp_path / "meta.sqlite3")
    try:
        for path in ("/", "/a", "/a/b", "/a/b/c", "/ab", "/a%", "/a_", "/x"):
            s.put(path, meta(path))
        yield s
    finally:
        s.close()


def owners(store: MetaStore) -> dict[str, str]:
    paths = ("/", "/a", "/a/b", "/a/b/c", "/ab", "/a%", "/a_", "/x", "/x/b", "/x/b/c", "/y", "/y/b")
    return {p: m.owner for p, m in store.get_many(paths).items()}


def test_drop_subtree_spares_siblings_with_the_same_prefix(store: MetaStore) -> None:
    store.drop_subtree("/a")
    assert sorted(owners(store)) == ["/", "/a%", "/a_", "/ab", "/x"]


def test_move_subtree(store: MetaStore) -> None:
    store.move_subtree("/a", "/y")
    got = owners(store)
    assert got["/y"] == "/a" and got["/y/b"] == "/a/b"
    assert "/a" not in got and "/a/b" not in got
    assert got["/ab"] == "/ab" and got["/a%"] == "/a%" and got["/a_"] == "/a_"


def test_move_subtree_replaces_stale_rows_at_the_destination(store: MetaStore) -> None:
    store.put("/x/b", meta("stale"))
    store.move_subtree("/a", "/x")
    got = owners(store)
    assert (got["/x"], got["/x/b"], got["/x/b/c"]) == ("/a", "/a/b", "/a/b/c")


def test_rows_persist(tmp_path: Path) -> None:
    first = MetaStore(tmp_path / "m.sqlite3")
    first.put("/f", meta("bob"))
    first.close()
    second = MetaStore(tmp_path / "m.sqlite3")
    try:
        assert second.get("/f") == meta("bob")
        assert second.get("/g") is None
    finally:
        second.close()


def test_get_many_beyond_the_variable_limit(store: MetaStore) -> None:
    store.put_many((f"/n{i}", meta(str(i))) for i in range(1200))
    got = store.get_many(f"/n{i}" for i in range(1200))
    assert len(got) == 1200 and got["/n1199"].owner == "1199"
