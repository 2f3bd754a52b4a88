"""The HDFS namespace: host tree + metadata + permission checks, synchronous.

Every method here is a short, synchronous step (stat calls, a rename, one
SQLite transaction), linear in the path's length, never in its square.
Moving file contents and walking big subtrees happen elsewhere, on the I/O
pool; the handlers then call back in here to check again and commit.

Lookups run on the event loop.  Each method that changes the namespace runs
inside :meth:`Namespace.locked`, which holds the root's namespace lock (an
``flock``), so that the commit is atomic with respect to every request of
every process serving the root, not only those of this event loop; the
store runs those steps on a thread of their own (one per process, with its
own ``Namespace`` and database connection), so that neither waiting for a
step of another process nor the step itself ever holds the event loop.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from ._errors import (
    AccessDeniedError,
    AlreadyExistsError,
    BadRequestError,
    FsError,
    IOFailureError,
    NotEmptyError,
    NotFoundError,
    ParentNotDirectoryError,
)
from ._host import HostTree, is_missing
from ._meta import InodeMeta, MetaStore
from ._paths import RESERVED_NAME, Parts, hdfs_path
from ._perm import DEFAULT_DIR_PERM, DEFAULT_FILE_PERM, STICKY, FsAction, GroupMap, Principal, has_access

__all__ = ("DEFAULT_BLOCK_SIZE", "DEFAULT_REPLICATION", "TMP_DIR", "TRASH_DIR", "Inode", "Namespace", "Resolved")

DEFAULT_REPLICATION = 3
DEFAULT_BLOCK_SIZE = 64 * 1024 * 1024
TMP_DIR: Parts = (RESERVED_NAME, "tmp")
TRASH_DIR: Parts = (RESERVED_NAME, "trash")
USER_DIR: Parts = ("user",)


@dataclass(frozen=True, slots=True)
class Inode:
    """A visible file or directory with its effective HDFS metadata."""

    parts: Parts
    is_dir: bool
    length: int
    access_ms: int
    modification_ms: int
    meta: InodeMeta

    @property
    def path(self) -> str:
        return hdfs_path(self.parts)


@dataclass(frozen=True, slots=True)
class Resolved:
    """What exists along a path: how many of the root and its prefixes exist, in order (``found``),
    and the last one or two of them (``tail``: all a caller needs, so a deep path costs no more)."""

    parts: Parts
    found: int
    tail: tuple[Inode, ...]

    @property
    def target(self) -> Inode | None:
        return self.tail[-1] if self.found == len(self.parts) + 1 else None

    @property
    def parent(self) -> Inode | None:
        """The target's parent when it exists (and is a directory)."""
        if self.found >= len(self.parts) and self.parts:
            parent = self.tail[len(self.parts) - 1 - self.found]
            return parent if parent.is_dir else None
        return None

    @property
    def deepest(self) -> Inode:
        """The deepest existing inode along the path (the root at least)."""
        return self.tail[-1]

    @property
    def through_file(self) -> bool:
        """True when a regular file sits where a directory of the path should be."""
        return self.target is None and not self.deepest.is_dir


def _ms(ns: int) -> int:
    return ns // 1_000_000


def _denied(principal: Principal, action: FsAction, inode: Inode) -> AccessDeniedError:
    return _denied_at(principal, action, inode.path)


def _denied_at(principal: Principal, action: FsAction, path: str) -> AccessDeniedError:
    return AccessDeniedError(f"Permission denied: user={principal.name}, access={action.label}, inode={path}")


def not_found(path: str) -> NotFoundError:
    return NotFoundError(f"File does not exist: {path}")


