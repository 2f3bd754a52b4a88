"""The store: the file system operations over one served root, with no REST API.

:class:`Store` owns the namespace (host tree, metadata, permission checks)
and the I/O pool.  Each operation takes parsed arguments (a principal, HDFS
path parts, plain values) and returns a plain result or raises an
:class:`FsError`; how a request names them and how a result or a failure
looks on the wire is each face's business.  Contents move through bounded
chunks on the pool: a body is read from a :class:`Body` (aiohttp's
``StreamReader`` is one) and a read is handed out as a :class:`Reader`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import stat
import struct
import time
import uuid
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ...config import EmbeddedConfig
from ._errors import BadRequestError, NotFoundError, QuotaExceededError
from ._glob import Glob
from ._host import HostTree, is_missing, remove_tree_at
from ._io import CHUNK_SIZE, FileSink, FileSource, finish, finish_future
from ._meta import InodeMeta, MetaStore
from ._namespace import (
    DEFAULT_BLOCK_SIZE,
    TMP_DIR,
    TRASH_DIR,
    Inode,
    Namespace,
    host_failure,
)
from ._paths import RESERVED_NAME, Parts, check_not_reserved, check_path_limits, hdfs_path, parse_hdfs_path
from ...groups import GroupSource
from ._perm import DEFAULT_DIR_PERM, FsAction, GroupMap, Principal, parse_groups
from ._streams import StreamKind, StreamRecord, StreamTable

__all__ = ("Body", "ContentSummary", "FileChecksum", "Page", "Reader", "Store")

logger = logging.getLogger("gateway.embedded")

_T = TypeVar("_T")

_IO_THREADS = 4
# Directories mkdirs creates in place, holding the namespace lock; a longer
# chain is made aside first (see Namespace.make_dirs).
_MKDIRS_IN_PLACE = 32
_MKDIRS_TRIES = 3  # times a staged chain is made again when the path changed meanwhile
# A lookup costs two system calls and a metadata row a name: one of a path
# with more names than this runs on the lookup thread, not on the event loop.
_LOOKUP_ON_LOOP = 64
STREAM_TTL_MS = 10 * 60 * 1000  # an open stream unused this long expires
STREAM_SWEEP_S = 60.0  # how often the app's lifetime removes expired streams
# How many ls_limit batches of names one pass over a directory keeps (see
# Store.list_pages): fewer passes over a big directory against more names held.
_PAGES_PER_PASS = 8
# The most entries a streamed listing stats, looks up and renders at a time
# on the event loop: about 4 ms of it on a 2-core machine (1,000 take 15).
_STREAM_PAGE = 256


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _flock(fd: int) -> None:
    """An exclusive ``flock`` on ``fd``, waited for without holding a thread.

    It orders appends, truncates and concats of one file across every
    process serving the root (the in-process lock orders them within one);
    it goes when ``fd`` is closed.
    """
    delay = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)


def _remove_unless_in_use(path: str) -> None:
    """Remove a leftover temporary file, unless a live upload (of any process) holds its lock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP):  # gone meanwhile, or a symbolic link: remove the name
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        raise
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another process is uploading into it
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    finally:
        os.close(fd)


def _clear_scratch(state: Path, name: str, live: set[str] | None) -> None:
    """Empty the scratch directory ``name`` of the state directory of what a crash left.

    ``live`` names the temporary files of open write streams (kept), or is
    ``None`` for the trash.  Nothing here stops a start: something in the way
    of the directory itself is moved aside, and an entry that cannot be
    removed (however deep, however damaged) is logged and left for the next
    start.  Another process may be removing the same entries meanwhile.
    """
    scratch = state / name
    if scratch.is_symlink() or (scratch.exists() and not scratch.is_dir()):
        aside = state / f"{name}.damaged-{uuid.uuid4().hex}"
        logger.error("%s is not a directory; moved aside to %s", scratch, aside)
        os.rename(scratch, aside)
    scratch.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for entry in os.listdir(fd):  # of interrupted uploads and deletes
            if live is not None and entry in live:
                continue
            try:
                if live is not None and not stat.S_ISDIR(os.stat(entry, dir_fd=fd, follow_symlinks=False).st_mode):
                    _remove_unless_in_use(str(scratch / entry))
                else:
                    remove_tree_at(fd, entry)
            except FileNotFoundError:
                pass  # removed meanwhile (by another process)
            except OSError as exc:
                logger.error("could not remove %s from %s (%s); it stays until a later start", entry, scratch, exc)
    finally:
        os.close(fd)


def _close_on(thread: ThreadPoolExecutor, ns: Namespace | None) -> None:
    """Close ``ns``, whose database connection belongs to ``thread``, then the thread."""
    if ns is not None:
        thread.submit(ns.store.close).result()
        ns.close()
    thread.shutdown(wait=True)


