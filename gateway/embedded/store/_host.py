"""The host side of the served root, reached without ever following a link.

Every operation walks from a descriptor of the root, one name at a time, with
``O_NOFOLLOW | O_DIRECTORY`` and the ``*at`` system calls (``dir_fd=``), so
no symbolic link is followed, wherever it points and however it got there
(there is no window between a check and a use for someone to swap one in).
Symbolic links and special files are therefore invisible: they do not show
in listings and addressing one, or a path through one, is "not found".

Methods raise ``OSError``; ``ELOOP`` and ``ENOTDIR`` on the way mean "not
found" to the caller.  Nothing here knows about users or permissions.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from ._paths import Parts

__all__ = ("HostTree", "is_missing")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Host-level modes of what we create: only the service account reads the
# data directly; HDFS permissions are enforced by the backend itself.
HOST_FILE_MODE = 0o600
HOST_DIR_MODE = 0o700


def is_missing(exc: OSError) -> bool:
    """True when ``exc`` means the path (or a link or file on its way) is not there."""
    return exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


def _visible(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)


def _is_utf8(name: str) -> bool:
    """False for a name that is not valid UTF-8 on the host (it decoded with surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class HostTree:
    """Descriptor-relative access to the directory tree below ``root``."""

    def __init__(self, root: Path) -> None:
        self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    # -- walking ------------------------------------------------------------------

    @contextlib.contextmanager
    def open_dir(self, parts: Parts) -> Iterator[int]:
        """A descriptor of the directory ``parts`` (closed on exit)."""
        fd = os.dup(self._root_fd)
        try:
            for name in parts:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def parent(self, parts: Parts) -> Iterator[tuple[int, str]]:
        """``(descriptor of the parent directory, last name)``; ``parts`` must not be the root."""
        if not parts:
            raise OSError(errno.EINVAL, "the root has no parent")
        with self.open_dir(parts[:-1]) as dfd:
            yield dfd, parts[-1]

    def stat_chain(self, parts: Parts) -> list[os.stat_result]:
        """Stats of the root and of each existing prefix of ``parts``, in order.

        The list stops early at the first name that is missing, a link or a
        special file, and right after the first regular file.
        """
        chain = [os.fstat(self._root_fd)]
        fd = os.dup(self._root_fd)
        try:
            for i, name in enumerate(parts):
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError as exc:
                    if is_missing(exc):
                        break
                    raise
                if not _visible(st):
                    break
                chain.append(st)
                if not stat.S_ISDIR(st.st_mode) or i == len(parts) - 1:
                    break
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:  # replaced between the stat and the open
                    if is_missing(exc):
                        chain.pop()
                        break
                    raise
                os.close(fd)
                fd = child
        finally:
            os.close(fd)
        return chain

    def lstat(self, parts: Parts) -> os.stat_result | None:
        """The stat of ``parts`` when it is a visible file or directory, else ``None``."""
        chain = self.stat_chain(parts)
        return chain[-1] if len(chain) == len(parts) + 1 else None

    # -- directories ------------------------------------------------------------------

    def mkdir(self, parts: Parts) -> None:
        with self.parent(parts) as (dfd, name):
            os.mkdir(name, HOST_DIR_MODE, dir_fd=dfd)

    def next_names(
        self, parts: Parts, after: str, count: int, accept: Callable[[str], bool] | None, hidden: str | None
    ) -> tuple[list[str], int]:
        """The first ``count`` visible names after ``after`` in directory ``parts``, and how many follow them.

        Names are in HDFS's order (their UTF-8 bytes; for valid names, code
        point order, which is Python's ``str`` order); only names ``accept``
        takes (all when ``None``) and never ``hidden``.  One pass over the
        directory holding at most ``count`` names, so any directory is read
        in memory bounded by ``count``; the cost is the pass, made again for
        each batch, as the NameNode's ``getListing(startAfter)`` is.
        """
        matched = 0

        def candidates(entries: Iterator[os.DirEntry[str]]) -> Iterator[str]:
            nonlocal matched
            for entry in entries:
                name = entry.name
                if name <= after or name == hidden or not (name.isascii() or _is_utf8(name)):
                    continue
                # d_type says it, with no system call, on the file systems that fill it in.
                if not (entry.is_file(follow_symlinks=False) or entry.is_dir(follow_symlinks=False)):
                    continue
                if accept is not None and not accept(name):
                    continue
                matched += 1
                yield name

        with self.open_dir(parts) as dfd, os.scandir(dfd) as entries:
            names = heapq.nsmallest(count, candidates(entries))
        return names, matched - len(names)

    def stat_names(self, parts: Parts, names: list[str]) -> list[tuple[str, os.stat_result]]:
        """``(name, stat)`` of each of ``names`` in directory ``parts`` still there and visible, in order."""
        found = []
        with self.open_dir(parts) as dfd:
            for name in names:
                try:
                    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                except OSError as exc:
                    if is_missing(exc):
                        continue  # removed since it was listed
                    raise
                if _visible(st):
                    found.append((name, st))
        return found

    def is_empty_dir(self, parts: Parts) -> bool:
        with self.open_dir(parts) as dfd, os.scandir(dfd) as entries:
            return next(entries, None) is None

    def subdirectories(self, parts: Parts) -> list[Parts]:
        """Every directory strictly below ``parts``, relative to it (links not followed)."""
        found: list[Parts] = []
        with self.open_dir(parts) as dfd:
            self._collect_dirs(dfd, (), found)
        return found

    def _collect_dirs(self, dfd: int, rel: Parts, found: list[Parts]) -> None:
        for name in os.listdir(dfd):
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            except OSError as exc:
                if is_missing(exc):  # a file, a link or gone: nothing below
                    continue
                raise
            try:
                found.append((*rel, name))
                self._collect_dirs(child, (*rel, name), found)
            finally:
                os.close(child)

    # -- files ------------------------------------------------------------------

    def open_file(self, parts: Parts, flags: int) -> int:
        """Open the regular file ``parts``; ``EISDIR`` when it is a directory."""
        with self.parent(parts) as (dfd, name):
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK, dir_fd=dfd)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            if not stat.S_ISREG(st.st_mode):
                raise FileNotFoundError(errno.ENOENT, "not a regular file")
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def create_exclusive(self, parts: Parts) -> int:
        """Create and open a new, empty regular file for writing."""
        with self.parent(parts) as (dfd, name):
            return os.open(
                name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, HOST_FILE_MODE, dir_fd=dfd
            )

    # -- names ------------------------------------------------------------------

    def rename(self, src: Parts, dst: Parts) -> None:
        """``rename(2)``: replaces a file at ``dst``, fails on a non-empty directory."""
        with self.parent(src) as (sfd, sname), self.parent(dst) as (dfd, dname):
            os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)

    def link(self, src: Parts, dst: Parts) -> None:
        """Hard-link ``src`` as ``dst``; ``EEXIST`` when ``dst`` exists (no replacing)."""
        with self.parent(src) as (sfd, sname), self.parent(dst) as (dfd, dname):
            os.link(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)

    def unlink(self, parts: Parts) -> None:
        with self.parent(parts) as (dfd, name):
            os.unlink(name, dir_fd=dfd)

    def rmdir(self, parts: Parts) -> None:
        with self.parent(parts) as (dfd, name):
            os.rmdir(name, dir_fd=dfd)

    def remove_tree(self, parts: Parts) -> None:
        """Remove ``parts`` and everything below it, never following links."""
        with self.parent(parts) as (dfd, name):
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(name, dir_fd=dfd)
            else:
                os.unlink(name, dir_fd=dfd)

    def set_times(self, parts: Parts, atime_ns: int, mtime_ns: int) -> None:
        if not parts:
            os.utime(self._root_fd, ns=(atime_ns, mtime_ns))
            return
        with self.parent(parts) as (dfd, name):
            os.utime(name, ns=(atime_ns, mtime_ns), dir_fd=dfd, follow_symlinks=False)

    def names(self, parts: Parts) -> list[str]:
        """All names in directory ``parts``, whatever they are."""
        with self.open_dir(parts) as dfd:
            return os.listdir(dfd)