def host_failure(exc: OSError, path: str) -> FsError:
    """A host error as an FsError that names the HDFS path only (500 unless it is bad input)."""
    if exc.errno == errno.ENAMETOOLONG:
        return BadRequestError(f"File name too long: {path}")
    if exc.errno == errno.ENOSPC:
        return IOFailureError(f"No space left on device: {path}")
    if exc.errno == errno.EDQUOT:
        return IOFailureError(f"Quota exceeded: {path}")
    return IOFailureError(f"{exc.strerror or 'I/O error'}: {path}")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _exclusive(method: Callable[Concatenate[Namespace, _P], _R]) -> Callable[Concatenate[Namespace, _P], _R]:
    """Let ``method`` run only inside :meth:`Namespace.exclusive` (or :meth:`Namespace.locked`)."""

    @functools.wraps(method)
    def checked(self: Namespace, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not self._held:
            raise RuntimeError(f"Namespace.{method.__name__} needs the namespace lock")
        return method(self, *args, **kwargs)

    return checked


class Namespace:
    """The HDFS view of the served root for one backend instance."""

    def __init__(self, host: HostTree, store: MetaStore, groups: GroupMap, *, umask: int, lock_file: Path) -> None:
        self.host = host
        self.store = store
        self.groups = groups
        self.umask = umask
        self._lock_fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._held = False

    def close(self) -> None:
        os.close(self._lock_fd)

    # -- the namespace lock ------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the namespace lock, waiting for it on this thread (never the event loop's: see the module)."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._held = True
        try:
            yield
        finally:
            self._held = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # -- metadata ------------------------------------------------------------------

    def default_perm(self, is_dir: bool) -> int:
        return (DEFAULT_DIR_PERM if is_dir else DEFAULT_FILE_PERM) & ~self.umask

    def _default_meta(self, is_dir: bool, parent: InodeMeta | None) -> InodeMeta:
        """Metadata of an inode nobody recorded (put there by hand, or the root)."""
        group = parent.group if parent else self.groups.supergroup
        if is_dir:
            return InodeMeta(self.groups.superuser, group, DEFAULT_DIR_PERM, 0, 0)
        return InodeMeta(self.groups.superuser, group, DEFAULT_FILE_PERM, DEFAULT_REPLICATION, DEFAULT_BLOCK_SIZE)

    def new_dir_meta(self, owner: str, parent: Inode, perm: int) -> InodeMeta:
        # HDFS: a new inode takes its group from its parent directory.
        return InodeMeta(owner, parent.meta.group, perm, 0, 0)

    def _inode(self, parts: Parts, st: os.stat_result, meta: InodeMeta) -> Inode:
        is_dir = stat.S_ISDIR(st.st_mode)
        return Inode(parts, is_dir, 0 if is_dir else st.st_size, _ms(st.st_atime_ns), _ms(st.st_mtime_ns), meta)

    # -- lookups ------------------------------------------------------------------

    def resolve(self, principal: Principal, parts: Parts) -> Resolved:
        """Look ``parts`` up, checking EXECUTE on every existing ancestor directory."""
        try:
            found, stats = self.host.stat_chain(parts)
        except OSError as exc:
            raise host_failure(exc, hdfs_path(parts)) from exc
        paths = ["/"]
        path = ""
        for name in parts[: found - 1]:  # each prefix from the one before: linear, not quadratic
            path = f"{path}/{name}"
            paths.append(path)
        rows = self.store.get_many(paths)
        first_stat = found - len(stats)
        last_dir = found if stat.S_ISDIR(stats[-1].st_mode) else found - 1  # all before the last are directories
        tail: list[Inode] = []
        checked = 0 if principal.is_superuser else min(len(parts), last_dir)  # the ancestors that are directories
        parent: InodeMeta | None = None
        for i, path in enumerate(paths):
            is_dir = i < last_dir
            meta = rows.get(path) or self._default_meta(is_dir, parent)
            if i >= first_stat:
                tail.append(self._inode(parts[:i], stats[i - first_stat], meta))
            if i < checked and not has_access(principal, meta.owner, meta.group, meta.perm, FsAction.EXECUTE):
                raise _denied_at(principal, FsAction.EXECUTE, path)
            parent = meta
        return Resolved(parts, found, tuple(tail))

    def existing(self, principal: Principal, parts: Parts) -> Inode:
        """The inode at ``parts`` or 404."""
        target = self.resolve(principal, parts).target
        if target is None:
            raise not_found(hdfs_path(parts))
        return target

    def require(self, principal: Principal, inode: Inode, action: FsAction) -> None:
        if not has_access(principal, inode.meta.owner, inode.meta.group, inode.meta.perm, action):
            raise _denied(principal, action, inode)

    def require_owner(self, principal: Principal, inode: Inode) -> None:
        if not principal.is_superuser and principal.name != inode.meta.owner:
            raise AccessDeniedError(f"Permission denied: user={principal.name} is not the owner of inode={inode.path}")

    def require_owner_or(self, principal: Principal, inode: Inode, action: FsAction) -> None:
        if principal.name != inode.meta.owner:
            self.require(principal, inode, action)

    def require_sticky_ok(self, principal: Principal, parent: Inode, inode: Inode) -> None:
        """In a sticky directory only the owner of the entry or of the directory may remove it."""
        if (
            parent.meta.perm & STICKY
            and not principal.is_superuser
            and principal.name not in (parent.meta.owner, inode.meta.owner)
        ):
            raise AccessDeniedError(
                f"Permission denied by sticky bit: user={principal.name}, path={inode.path}, "
                f"parent={parent.path}"
            )

    def listable(self, principal: Principal, parts: Parts) -> Inode:
        """The inode at ``parts``, which the principal may list: READ_EXECUTE on a directory, as HDFS asks."""
        target = self.existing(principal, parts)
        if target.is_dir:
            self.require(principal, target, FsAction.READ | FsAction.EXECUTE)
        return target

    def entries_at(self, directory: Inode, found: list[tuple[str, os.stat_result]]) -> list[Inode]:
        """Inodes for host entries ``found`` in ``directory``, with their metadata (or the defaults)."""
        paths = [hdfs_path((*directory.parts, name)) for name, _ in found]
        rows = self.store.get_many(paths)
        return [
            self._inode(
                (*directory.parts, name),
                st,
                rows.get(path) or self._default_meta(stat.S_ISDIR(st.st_mode), directory.meta),
            )
            for (name, st), path in zip(found, paths)
        ]

    @staticmethod
    def listing_failure(exc: OSError, directory: Inode) -> FsError:
        """What a host failure while listing ``directory`` means: gone, or a host fault."""
        if is_missing(exc):
            return not_found(directory.path)
        return host_failure(exc, directory.path)

    # -- directories ------------------------------------------------------------------

    def make_dirs(self, principal: Principal, parts: Parts, perm: int, at_most: int) -> int | None:
        """``mkdirs``: create ``parts`` and missing parents (WRITE on the deepest existing one).

        Done here (``None``) when at most ``at_most`` directories are
        missing.  Otherwise nothing is created and the number of names of
        ``parts`` that exist is returned: the caller makes the rest aside,
        without the lock (:meth:`stage_chain`), and moves it into place in
        one short step (:meth:`place_chain`), so that however deep the path
        no step holds the lock long, and the whole chain appears at once.
        """
        resolved = self._mkdirs_checks(principal, parts)
        if resolved is None:
            return None
        existing = len(resolved.deepest.parts)
        if len(parts) - existing > at_most:
            return existing
        self._create_missing(principal, resolved, len(parts), perm)
        return None

    def _mkdirs_checks(self, principal: Principal, parts: Parts) -> Resolved | None:
        """What ``mkdirs`` checks; ``None`` when the directory is there already."""
        resolved = self.resolve(principal, parts)
        target = resolved.target
        if target is not None:
            if not target.is_dir:
                raise AlreadyExistsError(f"Path is not a directory: {target.path}")
            return None
        if resolved.through_file:
            raise ParentNotDirectoryError(f"Parent path is not a directory: {resolved.deepest.path}")
        self.require(principal, resolved.deepest, FsAction.WRITE)
        return resolved

    def stage_chain(self, parts: Parts, existing: int) -> Parts | None:
        """Make the missing directories of ``parts`` (below its first ``existing`` names) aside,
        in the scratch directory, for :meth:`place_chain`; return where their top is.

        Needs no lock: nobody else sees the scratch directory.  Linear in
        the number made (see :meth:`HostTree.make_chain`).  ``None`` when
        what was made vanished meanwhile (a worker starting clears the
        scratch directory): the caller starts again.
        """
        top: Parts = (*TMP_DIR, uuid.uuid4().hex)
        stats, failure = self.host.make_chain(TMP_DIR, (top[-1], *parts[existing + 1 :]))
        if failure is None:
            return top
        with contextlib.suppress(OSError):  # or it goes at the next start
            self.discard(top)
        if is_missing(failure):
            return None
        raise host_failure(failure, hdfs_path(parts[: existing + len(stats) + 1]))

    def place_chain(self, principal: Principal, parts: Parts, existing: int, staged: Parts, perm: int) -> bool:
        """Check ``mkdirs`` again and move the chain :meth:`stage_chain` made into place.

        False, with nothing done, when the path changed meanwhile (the caller
        starts again); True when it is done, or was done by someone else
        meanwhile (the staged chain is then the caller's to discard).
        """
        resolved = self._mkdirs_checks(principal, parts)
        if resolved is None:
            return True
        if len(resolved.deepest.parts) != existing:
            return False
        try:
            self.host.rename(staged, parts[: existing + 1])
        except OSError as exc:
            if is_missing(exc) or exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                return False
            raise host_failure(exc, hdfs_path(parts[: existing + 1])) from exc
        self._record_chain(principal, resolved.deepest, parts[existing:], perm)
        return True

    def _record_chain(self, principal: Principal, parent: Inode, names: Parts, perm: int) -> list[InodeMeta]:
        """Record directories just made, ``names`` below ``parent`` each in the one before.

        The last gets ``perm``; implicit parents get the default with ``u+wx``
        so their creator can go on creating below them (as HDFS does).  All
        take their group from ``parent``.  One transaction.
        """
        implicit = self.default_perm(True) | 0o300
        last = len(names) - 1
        rows: list[tuple[str, InodeMeta]] = []
        path = parent.path if parent.parts else ""
        for i, name in enumerate(names):
            path = f"{path}/{name}"
            rows.append((path, self.new_dir_meta(principal.name, parent, perm if i == last else implicit)))
        self.store.record_new(rows)
        return [meta for _path, meta in rows]

    def _create_missing(self, principal: Principal, resolved: Resolved, upto: int, perm: int) -> Inode:
        """Create the missing directories of ``resolved.parts[:upto]``; return the last one.

        They are recorded as :meth:`_record_chain` says, even those created
        before a failure: their creator owns them.  Linear in the number
        created: each is made from the descriptor of the one before.
        """
        parent = resolved.deepest
        start = len(parent.parts)
        names = resolved.parts[start:upto]
        if not names:
            return parent
        stats, failure = self.host.make_chain(parent.parts, names)
        if failure is not None:
            perm = self.default_perm(True) | 0o300  # the last one wanted was not made
        metas = self._record_chain(principal, parent, names[: len(stats)], perm) if stats else []
        if failure is not None:
            failed = hdfs_path(resolved.parts[: start + len(stats) + 1])
            if isinstance(failure, FileExistsError):
                raise AlreadyExistsError(f"Path already exists: {failed}") from None
            if is_missing(failure):
                raise not_found(failed.rpartition("/")[0] or "/") from failure
            raise host_failure(failure, failed) from failure
        return self._inode(resolved.parts[:upto], stats[-1], metas[-1])

    def ensure_home(self, user: str, parts: Parts, *, inclusive: bool) -> None:
        """Create ``/user`` and ``/user/<user>`` when a user first writes below its home.

        ``/user`` is ``superuser:supergroup 755``; the home is owned by the
        user, group from ``/user``, default directory permission.  Only for
        paths strictly below the home, or the home itself when ``inclusive``
        (mkdirs); nothing happens when something is already in the way.
        """
        if len(parts) < (2 if inclusive else 3) or parts[0] != USER_DIR[0] or parts[1] != user:
            return
        system = Principal(self.groups.superuser, frozenset(), True)  # no group lookup on the namespace thread
        self.ensure_dir(system, USER_DIR, DEFAULT_DIR_PERM)
        resolved = self.resolve(system, parts[:2])
        if resolved.target is None and not resolved.through_file and resolved.found == 2:
            home_owner = Principal(user, frozenset(), False)
            self._create_missing(home_owner, resolved, 2, self.default_perm(True))

    def ensure_dir(self, system: Principal, parts: Parts, perm: int) -> None:
        """Create directory ``parts`` as ``system`` if nothing is there."""
        resolved = self.resolve(system, parts)
        if resolved.target is None and not resolved.through_file:
            self._create_missing(system, resolved, len(parts), perm)

    # -- files ------------------------------------------------------------------

    def check_create(self, principal: Principal, parts: Parts, overwrite: bool) -> Resolved:
        """Every check ``create`` makes, before and again after the upload."""
        if not parts:
            raise AlreadyExistsError("Path already exists as a directory: /")
        resolved = self.resolve(principal, parts)
        target = resolved.target
        if target is not None:
            if target.is_dir:
                raise AlreadyExistsError(f"Path already exists as a directory: {target.path}")
            if not overwrite:
                raise AlreadyExistsError(f"File already exists: {target.path}")
            self.require(principal, target, FsAction.WRITE)
        elif resolved.through_file:
            raise ParentNotDirectoryError(f"Parent path is not a directory: {resolved.deepest.path}")
        self.require(principal, resolved.parent or resolved.deepest, FsAction.WRITE)
        return resolved

    def new_temp(self) -> tuple[Parts, int]:
        """A fresh temporary file under the reserved directory, open for writing."""
        parts = (*TMP_DIR, uuid.uuid4().hex)
        return parts, self.host.create_exclusive(parts)

    def commit_create(
        self, principal: Principal, parts: Parts, temp: Parts, *, overwrite: bool, perm: int, replication: int,
        block_size: int, make_parents: int,
    ) -> bool:
        """Move a complete upload into place, atomically; the temp is gone afterwards.

        Missing parents are made here when there are at most
        ``make_parents`` of them; else nothing is done and the answer is
        False (the caller makes them as ``mkdirs`` does, and comes back).
        """
        resolved = self.check_create(principal, parts, overwrite)
        parent = resolved.parent
        if parent is None:
            if len(parts) - 1 - len(resolved.deepest.parts) > make_parents:
                return False
            parent = self._create_missing(principal, resolved, len(parts) - 1, self.default_perm(True) | 0o300)
        path = hdfs_path(parts)
        try:
            if overwrite:
                self.host.rename(temp, parts)
            else:
                self.host.link(temp, parts)  # fails instead of replacing
                self.host.unlink(temp)
        except FileExistsError:
            raise AlreadyExistsError(f"File already exists: {path}") from None
        except OSError as exc:
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY):
                raise AlreadyExistsError(f"Path already exists as a directory: {path}") from None
            raise host_failure(exc, path) from exc
        meta = InodeMeta(principal.name, parent.meta.group, perm, replication, block_size)
        self.store.replace_subtree(path, meta)
        return True

    def discard(self, parts: Parts) -> None:
        """Remove a temporary file or trash entry; a missing one is fine."""
        try:
            self.host.remove_tree(parts)
        except FileNotFoundError:
            pass

    def open_for_read(self, principal: Principal, parts: Parts) -> tuple[Inode, int]:
        target = self.existing(principal, parts)
        if target.is_dir:
            raise NotFoundError(f"Path is not a file: {target.path}")
        self.require(principal, target, FsAction.READ)
        return target, self._open(target, os.O_RDONLY)

    def open_for_append(self, principal: Principal, parts: Parts) -> tuple[Inode, int]:
        target = self.existing(principal, parts)
        if target.is_dir:
            raise NotFoundError(f"Failed to append to non-file: {target.path}")
        self.require(principal, target, FsAction.WRITE)
        return target, self._open(target, os.O_WRONLY | os.O_APPEND)

    def _open(self, inode: Inode, flags: int) -> int:
        try:
            return self.host.open_file(inode.parts, flags)
        except OSError as exc:
            if is_missing(exc) or exc.errno == errno.EISDIR:
                raise not_found(inode.path) from exc
            raise host_failure(exc, inode.path) from exc

    # -- names ------------------------------------------------------------------

    def rename(self, principal: Principal, src: Parts, dst: Parts) -> bool:
        """HDFS ``rename``: False (not an error) when the destination is unusable."""
        source = self.existing(principal, src)
        if not src:
            return False
        src_parent = self.resolve(principal, src[:-1]).target
        assert src_parent is not None  # the source exists, so does its parent
        self.require(principal, src_parent, FsAction.WRITE)
        self.require_sticky_ok(principal, src_parent, source)
        if dst == src:
            return True
        resolved = self.resolve(principal, dst)
        if resolved.target is not None:
            if not resolved.target.is_dir:
                return False
            dst = (*dst, src[-1])  # into an existing directory, as HDFS does
            resolved = self.resolve(principal, dst)
            if resolved.target is not None:
                return False
        if dst[: len(src)] == src:  # into itself
            return False
        dst_parent = resolved.parent
        if dst_parent is None:
            return False
        self.require(principal, dst_parent, FsAction.WRITE)
        if dst_parent.path == source.path:
            return False
        try:
            self.host.rename(src, dst)
        except OSError as exc:
            if is_missing(exc) or exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.EINVAL):
                return False
            raise host_failure(exc, source.path) from exc
        self.store.move_subtree(source.path, hdfs_path(dst))
        return True

    def check_delete(self, principal: Principal, parts: Parts, recursive: bool) -> tuple[Inode, bool]:
        """Checks of ``delete`` before the subtree walk: ``(inode, needs_subtree_check)``."""
        target = self.existing(principal, parts)
        if not parts:
            return target, False
        parent = self.resolve(principal, parts[:-1]).target
        assert parent is not None
        self.require(principal, parent, FsAction.WRITE)
        self.require_sticky_ok(principal, parent, target)
        if not target.is_dir:
            return target, False
        try:
            empty = self.host.is_empty_dir(parts)
        except OSError as exc:
            if is_missing(exc):
                raise not_found(target.path) from exc
            raise host_failure(exc, target.path) from exc
        if empty:
            return target, False
        if not recursive:
            raise NotEmptyError(f"Directory is not empty: {target.path}")
        return target, not principal.is_superuser

    def check_subtree(self, principal: Principal, top: Inode, below: list[str]) -> None:
        """HDFS recursive delete: ALL access on the directory and every directory below.

        ``below`` lists directories by their paths relative to ``top`` (``a/b``).
        """
        self.require(principal, top, FsAction.ALL)
        prefix = top.path if top.parts else ""
        paths = [f"{prefix}/{rel}" for rel in below]
        rows = self.store.get_many(paths)
        for path in paths:
            # Nobody recorded it: the superuser's 755, ALL for superusers only.
            # Its group (its parent's) cannot change that, as 755 gives the
            # group what it gives other, so top's stands in.
            meta = rows.get(path) or self._default_meta(True, top.meta)
            if not has_access(principal, meta.owner, meta.group, meta.perm, FsAction.ALL):
                raise AccessDeniedError(f"Permission denied: user={principal.name}, access=ALL, inode={path}")

    def delete(self, principal: Principal, parts: Parts, recursive: bool, below: list[str] | None) -> Parts | None:
        """Check ``delete`` again and take ``parts`` out of the namespace; the trash entry to remove later.

        ``below`` is the subtree's directories, walked beforehand when
        :meth:`check_delete` asked for it (walked here, in the rare case it
        became needed meanwhile).
        """
        target, walk = self.check_delete(principal, parts, recursive)
        if walk:
            if below is None:
                try:
                    below = self.host.subdirectories(parts)
                except OSError as exc:
                    raise not_found(target.path) from exc
            self.check_subtree(principal, target, below)
        return self.unlink_to_trash(parts)

    def unlink_to_trash(self, parts: Parts) -> Parts | None:
        """Take ``parts`` out of the namespace at once; return the trash entry to remove later.

        ``None`` when the root spans file systems and the entry was removed in place.
        """
        path = hdfs_path(parts)
        trash: Parts = (*TRASH_DIR, uuid.uuid4().hex)
        try:
            self.host.rename(parts, trash)
        except OSError as exc:
            if is_missing(exc):
                raise not_found(path) from exc
            if exc.errno != errno.EXDEV:
                raise host_failure(exc, path) from exc
            try:
                self.host.remove_tree(parts)
            except OSError as exc2:
                raise host_failure(exc2, path) from exc2
            self.store.drop_subtree(path)
            return None
        self.store.drop_subtree(path)
        return trash

    # -- attributes ------------------------------------------------------------------

    def set_owner(self, principal: Principal, parts: Parts, owner: str | None, group: str | None) -> None:
        inode = self.existing(principal, parts)
        self.require_owner(principal, inode)
        if not principal.is_superuser:
            if owner is not None and owner != principal.name:
                raise AccessDeniedError("Permission denied: Non-super user cannot change owner.")
            if group is not None and group not in principal.groups:
                raise AccessDeniedError(f"Permission denied: user={principal.name} does not belong to {group}")
        meta = replace(
            inode.meta,
            owner=inode.meta.owner if owner is None else owner,
            group=inode.meta.group if group is None else group,
        )
        self.store.put(inode.path, meta)

    def set_permission(self, principal: Principal, parts: Parts, perm: int | None) -> None:
        inode = self.existing(principal, parts)
        self.require_owner(principal, inode)
        value = self.default_perm(inode.is_dir) if perm is None else perm
        self.store.put(inode.path, replace(inode.meta, perm=value))

    def set_replication(self, principal: Principal, parts: Parts, replication: int) -> bool:
        inode = self.existing(principal, parts)
        self.require_owner_or(principal, inode, FsAction.WRITE)
        if inode.is_dir:
            return False  # as HDFS: directories have no replication
        self.store.put(inode.path, replace(inode.meta, replication=replication))
        return True

    def set_times(self, principal: Principal, parts: Parts, mtime_ms: int, atime_ms: int) -> None:
        inode = self.existing(principal, parts)
        self.require_owner_or(principal, inode, FsAction.WRITE)
        if mtime_ms == -1 and atime_ms == -1:
            return
        st = self.host.lstat(parts)
        if st is None:
            raise not_found(inode.path)
        atime_ns = st.st_atime_ns if atime_ms == -1 else atime_ms * 1_000_000
        mtime_ns = st.st_mtime_ns if mtime_ms == -1 else mtime_ms * 1_000_000
        try:
            self.host.set_times(parts, atime_ns, mtime_ns)
        except OSError as exc:
            if is_missing(exc):
                raise not_found(inode.path) from exc
            if exc.errno in (errno.EINVAL, errno.EOVERFLOW):
                raise BadRequestError(f"Invalid time for {inode.path}") from exc
            raise host_failure(exc, inode.path) from exc


# The methods that change the namespace hold its lock.  Wrapped here rather
# than decorated, so that mutation testing (which skips decorated functions)
# still reaches their permission checks.
for _name in (
    "make_dirs",
    "place_chain",
    "ensure_home",
    "ensure_dir",
    "commit_create",
    "rename",
    "delete",
    "unlink_to_trash",
    "set_owner",
    "set_permission",
    "set_replication",
    "set_times",
):
    setattr(Namespace, _name, _exclusive(getattr(Namespace, _name)))
del _name
