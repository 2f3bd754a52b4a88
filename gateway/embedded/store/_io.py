"""File contents moved on a thread pool, one bounded chunk at a time.

:class:`FileSink` and :class:`FileSource` own one descriptor each.  Every
call on them runs on the I/O pool; a lock orders them, so ``close`` (run
after a cancelled request) waits for a read or write that is still running
on a worker instead of closing a descriptor under it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import TypeVar

__all__ = ("CHUNK_SIZE", "FileSink", "FileSource", "finish", "finish_future")

CHUNK_SIZE = 1 << 20

_T = TypeVar("_T")


class FileSink:
    """Appends bytes to an open file; can cut it back to where it started."""

    __slots__ = ("_fd", "_lock", "start", "written")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self.start = os.fstat(fd).st_size
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        with self._lock:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
                self.written += n

    def sync(self) -> None:
        with self._lock:
            os.fsync(self._fd)

    def truncate_back(self) -> None:
        """Undo every write: cut the file to the size it had when opened."""
        with self._lock:
            if self._fd >= 0:
                os.ftruncate(self._fd, self.start)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class FileSource:
    """Reads an open file from a position, chunk by chunk."""

    __slots__ = ("_fd", "_lock", "position")

    def __init__(self, fd: int, position: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self.position = position

    def read(self, size: int) -> bytes:
        with self._lock:
            data = os.pread(self._fd, size, self.position)
            self.position += len(data)
            return data

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def try_close(self) -> bool:
        """Close now, unless a read still runs on the pool: then False, and nothing is done."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        finally:
            self._lock.release()
        return True


async def finish(pool: Executor, func: Callable[[], _T]) -> _T:
    """Run ``func`` on ``pool`` to completion even if the caller is cancelled meanwhile.

    For clean-up after a failure: the cancellation is delivered again once
    ``func`` is done.
    """
    loop = asyncio.get_running_loop()
    try:
        fut: Awaitable[_T] = loop.run_in_executor(pool, func)
    except RuntimeError:  # the pool is shut down: the app is stopping
        return func()
    return await finish_future(fut)


async def finish_future(fut: Awaitable[_T]) -> _T:
    """Await ``fut`` to completion even if the caller is cancelled meanwhile (see :func:`finish`)."""
    task = asyncio.ensure_future(fut)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result
