"""The HDFS metadata the host file system cannot hold, kept in SQLite.

One row per inode path that the backend created or changed: owner, group,
permission bits, replication and block size.  Sizes and times come from the
host file system.  Inodes without a row (put there by hand) get defaults
from the namespace (superuser-owned, parent's group, 755/644).  Renames move
a subtree's rows, deletes drop them, each in one transaction.

The database lives in ``<root>/.authgateway/meta.sqlite3`` and is used from
the event loop thread only; each call is one small indexed statement.

Reads are cached per process: every request resolves each component of its
path, and the query cost about 25 us where SQLite's ``PRAGMA data_version``,
which changes whenever another connection (another worker, or
``authgateway embedded``) commits, costs about 7.  The cache is dropped when
that number moves, and on every change made through this store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ("InodeMeta", "MetaStore", "open_db")

_CACHE_LIMIT = 8192  # rows kept per process; past it the cache starts again
_CACHE_CHARS = 8 << 20  # nor more than this many characters of paths (one may have 8000)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inode (
    path TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    grp TEXT NOT NULL,
    perm INTEGER NOT NULL,
    replication INTEGER NOT NULL,
    blocksize INTEGER NOT NULL
) WITHOUT ROWID
"""


@dataclass(frozen=True, slots=True)
class InodeMeta:
    owner: str
    group: str
    perm: int
    replication: int
    blocksize: int


def _subtree_clause(path: str) -> tuple[str, tuple[object, ...]]:
    """``path`` and every path below it, as a range of the primary key (not a scan of the table).

    Below ``p`` is exactly the range [``p/``, ``p0``): ``0`` follows ``/``
    in the byte order SQLite compares text in.
    """
    if path == "/":
        return "1", ()
    return "(path = ? OR (path >= ? AND path < ?))", (path, path + "/", path + "0")


def open_db(db_file: Path, schema: str) -> sqlite3.Connection:
    """The state database of a served root (WAL, shared by its processes), with ``schema`` applied."""
    db = sqlite3.connect(db_file, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(schema)
    except BaseException:
        db.close()
        raise
    return db


class MetaStore:
    """Owner, group, permission, replication and block size per HDFS path."""

    def __init__(self, db_file: Path) -> None:
        self._db = open_db(db_file, _SCHEMA)
        self._version_cursor = self._db.cursor()
        self._version: object = None
        # path -> its row, or None for a path known to have none.
        self._cache: dict[str, InodeMeta | None] = {}
        self._cache_chars = 0

    def close(self) -> None:
        self._db.close()

    def get(self, path: str) -> InodeMeta | None:
        return self.get_many((path,)).get(path)

    def get_many(self, paths: Iterable[str]) -> dict[str, InodeMeta]:
        cache = self._current_cache()
        found: dict[str, InodeMeta] = {}
        missing: list[str] = []
        for path in paths:
            if path in cache:
                meta = cache[path]
                if meta is not None:
                    found[path] = meta
            else:
                missing.append(path)
        if missing:
            wanted = list(dict.fromkeys(missing))
            chars = sum(map(len, wanted))
            if len(cache) + len(wanted) > _CACHE_LIMIT or self._cache_chars + chars > _CACHE_CHARS:
                self._clear()
            self._cache_chars += chars
            for start in range(0, len(wanted), 500):  # stay below SQLite's variable limit
                batch = wanted[start : start + 500]
                marks = ",".join("?" * len(batch))
                for path, *fields in self._db.execute(
                    f"SELECT path, owner, grp, perm, replication, blocksize FROM inode WHERE path IN ({marks})", batch
                ):
                    found[path] = InodeMeta(*fields)
            for path in wanted:
                cache[path] = found.get(path)
        return found

    def _current_cache(self) -> dict[str, InodeMeta | None]:
        """The cache, emptied first if another connection committed since it was filled."""
        version = self._version_cursor.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._clear()
            self._version = version
        return self._cache

    def _clear(self) -> None:
        self._cache.clear()
        self._cache_chars = 0

    def _changing(self) -> None:
        # This connection's own commits leave data_version alone.
        self._clear()

    def put(self, path: str, meta: InodeMeta) -> None:
        self._changing()
        self._db.execute(
            "INSERT OR REPLACE INTO inode (path, owner, grp, perm, replication, blocksize) VALUES (?, ?, ?, ?, ?, ?)",
            (path, meta.owner, meta.group, meta.perm, meta.replication, meta.blocksize),
        )

    def put_many(self, rows: Iterable[tuple[str, InodeMeta]]) -> None:
        with self._transaction():
            for path, meta in rows:
                self.put(path, meta)

    def replace_subtree(self, path: str, meta: InodeMeta) -> None:
        """Forget whatever was recorded at and below ``path`` and record ``meta`` for it."""
        with self._transaction():
            self.drop_subtree(path)
            self.put(path, meta)

    def record_new(self, rows: Sequence[tuple[str, InodeMeta]]) -> None:
        """Record new inodes, the first above all the others, in one transaction.

        Whatever was recorded at or below the first (left by something
        removed by hand) is forgotten first.
        """
        top = rows[0][0]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            clause, args = _subtree_clause(top)
            self._db.execute(f"DELETE FROM inode WHERE {clause}", args)
            self._db.executemany(
                "INSERT INTO inode (path, owner, grp, perm, replication, blocksize) VALUES (?, ?, ?, ?, ?, ?)",
                [(path, m.owner, m.group, m.perm, m.replication, m.blocksize) for path, m in rows],
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._clear()
            self._db.execute("ROLLBACK")
            raise
        # Only what lies below ``top`` changed: the rest of the cache stays
        # (a deep mkdirs, in steps, would otherwise read its whole path again).
        below = top + "/"
        stale = [path for path in self._cache if path == top or path.startswith(below)]
        for path in stale:
            self._cache_chars -= len(path)
            del self._cache[path]

    def drop_subtree(self, path: str) -> None:
        self._changing()
        clause, args = _subtree_clause(path)
        self._db.execute(f"DELETE FROM inode WHERE {clause}", args)

    def move_subtree(self, src: str, dst: str) -> None:
        """Re-key every row at or below ``src`` to the same place below ``dst``."""
        if src == "/":
            raise ValueError("cannot move the root")
        with self._transaction():
            self.drop_subtree(dst)
            self._changing()
            clause, args = _subtree_clause(src)
            self._db.execute(
                f"UPDATE inode SET path = ? || substr(path, ?) WHERE {clause}", (dst, len(src) + 1, *args)
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._changing)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any error; then ``done``.

    ``done`` drops what was read inside: a rollback takes it back.
    """

    __slots__ = ("_db", "_done")

    def __init__(self, db: sqlite3.Connection, done: Callable[[], None]) -> None:
        self._db = db
        self._done = done

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
        finally:
            self._done()