class Body(Protocol):
    """A request body being received (aiohttp's ``StreamReader``)."""

    async def readany(self) -> bytes: ...

    def read_nowait(self, n: int = -1) -> bytes: ...

    def is_eof(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ContentSummary:
    """What a subtree holds: directories (itself included), files, bytes, bytes times replication."""

    directories: int
    files: int
    length: int
    space_consumed: int


@dataclass(frozen=True, slots=True)
class Page:
    """One batch of a listing and how many entries follow it (HDFS's ``remainingEntries``)."""

    entries: list[Inode]
    remaining: int


@dataclass(frozen=True, slots=True)
class FileChecksum:
    """HDFS's MD5-of-MD5-of-CRC file checksum: ``algorithm`` and its 28 ``data`` bytes."""

    algorithm: str
    data: bytes


_BYTES_PER_CRC = 512


def _md5_of_md5_of_crc32(fd: int, size: int, block_size: int) -> FileChecksum:
    """What HDFS computes for a file written with CRC32 chunk checksums, from its bytes.

    A CRC32 per 512 bytes, an MD5 of each block's CRCs, an MD5 of the block
    MD5s; bytes = bytesPerCRC (int), crcPerBlock (long, 0 for one block), MD5.
    """
    file_md5 = hashlib.md5(usedforsecurity=False)
    position = blocks = 0
    while position < size:
        block_end = min(position + block_size, size)
        block_md5 = hashlib.md5(usedforsecurity=False)
        while position < block_end:
            data = memoryview(os.pread(fd, min(CHUNK_SIZE, block_end - position), position))
            if not data:
                raise BadRequestError("The file changed while its checksum was computed")
            crcs = [zlib.crc32(data[i : i + _BYTES_PER_CRC]) for i in range(0, len(data), _BYTES_PER_CRC)]
            block_md5.update(struct.pack(f">{len(crcs)}I", *crcs))
            position += len(data)
        file_md5.update(block_md5.digest())
        blocks += 1
    crc_per_block = block_size // _BYTES_PER_CRC if blocks > 1 else 0
    algorithm = f"MD5-of-{crc_per_block}MD5-of-{_BYTES_PER_CRC}CRC32"
    return FileChecksum(algorithm, struct.pack(">iq", _BYTES_PER_CRC, crc_per_block) + file_md5.digest())


SMALL_READ = 64 * 1024
"""Reads up to this size are done on the event loop (:meth:`Reader.read_small`)."""


class Reader:
    """An open read of ``remaining`` bytes of ``inode``; close it when done."""

    __slots__ = ("_pool", "_source", "inode", "remaining")

    def __init__(self, pool: ThreadPoolExecutor, source: FileSource, inode: Inode, remaining: int) -> None:
        self._pool = pool
        self._source = source
        self.inode = inode
        self.remaining = remaining

    async def read(self, size: int) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the file: it may shrink under us)."""
        loop = asyncio.get_running_loop()
        data: bytes = await loop.run_in_executor(self._pool, self._source.read, size)
        self.remaining -= len(data)
        return data

    def read_small(self, size: int) -> bytes:
        """Up to ``size`` bytes read here, on the event loop: for reads so small (at most
        :data:`SMALL_READ`) that handing them to the pool costs more than the read."""
        if size > SMALL_READ:
            raise ValueError(f"read_small: {size} bytes is not small")
        data = self._source.read(size)
        self.remaining -= len(data)
        return data

    async def close(self) -> None:
        if not self._source.try_close():  # a read cut off by a cancel still runs on the pool
            await finish(self._pool, self._source.close)


class Store:
    """The resources of one embedded store, opened by :meth:`start`, closed by :meth:`stop`."""

    def __init__(self, config: EmbeddedConfig, groups: GroupSource | None = None) -> None:
        """``groups``: where users' groups come from (``[groups]``); by default ``config.groups``."""
        try:
            umask = int(config.umask, 8)
            if not 0 <= umask <= 0o777:
                raise ValueError
        except ValueError:
            raise ValueError(f"embedded.umask = {config.umask!r}: must be an octal number up to 777") from None
        self.root = Path(config.root)
        self.groups = GroupMap(
            parse_groups(config.groups) if groups is None else groups,
            superuser=config.superuser,
            supergroup=config.supergroup,
        )
        self.umask = umask
        if config.ls_limit <= 0:
            raise ValueError(f"embedded.ls_limit = {config.ls_limit}: must be a positive number of entries")
        self.ls_limit = config.ls_limit
        if config.max_write_streams <= 0:
            raise ValueError(f"embedded.max_write_streams = {config.max_write_streams}: must be a positive number")
        self.max_write_streams = config.max_write_streams
        self._ns: Namespace | None = None  # lookups, on the event loop
        self._writer: Namespace | None = None  # changes, on the namespace thread (see _commit)
        self._writing: ThreadPoolExecutor | None = None
        self._looker: Namespace | None = None  # lookups of long paths, on the lookup thread (see _look)
        self._looking: ThreadPoolExecutor | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._streams: StreamTable | None = None
        self.stream_ttl_ms = STREAM_TTL_MS
        self.stream_sweep_s = STREAM_SWEEP_S
        self._append_locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._passes = asyncio.Semaphore(1)  # listing passes over a directory (see _next_names)

    @property
    def ns(self) -> Namespace:
        if self._ns is None:
            raise RuntimeError("the embedded backend is not started")
        return self._ns

    @property
    def streams(self) -> StreamTable:
        if self._streams is None:
            raise RuntimeError("the embedded backend is not started")
        return self._streams

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            raise RuntimeError("the embedded backend is not started")
        return self._pool

    # -- lifetime ------------------------------------------------------------------

    def start(self) -> None:
        """Open the root, the metadata store and the I/O pool; clear leftovers of a crash."""
        self.root.mkdir(parents=True, exist_ok=True)
        state = self.root / RESERVED_NAME
        if state.is_symlink():
            raise RuntimeError(f"{state} must be a directory, not a symbolic link")
        state.mkdir(mode=0o700, exist_ok=True)
        # Several processes may start on one root at once (workers): one at a
        # time creates the databases and clears the leftovers.
        lock = os.open(state / "start.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            streams = StreamTable(state / "streams.sqlite3")
            try:
                self._open(state, streams)
            except BaseException:
                streams.close()
                raise
        finally:
            os.close(lock)
        self._streams = streams

    def _open(self, state: Path, streams: StreamTable) -> None:
        for record in streams.expired(_now_ms()):
            streams.remove(record.id)
        live = streams.temps()  # write streams still open: their bytes stay
        for name in (TMP_DIR[-1], TRASH_DIR[-1]):
            _clear_scratch(state, name, live if name == TMP_DIR[-1] else None)
        with contextlib.ExitStack() as undo:
            host = HostTree(self.root)
            undo.callback(host.close)
            ns = self._namespace(host, state)
            undo.callback(ns.close)
            undo.callback(ns.store.close)
            writing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-ns")
            undo.callback(writing.shutdown)
            # The writer's database connection is made, used and closed on its thread.
            writer = writing.submit(self._open_writer, host, state).result()
            undo.callback(lambda: writing.submit(writer.store.close).result())
            undo.callback(writer.close)
            looking = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-lookup")
            undo.callback(looking.shutdown)
            looker = looking.submit(self._namespace, host, state).result()
            self._ns, self._writer, self._writing = ns, writer, writing
            self._looker, self._looking = looker, looking
            self._pool = ThreadPoolExecutor(max_workers=_IO_THREADS, thread_name_prefix="embedded-io")
            undo.pop_all()

    def _namespace(self, host: HostTree, state: Path) -> Namespace:
        store = MetaStore(state / "meta.sqlite3")
        try:
            return Namespace(host, store, self.groups, umask=self.umask, lock_file=state / "namespace.lock")
        except BaseException:
            store.close()
            raise

    def _open_writer(self, host: HostTree, state: Path) -> Namespace:
        """The namespace that changes things, on its thread; ``/`` and ``/user`` made if missing."""
        writer = self._namespace(host, state)
        try:
            with writer.locked():
                if writer.store.get("/") is None:
                    root = InodeMeta(self.groups.superuser, self.groups.supergroup, DEFAULT_DIR_PERM, 0, 0)
                    writer.store.put("/", root)
                system = Principal(self.groups.superuser, frozenset(), True)
                writer.ensure_dir(system, ("user",), DEFAULT_DIR_PERM)
        except BaseException:
            writer.close()
            writer.store.close()
            raise
        return writer

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._looking is not None:
            _close_on(self._looking, self._looker)
            self._looking, self._looker = None, None
        if self._writing is not None:
            _close_on(self._writing, self._writer)
            self._writing, self._writer = None, None
        if self._ns is not None:
            self._ns.store.close()
            self._ns.host.close()
            self._ns.close()
            self._ns = None
        if self._streams is not None:
            self._streams.close()
            self._streams = None

    async def _look(self, parts: Parts, step: Callable[[Namespace], _T]) -> _T:
        """Run ``step``, lookups that hold nothing open, here for a short path and on the
        lookup thread (its own namespace and connection) for a long one, which costs more."""
        if len(parts) <= _LOOKUP_ON_LOOP:
            return step(self.ns)
        if self._looking is None or self._looker is None:
            raise RuntimeError("the embedded backend is not started")
        looker = self._looker
        return await asyncio.get_running_loop().run_in_executor(self._looking, step, looker)

    async def _commit(self, step: Callable[[Namespace], _T]) -> _T:
        """Run ``step`` (a change) on the namespace thread, holding the namespace lock.

        One step at a time in this process (one thread) and across processes
        (the lock); the event loop only waits for the result, serving other
        requests meanwhile.  A cancelled caller still lets the step finish:
        it is atomic.
        """
        if self._writing is None or self._writer is None:
            raise RuntimeError("the embedded backend is not started")
        writer = self._writer

        def locked() -> _T:
            with writer.locked():
                return step(writer)

        return await finish(self._writing, locked)

    @contextlib.asynccontextmanager
    async def append_lock(self, path: str) -> AsyncIterator[None]:
        """Serialise appends to one file in this process, so a failed one can be cut back cleanly.

        Across processes, :func:`_flock` on the open file does the same.
        """
        lock, users = self._append_locks.get(path, (asyncio.Lock(), 0))
        self._append_locks[path] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._append_locks[path]
            if users == 1:
                del self._append_locks[path]
            else:
                self._append_locks[path] = (lock, users - 1)

    async def _locked(self, fd: int) -> None:
        """Wait for the cross-process lock of an open file; close ``fd`` if the wait is cut short."""
        try:
            await _flock(fd)
        except BaseException:
            await finish(self.pool, lambda: os.close(fd))
            raise

    async def _new_temp(self, parts: Parts) -> tuple[Parts, int]:
        """A fresh temporary file for ``parts``, open and locked (marked in use), made on the I/O pool.

        Not on the event loop: creating a file waits for the file system's
        journal, which under a burst of uploads was measured holding a
        worker's loop 50-100 ms.  A caller cancelled meanwhile leaves nothing:
        the file is closed and removed once made.
        """
        ns = self.ns

        def make() -> tuple[Parts, int]:
            temp, fd = ns.new_temp()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: never contended
            except BaseException:
                os.close(fd)
                ns.discard(temp)
                raise
            return temp, fd

        def drop(done: asyncio.Future[tuple[Parts, int]]) -> None:
            if not done.cancelled() and done.exception() is None:
                temp, fd = done.result()
                os.close(fd)
                with contextlib.suppress(RuntimeError):  # the pool is shut down: the start-up sweep removes it
                    self.pool.submit(ns.discard, temp)

        made = asyncio.get_running_loop().run_in_executor(self.pool, make)
        try:
            return await asyncio.shield(made)
        except asyncio.CancelledError:
            made.add_done_callback(drop)
            raise
        except OSError as exc:
            raise host_failure(exc, hdfs_path(parts)) from exc

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, func, *args)

    def principal(self, user: str) -> Principal:
        """The principal a verified user name acts as (with its groups)."""
        return self.groups.principal(user)

    # -- reading ------------------------------------------------------------------

    async def status(self, principal: Principal, parts: Parts) -> Inode:
        check_not_reserved(parts)
        return await self._look(parts, lambda n: n.existing(principal, parts))

    async def list_batch(self, principal: Principal, parts: Parts, start_after: str) -> Page:
        """The first ``ls_limit`` entries after ``start_after`` in name order (HDFS's ``getListing``).

        A file is its own listing.  Each call reads the directory once,
        holding at most ``ls_limit`` names, whatever its size.
        """
        check_not_reserved(parts)
        target = await self._look(parts, lambda n: n.listable(principal, parts))
        if not target.is_dir:
            return Page([target], 0)
        names, remaining = await self._next_names(target, start_after, self.ls_limit, None)
        return Page(await self._entries(target, names), remaining)

    async def list_pages(
        self, principal: Principal, parts: Parts, glob: Glob | None = None
    ) -> AsyncGenerator[Page, None]:
        """Every entry (only names ``glob`` matches, when given), in name order, a page at a time.

        Yields at least one page, the first once the listing is allowed, so a
        refusal comes before anything is sent.  Each pass over the directory
        keeps the next :data:`_PAGES_PER_PASS` times ``ls_limit`` names, then
        stats and yields them in pages of at most :data:`_STREAM_PAGE`:
        memory stays bounded by ``ls_limit`` however big the directory and
        however slowly the caller takes pages, and the event loop runs
        between pages.  As the NameNode's streamed
        listing does, each pass checks the permission again and goes on after
        the last name listed, so entries made or removed meanwhile show or
        not, but none shows twice.
        """
        check_not_reserved(parts)
        after = ""
        while True:
            target = await self._look(parts, lambda n: n.listable(principal, parts))
            if not target.is_dir:
                if not after:  # a file lists itself; a directory replaced by one meanwhile ends here
                    matched = glob is None or glob.matches(target.parts[-1] if target.parts else "")
                    yield Page([target] if matched else [], 0)
                return
            names, rest = await self._next_names(target, after, self.ls_limit * _PAGES_PER_PASS, glob)
            if not names:
                yield Page([], 0)
                return
            page = min(self.ls_limit, _STREAM_PAGE)
            for start in range(0, len(names), page):
                batch = names[start : start + page]
                yield Page(await self._entries(target, batch), len(names) - start - len(batch) + rest)
            if not rest:
                return
            after = names[-1]

    async def _next_names(self, directory: Inode, after: str, count: int, glob: Glob | None) -> tuple[list[str], int]:
        """:meth:`HostTree.next_names` on the I/O pool: a big directory's pass never holds the loop."""
        hidden = RESERVED_NAME if not directory.parts else None
        accept = None if glob is None else glob.matches
        try:
            # A pass is Python work holding the GIL: two at once would take the
            # event loop's share of it, not finish sooner.  So one at a time.
            async with self._passes:
                found: tuple[list[str], int] = await self.run(
                    self.ns.host.next_names, directory.parts, after, count, accept, hidden
                )
        except OSError as exc:
            raise self.ns.listing_failure(exc, directory) from exc
        return found

    async def _entries(self, directory: Inode, names: list[str]) -> list[Inode]:
        """The inodes of ``names`` in ``directory`` (stat on the I/O pool), those still there."""
        try:
            found = await self.run(self.ns.host.stat_names, directory.parts, names)
        except OSError as exc:
            raise self.ns.listing_failure(exc, directory) from exc
        return self.ns.entries_at(directory, found)

    async def content_summary(self, principal: Principal, parts: Parts) -> ContentSummary:
        """Count the subtree at ``parts``; READ_EXECUTE is needed on every directory in it, as in HDFS.

        Directories are listed one at a time, a page at a time
        (:meth:`list_pages`), letting other requests run in between; one that
        vanishes meanwhile is skipped.
        """
        check_not_reserved(parts)
        top = await self._look(parts, lambda n: n.existing(principal, parts))
        if not top.is_dir:
            return ContentSummary(0, 1, top.length, top.length * top.meta.replication)
        directories = files = length = space = 0
        pending = [top]
        while pending:
            directory = pending.pop()
            directories += 1
            try:
                async for page in self.list_pages(principal, directory.parts):
                    for entry in page.entries:  # (a directory replaced by a file meanwhile lists that file)
                        if entry.is_dir:
                            pending.append(entry)
                        else:
                            files += 1
                            length += entry.length
                            space += entry.length * entry.meta.replication
            except NotFoundError:
                if directory is top:
                    raise
        return ContentSummary(directories, files, length, space)

    async def file_checksum(self, principal: Principal, parts: Parts) -> FileChecksum:
        """The file's HDFS checksum (READ on it), computed on the I/O pool."""
        check_not_reserved(parts)
        inode, fd = self.ns.open_for_read(principal, parts)
        try:
            size = os.fstat(fd).st_size
            block_size = max(inode.meta.blocksize, _BYTES_PER_CRC)
            checksum: FileChecksum = await self.run(_md5_of_md5_of_crc32, fd, size, block_size)
            return checksum
        finally:
            await finish(self.pool, lambda: os.close(fd))

    def home(self, principal: Principal) -> Parts:
        return ("user", principal.name)

    async def open(self, principal: Principal, parts: Parts, offset: int, length: int) -> Reader:
        """Open a read from ``offset`` (-1: 0) of ``length`` bytes (-1: to the end)."""
        check_not_reserved(parts)
        inode, fd = self.ns.open_for_read(principal, parts)
        source = FileSource(fd, max(offset, 0))
        try:
            size = os.fstat(fd).st_size
            if source.position > size:
                raise BadRequestError(f"Offset {offset} is beyond the end of {inode.path} ({size} bytes)")
        except BaseException:
            await finish(self.pool, source.close)
            raise
        remaining = size - source.position
        if length != -1:
            remaining = min(length, remaining)
        return Reader(self.pool, source, inode, remaining)

    # -- writing ------------------------------------------------------------------

    async def _append_body(self, fd: int, body: Body, expected: int | None) -> int:
        """Lock ``fd`` (open for appending), append the whole ``body`` and sync; return the bytes written.

        On any failure the file is cut back to its old size.  ``fd`` is closed either way.
        """
        await self._locked(fd)
        sink = FileSink(fd)
        done = False
        try:
            await self._receive(body, expected, sink)
            await self.run(sink.sync)
            done = True
        finally:
            if not done:
                await finish(self.pool, sink.truncate_back)
            await finish(self.pool, sink.close)
        return sink.written

    async def _receive(self, body: Body, expected: int | None, sink: FileSink) -> None:
        """Copy the whole body into ``sink``; raise unless it all arrived.

        One write runs on the pool while the next batch is read from the
        client, so socket and file work overlap.  Whatever happens, no write
        is left queued or running when this returns or raises: the caller's
        clean-up (cutting the file back, discarding it) comes after the last.
        """
        loop = asyncio.get_running_loop()
        writing: asyncio.Future[None] | None = None
        try:
            while True:
                chunk = await body.readany()
                if not chunk:
                    break
                # Batch what has already arrived into one write, but never
                # wait for more while holding it: a stalled upload must not
                # keep a buffer (memory follows connections, not their stalls).
                pieces, size = [chunk], len(chunk)
                while size < CHUNK_SIZE and (more := body.read_nowait(CHUNK_SIZE - size)):
                    pieces.append(more)
                    size += len(more)
                data = chunk if len(pieces) == 1 else b"".join(pieces)
                del chunk, pieces
                if writing is not None:
                    # In order, and at most one batch waits beside the one being
                    # written.  Shielded: a cancelled request must not cancel a
                    # write the pool may already have begun.
                    await asyncio.shield(writing)
                writing = loop.run_in_executor(self.pool, sink.write, data)
                del data
            if writing is not None:
                await asyncio.shield(writing)
        finally:
            if writing is not None:
                if not writing.done():
                    # The error already on its way says more than this write's.
                    with contextlib.suppress(Exception):
                        await finish_future(writing)
                elif not writing.cancelled():
                    writing.exception()  # retrieved, so asyncio does not report it again
        if not body.is_eof() or (expected is not None and sink.written != expected):
            raise BadRequestError("Incomplete request body")

    async def create(
        self,
        principal: Principal,
        parts: Parts,
        body: Body,
        expected: int | None,
        *,
        overwrite: bool,
        perm: int | None,
        replication: int,
        block_size: int,
    ) -> None:
        """Write ``body`` (``expected`` bytes when known) as the file at ``parts``, atomically.

        ``perm`` ``None`` is the default (644 minus the umask); ``block_size``
        -1 the default.  Nothing is visible until the whole body is in.
        """
        check_not_reserved(parts)
        check_path_limits("create", parts)
        ns = self.ns
        perm = ns.default_perm(False) if perm is None else perm
        await self._commit(lambda w: w.ensure_home(principal.name, parts, inclusive=False))
        await self._look(parts, lambda n: n.check_create(principal, parts, overwrite))  # refuse before the body
        temp, fd = await self._new_temp(parts)
        sink = FileSink(fd)
        committed = False
        try:
            await self._receive(body, expected, sink)
            await self.run(sink.sync)
            await finish(self.pool, sink.close)
            await self._commit_create(
                principal, parts, temp, overwrite=overwrite, perm=perm, replication=replication, block_size=block_size
            )
            committed = True
        finally:
            if not committed:
                await finish(self.pool, sink.close)
                await finish(self.pool, lambda: ns.discard(temp))

    async def append(self, principal: Principal, parts: Parts, body: Body, expected: int | None) -> None:
        """Append ``body`` to the file; on failure the file is cut back to its old size."""
        check_not_reserved(parts)
        async with self.append_lock(hdfs_path(parts)):
            _inode, fd = self.ns.open_for_append(principal, parts)
            await self._append_body(fd, body, expected)

    async def truncate(self, principal: Principal, parts: Parts, new_length: int) -> None:
        """Cut the file to ``new_length`` bytes (WRITE on it); longer than the file is a bad request."""
        check_not_reserved(parts)
        async with self.append_lock(hdfs_path(parts)):
            inode, fd = self.ns.open_for_append(principal, parts)
            try:
                await _flock(fd)
                size = os.fstat(fd).st_size
                if new_length > size:
                    raise BadRequestError(
                        f"Cannot truncate {inode.path} to a larger length: {new_length} > {size}"
                    )
                try:
                    await self.run(os.ftruncate, fd, new_length)
                except OSError as exc:
                    raise host_failure(exc, inode.path) from exc
            finally:
                await finish(self.pool, lambda: os.close(fd))

    async def concat(self, principal: Principal, parts: Parts, sources: Sequence[Parts]) -> None:
        """Append the sources' contents to the file at ``parts`` in order, then remove the sources.

        As HDFS: the sources are distinct non-empty files in the target's
        directory, other than the target; WRITE on the target, READ on each
        source and WRITE on the directory (the sticky bit honoured).  If the
        copy fails the target is cut back and the sources stay.
        """
        check_not_reserved(parts)
        for src in sources:
            check_not_reserved(src)
        if not sources:
            raise BadRequestError("Invalid value for parameter [sources]: no source files")
        if not parts:
            raise BadRequestError("concat: the target is a directory: /")
        ns = self.ns
        async with self.append_lock(hdfs_path(parts)):
            target = ns.existing(principal, parts)
            if target.is_dir:
                raise BadRequestError(f"concat: the target is a directory: {target.path}")
            parent = ns.resolve(principal, parts[:-1]).target
            assert parent is not None
            inodes: tuple[Inode, ...] = ()
            for src in sources:
                inode = ns.existing(principal, src)
                if src == parts or src in sources[: len(inodes)]:
                    raise BadRequestError(f"concat: {inode.path} is the target or given twice")
                if inode.is_dir or inode.length == 0:
                    raise BadRequestError(f"concat: source {inode.path} is a directory or empty")
                if src[:-1] != parts[:-1]:
                    raise BadRequestError(f"concat: source {inode.path} is not in the directory of {target.path}")
                ns.require(principal, inode, FsAction.READ)
                ns.require_sticky_ok(principal, parent, inode)
                inodes += (inode,)
            ns.require(principal, parent, FsAction.WRITE)
            _target, fd = ns.open_for_append(principal, parts)
            await self._locked(fd)
            sink = FileSink(fd)
            done = False
            try:
                for src in sources:
                    _inode, src_fd = ns.open_for_read(principal, src)
                    source = FileSource(src_fd, 0)
                    try:
                        while data := await self.run(source.read, CHUNK_SIZE):
                            await self.run(sink.write, data)
                            del data
                    finally:
                        await finish(self.pool, source.close)
                await self.run(sink.sync)
                done = True
            finally:
                if not done:
                    await finish(self.pool, sink.truncate_back)
                await finish(self.pool, sink.close)
            for inode in inodes:
                trash = await self._commit(lambda w: w.unlink_to_trash(inode.parts))
                if trash is not None:
                    try:
                        await finish(self.pool, lambda: ns.discard(trash))
                    except OSError:
                        logger.warning("could not remove %s from the trash; it goes at the next start", inode.path)

    async def mkdirs(self, principal: Principal, parts: Parts, perm: int | None) -> None:
        check_not_reserved(parts)
        check_path_limits("mkdirs", parts)
        mode = self.ns.default_perm(True) if perm is None else perm
        await self._make_dirs(principal, parts, mode, home=True)

    async def _make_dirs(self, principal: Principal, parts: Parts, mode: int, *, home: bool = False) -> None:
        """``mkdirs`` (and the user's home first when ``home``): short chains in one locked step,
        longer ones made aside on the pool and placed in one (see :meth:`Namespace.make_dirs`)."""
        ns = self.ns

        def first(w: Namespace) -> int | None:
            if home:
                w.ensure_home(principal.name, parts, inclusive=True)
            return w.make_dirs(principal, parts, mode, _MKDIRS_IN_PLACE)

        existing = await self._commit(first)
        tries = 1
        while existing is not None:
            staged: Parts | None = await self.run(ns.stage_chain, parts, existing)
            if staged is not None and await self._place(principal, parts, existing, staged, mode):
                return
            tries += 1
            at_most = _MKDIRS_IN_PLACE if tries <= _MKDIRS_TRIES else len(parts)  # at last: in place
            existing = await self._commit(lambda w: w.make_dirs(principal, parts, mode, at_most))

    async def _place(self, principal: Principal, parts: Parts, existing: int, staged: Parts, mode: int) -> bool:
        """Move a staged chain into place (see :meth:`Namespace.place_chain`); discard it if it is not."""
        try:
            return await self._commit(lambda w: w.place_chain(principal, parts, existing, staged, mode))
        finally:
            try:
                await finish(self.pool, lambda: self.ns.discard(staged))  # gone once placed
            except OSError:
                logger.warning("could not remove a staged mkdirs of %s; it goes at the next start", hdfs_path(parts))

    async def _commit_create(
        self, principal: Principal, parts: Parts, temp: Parts, *, overwrite: bool, perm: int, replication: int,
        block_size: int,
    ) -> None:
        """Move a complete upload into place (see :meth:`Namespace.commit_create`), its missing
        parents made first as ``mkdirs`` makes them when there are many."""

        def commit(w: Namespace, make_parents: int) -> bool:
            return w.commit_create(
                principal, parts, temp, overwrite=overwrite, perm=perm, replication=replication,
                block_size=DEFAULT_BLOCK_SIZE if block_size == -1 else block_size, make_parents=make_parents,
            )

        if not await self._commit(lambda w: commit(w, _MKDIRS_IN_PLACE)):
            await self._make_dirs(principal, parts[:-1], self.ns.default_perm(True) | 0o300)
            await self._commit(lambda w: commit(w, len(parts)))

    async def rename(self, principal: Principal, src: Parts, dst: Parts) -> bool:
        check_not_reserved(src)
        check_not_reserved(dst)
        check_path_limits("rename", dst)

        def step(w: Namespace) -> bool:
            w.ensure_home(principal.name, dst, inclusive=False)
            return w.rename(principal, src, dst)

        return await self._commit(step)

    async def delete(self, principal: Principal, parts: Parts, recursive: bool) -> bool:
        check_not_reserved(parts)
        ns = self.ns
        if not parts:
            ns.existing(principal, parts)
            return False  # HDFS never deletes the root
        target, walk = await self._look(parts, lambda n: n.check_delete(principal, parts, recursive))
        below: list[str] | None = None
        if walk:  # the subtree's walk may be long: on the pool, before the locked step
            try:
                below = await self.run(ns.host.subdirectories, parts)
            except OSError as exc:
                raise NotFoundError(f"File does not exist: {target.path}") from exc
        # Checks again: it may have changed meanwhile.
        trash = await self._commit(lambda w: w.delete(principal, parts, recursive, below))
        if trash is not None:
            try:
                await finish(self.pool, lambda: ns.discard(trash))
            except OSError:
                logger.warning("could not remove deleted %s from the trash; it goes at the next start", target.path)
        return True

    # -- attributes ------------------------------------------------------------------

    async def set_owner(self, principal: Principal, parts: Parts, owner: str | None, group: str | None) -> None:
        check_not_reserved(parts)
        await self._commit(lambda w: w.set_owner(principal, parts, owner, group))

    async def set_permission(self, principal: Principal, parts: Parts, perm: int | None) -> None:
        check_not_reserved(parts)
        await self._commit(lambda w: w.set_permission(principal, parts, perm))

    async def set_times(self, principal: Principal, parts: Parts, mtime_ms: int, atime_ms: int) -> None:
        check_not_reserved(parts)
        await self._commit(lambda w: w.set_times(principal, parts, mtime_ms, atime_ms))

    async def set_replication(self, principal: Principal, parts: Parts, replication: int) -> bool:
        check_not_reserved(parts)
        return await self._commit(lambda w: w.set_replication(principal, parts, replication))

    # -- streams ------------------------------------------------------------------

    def expire_streams(self) -> None:
        """Forget expired streams and remove their bytes (on open, and every ``stream_sweep_s``)."""
        for record in self.streams.expired(_now_ms()):
            if self.streams.remove(record.id) and record.temp is not None:
                self.ns.discard((*TMP_DIR, record.temp))

    def _stream(self, principal: Principal, stream_id: int, kind: StreamKind | None) -> StreamRecord:
        """The caller's open stream; anyone else's, an expired or unknown one are all 404."""
        record = self.streams.get(stream_id)
        if record is None or record.owner != principal.name or record.expires_ms <= _now_ms():
            raise NotFoundError(f"Stream {stream_id} does not exist")
        if kind is not None and record.kind is not kind:
            raise BadRequestError(f"Stream {stream_id} is not open for {kind.value}ing")
        return record

    async def open_read_stream(self, principal: Principal, parts: Parts) -> int:
        """Check that the principal may read the file and open a read stream on it; return its id."""
        check_not_reserved(parts)
        self.expire_streams()
        inode, fd = self.ns.open_for_read(principal, parts)
        await finish(self.pool, lambda: os.close(fd))
        return self.streams.add_read(principal.name, inode.path, expires_ms=_now_ms() + self.stream_ttl_ms)

    async def open_write_stream(
        self, principal: Principal, parts: Parts, *, overwrite: bool, perm: int | None, replication: int,
        block_size: int,
    ) -> int:
        """Open a stream that writes a new file, visible only once the stream is closed; return its id."""
        check_not_reserved(parts)
        check_path_limits("create", parts)
        self.expire_streams()
        await self._commit(lambda w: w.ensure_home(principal.name, parts, inclusive=False))
        await self._look(parts, lambda n: n.check_create(principal, parts, overwrite))
        temp, fd = await self._new_temp(parts)  # locked: in use until recorded (see start)
        try:
            now = _now_ms()
            stream_id = self.streams.add_write(
                principal.name, hdfs_path(parts), expires_ms=now + self.stream_ttl_ms, temp=temp[-1],
                overwrite=overwrite, perm=perm, replication=replication, blocksize=block_size,
                most=self.max_write_streams, now_ms=now,
            )
        finally:
            await finish(self.pool, lambda: os.close(fd))
        if stream_id is None:
            await finish(self.pool, lambda: self.ns.discard(temp))
            raise QuotaExceededError(
                f"User {principal.name} has {self.max_write_streams} write streams open, the most allowed: "
                "close one (or let it expire) first"
            )
        return stream_id

    async def stream_write(self, principal: Principal, stream_id: int, body: Body, expected: int | None) -> int:
        """Append ``body`` to the write stream; return how many bytes it took."""
        record = self._stream(principal, stream_id, StreamKind.WRITE)
        assert record.temp is not None
        self.streams.update(stream_id, expires_ms=_now_ms() + self.stream_ttl_ms)
        async with self.append_lock(f"stream:{stream_id}"):
            try:
                fd = self.ns.host.open_file((*TMP_DIR, record.temp), os.O_WRONLY | os.O_APPEND)
            except OSError as exc:
                if is_missing(exc):
                    raise NotFoundError(f"Stream {stream_id} does not exist") from exc
                raise host_failure(exc, record.path) from exc
            written = await self._append_body(fd, body, expected)
            self.streams.update(stream_id, expires_ms=_now_ms() + self.stream_ttl_ms)
            return written

    async def stream_read(self, principal: Principal, stream_id: int) -> Reader:
        """What the read stream has left; reading consumes it (permissions checked again)."""
        record = self._stream(principal, stream_id, StreamKind.READ)
        inode, fd = self.ns.open_for_read(principal, parse_hdfs_path(record.path))
        try:
            size = os.fstat(fd).st_size
        except BaseException:
            await finish(self.pool, lambda: os.close(fd))
            raise
        position = min(record.position, size)
        self.streams.update(stream_id, expires_ms=_now_ms() + self.stream_ttl_ms, position=size)
        return Reader(self.pool, FileSource(fd, position), inode, size - position)

    async def stream_close(self, principal: Principal, stream_id: int) -> None:
        """Close the stream; a write stream's file appears now, atomically, as a create would make it."""
        record = self._stream(principal, stream_id, None)
        if record.temp is None:
            if not self.streams.remove(stream_id):
                raise NotFoundError(f"Stream {stream_id} does not exist")
            return
        temp: Parts = (*TMP_DIR, record.temp)
        # Not while a write to it runs, here (the asyncio lock) or in another process (flock).
        async with self.append_lock(f"stream:{stream_id}"):
            try:
                fd = self.ns.host.open_file(temp, os.O_RDONLY)
            except OSError as exc:
                if is_missing(exc):
                    raise NotFoundError(f"Stream {stream_id} does not exist") from exc
                raise host_failure(exc, record.path) from exc
            await self._locked(fd)
            try:
                if not self.streams.remove(stream_id):
                    raise NotFoundError(f"Stream {stream_id} does not exist")  # closed elsewhere meanwhile
                committed = False
                try:
                    await self._commit_create(
                        principal,
                        parse_hdfs_path(record.path),
                        temp,
                        overwrite=record.overwrite,
                        perm=self.ns.default_perm(False) if record.perm is None else record.perm,
                        replication=record.replication,
                        block_size=record.blocksize,
                    )
                    committed = True
                finally:
                    if not committed:
                        await finish(self.pool, lambda: self.ns.discard(temp))
            finally:
                await finish(self.pool, lambda: os.close(fd))
