"""HDFS permissions: parsing, formatting and the access check.

A permission is an ``int`` holding the nine ``rwx`` bits plus the sticky bit
(``0o1000``); HDFS has no set-uid/set-gid.  It is parsed from octal
(``755``, ``1777``) or symbolic (``-rwxr-xr-x``, ``rwxr-xr-x``, ``t``/``T``
for sticky) text and formatted like ``ls -l``.

The check follows HDFS: the owner class applies if the user owns the inode,
else the group class if the user is in its group, else other.  A user's
groups are the configured ones that list it, never one named after the user.
Superusers (the configured superuser and members of the supergroup) pass
every check.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ...groups import GroupSource, StaticGroups, members_to_groups, parse_groups

__all__ = (
    "DEFAULT_DIR_PERM",
    "DEFAULT_FILE_PERM",
    "STICKY",
    "FsAction",
    "GroupMap",
    "Principal",
    "format_permission",
    "has_access",
    "parse_groups",
    "parse_permission",
)

STICKY = 0o1000
DEFAULT_FILE_PERM = 0o644
DEFAULT_DIR_PERM = 0o755

_OCTAL = re.compile(r"[0-7]{1,4}")
_SYMBOLIC = re.compile(r"[-d]?([r-][w-][x-]){2}[r-][w-][-xtT]")


class FsAction(enum.IntFlag):
    """What a request wants to do with an inode, in the ``rwx`` bit order."""

    NONE = 0
    EXECUTE = 1
    WRITE = 2
    READ = 4
    ALL = 7

    @property
    def label(self) -> str:
        """The HDFS name used in messages: READ, WRITE, EXECUTE, READ_EXECUTE, ..."""
        names = [n for n, f in (("READ", FsAction.READ), ("WRITE", FsAction.WRITE), ("EXECUTE", FsAction.EXECUTE)) if f & self]
        return "ALL" if len(names) == 3 else "_".join(names) or "NONE"


def parse_permission(text: str) -> int:
    """Return the permission ``text`` spells, or raise ``ValueError``."""
    if _OCTAL.fullmatch(text):
        value = int(text, 8)
        if value & ~0o1777:
            raise ValueError(f"invalid permission {text!r}: set-uid and set-gid are not supported")
        return value
    if _SYMBOLIC.fullmatch(text):
        bits = text[-9:]
        value = 0
        for i, char in enumerate(bits):
            if char not in "-T":
                value |= 1 << (8 - i)
        # T is sticky without other-execute, which the loop has left unset.
        if bits[-1] in "tT":
            value |= STICKY
        return value
    raise ValueError(f"invalid permission {text!r}: use octal (755) or symbolic (-rwxr-xr-x)")


def format_permission(mode: int, is_dir: bool) -> str:
    """``drwxr-xr-x`` / ``-rw-r--r--``; the sticky bit shows as ``t`` or ``T``."""
    chars = ["d" if is_dir else "-"]
    for shift in (6, 3, 0):
        triple = (mode >> shift) & 7
        chars.append("r" if triple & 4 else "-")
        chars.append("w" if triple & 2 else "-")
        chars.append("x" if triple & 1 else "-")
    if mode & STICKY:
        chars[-1] = "t" if mode & 1 else "T"
    return "".join(chars)


@dataclass(frozen=True, slots=True)
class Principal:
    """The requesting user, the groups it is in and whether it bypasses checks."""

    name: str
    groups: frozenset[str]
    is_superuser: bool


class GroupMap:
    """Group memberships from the gateway's group source (``[groups]``), and from nowhere else.

    ``memberships`` is that source, or ``{group: users}`` for static ones.
    A user is in exactly the groups the source gives it.  No group is implied
    by a user's name: were every user in a group named after itself, a user
    called ``supergroup`` (or like any configured group) would get that
    group's rights, superuser rights included.
    """

    __slots__ = ("_groups_of", "superuser", "supergroup")

    def __init__(
        self, memberships: Mapping[str, Iterable[str]] | GroupSource, *, superuser: str, supergroup: str
    ) -> None:
        source = StaticGroups(members_to_groups(memberships)) if isinstance(memberships, Mapping) else memberships
        self._groups_of = source.groups_of
        self.superuser = superuser
        self.supergroup = supergroup

    def principal(self, user: str) -> Principal:
        groups = self._groups_of(user)
        return Principal(user, groups, user == self.superuser or self.supergroup in groups)


def has_access(principal: Principal, owner: str, group: str, mode: int, wanted: FsAction) -> bool:
    """True when ``principal`` may do ``wanted`` on an inode with this owner, group and mode."""
    if principal.is_superuser:
        return True
    if principal.name == owner:
        granted = (mode >> 6) & 7
    elif group in principal.groups:
        granted = (mode >> 3) & 7
    else:
        granted = mode & 7
    return (granted & wanted) == wanted
