"""The metadata store: subtree renames and deletes, persistence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.embedded.store._meta import InodeMeta, MetaStore, _subtree_clause


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
    store.put_many([("/a.", meta("dot")), ("/a0", meta("zero")), ("/a/\U0001f600", meta("astral"))])
    store.drop_subtree("/a")
    assert sorted(owners(store)) == ["/", "/a%", "/a_", "/ab", "/x"]
    assert sorted(store.get_many(["/a.", "/a0", "/a/\U0001f600"])) == ["/a.", "/a0"]


def test_a_subtree_is_a_range_of_the_key_not_a_scan(store: MetaStore) -> None:
    clause, args = _subtree_clause("/a")
    plans = [row[-1] for row in store._db.execute(f"EXPLAIN QUERY PLAN DELETE FROM inode WHERE {clause}", args)]
    assert not any(plan.startswith("SCAN") for plan in plans), plans


def test_record_new_forgets_what_was_below_and_only_that(store: MetaStore) -> None:
    owners(store)
    store.record_new([("/a/b", meta("new")), ("/a/b/n", meta("n"))])
    assert owners(store) == {"/": "/", "/a": "/a", "/a/b": "new", "/ab": "/ab", "/a%": "/a%", "/a_": "/a_", "/x": "/x"}
    assert store.get("/a/b/n") == meta("n")


def test_the_cache_holds_a_bounded_number_of_characters(store: MetaStore) -> None:
    deep = ["/" + "/".join(["n" * 199] * (i % 40 + 1)) for i in range(4000)]  # up to 8000 characters each
    for start in range(0, len(deep), 100):
        store.get_many(deep[start : start + 100])
        assert store._cache_chars == sum(map(len, store._cache)) <= 8 << 20


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


# -- the per-process read cache ------------------------------------------------


def _statements(store: MetaStore) -> list[str]:
    seen: list[str] = []
    store._db.set_trace_callback(seen.append)
    return seen


def test_a_second_read_of_the_same_paths_asks_only_whether_anything_changed(store: MetaStore) -> None:
    owners(store)
    seen = _statements(store)
    assert owners(store)["/a/b"] == "/a/b"
    assert seen == ["PRAGMA data_version"]


@pytest.mark.parametrize(
    "change, path, owner",
    [
        (lambda s: s.put("/a/b", meta("new")), "/a/b", "new"),
        (lambda s: s.put("/y", meta("new")), "/y", "new"),  # a path read before as having no row
        (lambda s: s.drop_subtree("/a"), "/a/b", None),
        (lambda s: s.move_subtree("/a", "/y"), "/y/b", "/a/b"),
        (lambda s: s.replace_subtree("/a", meta("new")), "/a/b", None),
        (lambda s: s.put_many([("/x/b", meta("new"))]), "/x/b", "new"),
        (lambda s: s.record_new([("/a", meta("new")), ("/a/q", meta("q"))]), "/a/b", None),
        (lambda s: s.record_new([("/a", meta("new")), ("/a/q", meta("q"))]), "/a", "new"),
        (lambda s: s.record_new([("/x/b", meta("new")), ("/x/b/c", meta("c"))]), "/x/b/c", "c"),
    ],
)
def test_changes_are_seen_by_this_store_and_by_another_connection(
    tmp_path: Path, store: MetaStore, change: object, path: str, owner: str | None
) -> None:
    # The fixture's store is at tmp_path / "meta.sqlite3"; another worker
    # has its own connection to the same file.
    other = MetaStore(tmp_path / "meta.sqlite3")
    try:
        owners(store), owners(other)
        change(store)  # type: ignore[operator]
        assert owners(store).get(path) == owner
        assert owners(other).get(path) == owner
    finally:
        other.close()


def test_a_rolled_back_transaction_leaves_nothing_read_inside_it(store: MetaStore) -> None:
    with pytest.raises(RuntimeError), store._transaction():
        store.put("/t", meta("rolled back"))
        assert store.get("/t") == meta("rolled back")  # read, and cached, inside the transaction
        raise RuntimeError
    assert store.get("/t") is None
