"""The HDFS metadata the host file system cannot hold, kept in SQLite.

One row per inode path that the backend created or changed: owner, group,
permission bits, replication and block size.  Sizes and times come from the
host file system.  Inodes without a row (put there by hand) get defaults
from the namespace (superuser-owned, parent's group, 755/644).  Renames move
a subtree's rows, deletes drop them, each in one transaction.

The database lives in ``<root>/.authgateway/meta.sqlite3`` and is used from
the event loop thread only; each call is one small indexed statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ("InodeMeta", "MetaStore", "open_db")

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
    if path == "/":
        return "1", ()
    return "(path = ? OR substr(path, 1, ?) = ?)", (path, len(path) + 1, path + "/")


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

    def close(self) -> None:
        self._db.close()

    def get(self, path: str) -> InodeMeta | None:
        row = self._db.execute(
            "SELECT owner, grp, perm, replication, blocksize FROM inode WHERE path = ?", (path,)
        ).fetchone()
        return InodeMeta(*row) if row else None

    def get_many(self, paths: Iterable[str]) -> dict[str, InodeMeta]:
        wanted = list(dict.fromkeys(paths))
        found: dict[str, InodeMeta] = {}
        for start in range(0, len(wanted), 500):  # stay below SQLite's variable limit
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            for path, *fields in self._db.execute(
                f"SELECT path, owner, grp, perm, replication, blocksize FROM inode WHERE path IN ({marks})", batch
            ):
                found[path] = InodeMeta(*fields)
        return found

    def put(self, path: str, meta: InodeMeta) -> None:
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

    def drop_subtree(self, path: str) -> None:
        clause, args = _subtree_clause(path)
        self._db.execute(f"DELETE FROM inode WHERE {clause}", args)

    def move_subtree(self, src: str, dst: str) -> None:
        """Re-key every row at or below ``src`` to the same place below ``dst``."""
        if src == "/":
            raise ValueError("cannot move the root")
        with self._transaction():
            self.drop_subtree(dst)
            clause, args = _subtree_clause(src)
            self._db.execute(
                f"UPDATE inode SET path = ? || substr(path, ?) WHERE {clause}", (dst, len(src) + 1, *args)
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any error."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
