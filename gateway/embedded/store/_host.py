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
import stat
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ._paths import Parts

__all__ = ("FD_WINDOW", "HostTree", "is_missing", "remove_tree_at")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# To look a directory up and step into it (no read permission needed; a link
# or anything else than a directory is ENOTDIR).
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
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


FD_WINDOW = 32
"""Descriptors a tree walk keeps open at most, however deep the tree."""


@dataclass(slots=True)
class _Frame:
    """A directory a walk is in.

    ``fd`` is -1 while closed to keep the walk in its window; ``dev`` and
    ``ino`` say which directory it must be when opened again; ``rel`` is its
    path below the walk's top; ``names`` what is still to visit in it.
    """

    fd: int
    dev: int
    ino: int
    rel: str
    name: str
    names: list[str] = field(default_factory=list)


class _Walk:
    """A depth-first walk below an open directory: iterative, at most :data:`FD_WINDOW` descriptors.

    A frame closed to stay in the window is opened again through ``..`` of
    its child when the walk climbs back to it; it must then be the very
    directory it was (device and inode), else the walk fails with
    ``ESTALE``: the tree was moved under it.  The top's descriptor is the
    caller's and stays open.
    """

    __slots__ = ("_open", "frames")

    def __init__(self, top: int) -> None:
        st = os.fstat(top)
        self.frames = [_Frame(top, st.st_dev, st.st_ino, "", "", os.listdir(top))]
        self._open: deque[int] = deque()  # indices (above the top) of open frames, ascending

    def enter(self, name: str) -> bool:
        """Step into the directory ``name`` of the current one; False when it is not one (or is gone)."""
        parent = self.frames[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent.fd)
        except OSError as exc:
            if is_missing(exc):  # a file, a link, or gone
                return False
            raise
        try:
            st = os.fstat(fd)
            names = os.listdir(fd)
        except BaseException:
            os.close(fd)
            raise
        rel = f"{parent.rel}/{name}" if parent.rel else name
        self.frames.append(_Frame(fd, st.st_dev, st.st_ino, rel, name, names))
        self._open.append(len(self.frames) - 1)
        if len(self._open) > FD_WINDOW:
            oldest = self.frames[self._open.popleft()]
            os.close(oldest.fd)
            oldest.fd = -1
        return True

    def leave(self) -> tuple[int, str]:
        """Step back out of the current directory: ``(descriptor of its parent, its name)``."""
        frame = self.frames.pop()
        self._open.pop()
        try:
            parent = self.frames[-1]
            if parent.fd < 0:
                fd = os.open("..", _DIR_FLAGS, dir_fd=frame.fd)
                try:
                    st = os.fstat(fd)
                    if (st.st_dev, st.st_ino) != (parent.dev, parent.ino):
                        raise OSError(errno.ESTALE, "the tree moved during the walk")
                except BaseException:
                    os.close(fd)
                    raise
                parent.fd = fd
                self._open.append(len(self.frames) - 1)
        finally:
            os.close(frame.fd)
        return parent.fd, frame.name

    def close(self) -> None:
        for index in self._open:
            os.close(self.frames[index].fd)
        self._open.clear()


def remove_tree_at(dfd: int, name: str) -> None:
    """Remove ``name`` in the directory ``dfd`` and everything below it; links go, never followed.

    Iterative, with at most :data:`FD_WINDOW` descriptors, so no depth can
    stop it; whatever vanishes meanwhile (another process removing the same
    tree) is fine.  Raises ``OSError`` when something cannot be removed.
    """
    try:
        top = os.open(name, _DIR_FLAGS, dir_fd=dfd)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        with contextlib.suppress(FileNotFoundError):  # a file or a link: only the name goes
            os.unlink(name, dir_fd=dfd)
        return
    try:
        walk = _Walk(top)
        try:
            while True:
                frame = walk.frames[-1]
                if frame.names:
                    child = frame.names.pop()
                    if not walk.enter(child):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(child, dir_fd=frame.fd)
                elif len(walk.frames) > 1:
                    parent_fd, emptied = walk.leave()
                    with contextlib.suppress(FileNotFoundError):
                        os.rmdir(emptied, dir_fd=parent_fd)
                else:
                    break
        finally:
            walk.close()
    finally:
        os.close(top)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(name, dir_fd=dfd)


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

    def stat_chain(self, parts: Parts) -> tuple[int, list[os.stat_result]]:
        """How many of the root and the prefixes of ``parts`` exist, and the stats of the last two.

        The count stops early at the first name that is missing, a link or a
        special file, and right after the first regular file.  Each
        directory is entered from the one before (two system calls, and only
        the last two are stat'ed), so a deep path costs little more than
        its names.
        """
        fds = [os.dup(self._root_fd)]  # the last two directories entered
        entered = 0
        file: os.stat_result | None = None
        try:
            for name in parts:
                try:
                    child = os.open(name, _PATH_FLAGS, dir_fd=fds[-1])
                except OSError as exc:
                    if exc.errno == errno.ENOTDIR:  # a file, a link or a special file
                        try:
                            st = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
                        except OSError as exc2:
                            if is_missing(exc2):
                                break
                            raise
                        if stat.S_ISREG(st.st_mode):
                            file = st
                    elif not is_missing(exc):
                        raise
                    break
                fds.append(child)
                entered += 1
                if len(fds) > 2:
                    os.close(fds.pop(0))
            tail = [os.fstat(fd) for fd in fds]
        finally:
            for fd in fds:
                os.close(fd)
        if file is None:
            return 1 + entered, tail
        return 2 + entered, [tail[-1], file]

    def lstat(self, parts: Parts) -> os.stat_result | None:
        """The stat of ``parts`` when it is a visible file or directory, else ``None``."""
        found, tail = self.stat_chain(parts)
        return tail[-1] if found == len(parts) + 1 else None

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

    def subdirectories(self, parts: Parts) -> list[str]:
        """Every directory strictly below ``parts``, as paths relative to it (``a/b``), parents first.

        Iterative and with :data:`FD_WINDOW` descriptors at most, however
        deep the tree; links are not followed.
        """
        found: list[str] = []
        with self.open_dir(parts) as dfd:
            walk = _Walk(dfd)
            try:
                while True:
                    frame = walk.frames[-1]
                    if frame.names:
                        if walk.enter(frame.names.pop()):
                            found.append(walk.frames[-1].rel)
                    elif len(walk.frames) > 1:
                        walk.leave()
                    else:
                        return found
            finally:
                walk.close()

    def make_chain(self, parent: Parts, names: Parts) -> tuple[list[os.stat_result], OSError | None]:
        """Create ``names`` below the directory ``parent``, each inside the one before.

        Linear in the chain's length: each directory is made and entered from
        the descriptor of the one before, never looked up from the root
        again.  Returns the stats of those created, in order, and the error
        that stopped the chain early (``None`` when it did not); those
        created stay.
        """
        created: list[os.stat_result] = []
        try:
            with self.open_dir(parent) as top:
                fd = os.dup(top)
        except OSError as exc:
            return created, exc
        try:
            for name in names:
                os.mkdir(name, HOST_DIR_MODE, dir_fd=fd)
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
                created.append(os.fstat(fd))
        except OSError as exc:
            return created, exc
        finally:
            os.close(fd)
        return created, None

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
        """Remove ``parts`` and everything below it, never following links (see :func:`remove_tree_at`)."""
        with self.parent(parts) as (dfd, name):
            remove_tree_at(dfd, name)

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
