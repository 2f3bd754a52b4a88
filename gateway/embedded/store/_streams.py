"""Open streams (the Alluxio proxy's stream ids), kept in SQLite.

A stream is a file opened for reading or a new file being written, named
by a random integer id.  Its record lives in
``<root>/.authgateway/streams.sqlite3``, not in process memory, so every
worker process of the backend, and the backend after a restart, find it;
the bytes of a write stream sit in a temporary file under
``.authgateway/tmp`` until the stream is closed.  A record names its opener
(no one else may use it) and when it expires.
"""

from __future__ import annotations

import enum
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ._meta import open_db

__all__ = ("StreamKind", "StreamRecord", "StreamTable")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stream (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    temp TEXT,
    position INTEGER NOT NULL,
    overwrite INTEGER NOT NULL,
    perm INTEGER,
    replication INTEGER NOT NULL,
    blocksize INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
)
"""
_COLUMNS = "id, owner, kind, path, temp, position, overwrite, perm, replication, blocksize, expires_ms"
# Alluxio's clients parse stream ids as (Java) ints.
_MAX_ID = (1 << 31) - 1


class StreamKind(enum.Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One open stream: ``temp`` is the write stream's temporary file name (under tmp/)."""

    id: int
    owner: str
    kind: StreamKind
    path: str
    temp: str | None
    position: int
    overwrite: bool
    perm: int | None
    replication: int
    blocksize: int
    expires_ms: int


class StreamTable:
    """The open streams of one served root, shared by every process that serves it."""

    def __init__(self, db_file: Path) -> None:
        self._db = open_db(db_file, _SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add_read(self, owner: str, path: str, *, expires_ms: int) -> int:
        """Record a new read stream under a fresh random id; return the id."""
        stream_id = self._insert(
            f"INSERT INTO stream ({_COLUMNS}) VALUES (?, ?, ?, ?, NULL, 0, 0, NULL, 0, 0, ?)",
            (owner, StreamKind.READ.value, path, expires_ms),
        )
        assert stream_id is not None  # an unconditional insert always adds
        return stream_id

    def add_write(
        self,
        owner: str,
        path: str,
        *,
        expires_ms: int,
        temp: str,
        overwrite: bool,
        perm: int | None,
        replication: int,
        blocksize: int,
        most: int,
        now_ms: int,
    ) -> int | None:
        """Record a new write stream and return its id, unless ``owner`` already has ``most`` unexpired ones: ``None``.

        The count and the insert are one statement, so processes racing
        cannot pass the limit together.
        """
        kind = StreamKind.WRITE.value
        return self._insert(
            f"INSERT INTO stream ({_COLUMNS}) SELECT ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ? WHERE "
            "(SELECT COUNT(*) FROM stream WHERE owner = ? AND kind = ? AND expires_ms > ?) < ?",
            (owner, kind, path, temp, int(overwrite), perm, replication, blocksize, expires_ms, owner, kind, now_ms,
             most),
        )

    def _insert(self, statement: str, values: tuple[object, ...]) -> int | None:
        """Run ``statement`` with a fresh random id before ``values``; the id, or ``None`` if it added nothing."""
        while True:
            stream_id = 1 + secrets.randbelow(_MAX_ID)
            try:
                added = self._db.execute(statement, (stream_id, *values)).rowcount
            except sqlite3.IntegrityError:
                continue  # that id is taken: draw again
            return stream_id if added == 1 else None

    def get(self, stream_id: int) -> StreamRecord | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM stream WHERE id = ?", (stream_id,)).fetchone()
        return _record(row) if row else None

    def update(self, stream_id: int, *, expires_ms: int, position: int | None = None) -> None:
        if position is None:
            self._db.execute("UPDATE stream SET expires_ms = ? WHERE id = ?", (expires_ms, stream_id))
        else:
            self._db.execute(
                "UPDATE stream SET expires_ms = ?, position = ? WHERE id = ?", (expires_ms, position, stream_id)
            )

    def remove(self, stream_id: int) -> bool:
        """Forget the stream; False when it was already gone (another process closed it)."""
        return self._db.execute("DELETE FROM stream WHERE id = ?", (stream_id,)).rowcount == 1

    def expired(self, now_ms: int) -> list[StreamRecord]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM stream WHERE expires_ms <= ?", (now_ms,)).fetchall()
        return [_record(row) for row in rows]

    def temps(self) -> set[str]:
        """The temporary file names of every recorded write stream."""
        return {row[0] for row in self._db.execute("SELECT temp FROM stream WHERE temp IS NOT NULL")}


def _record(row: tuple[object, ...]) -> StreamRecord:
    (stream_id, owner, kind, path, temp, position, overwrite, perm, replication, blocksize, expires_ms) = row
    assert isinstance(stream_id, int) and isinstance(owner, str) and isinstance(kind, str)
    assert isinstance(path, str) and (temp is None or isinstance(temp, str)) and isinstance(position, int)
    assert isinstance(overwrite, int) and (perm is None or isinstance(perm, int))
    assert isinstance(replication, int) and isinstance(blocksize, int) and isinstance(expires_ms, int)
    return StreamRecord(
        stream_id, owner, StreamKind(kind), path, temp, position, bool(overwrite), perm, replication, blocksize,
        expires_ms,
    )
