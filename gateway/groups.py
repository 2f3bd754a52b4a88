"""Where a user's groups come from: the configuration, or the operating system.

Proxy-user rules (``groups``) and the embedded backend's permissions ask for
the groups of a short user name.  :class:`StaticGroups` answers from
``"group:user1,user2"`` entries; :class:`OsGroups` from the system's user and
group databases (``getent``'s view: files, LDAP or SSSD through NSS),
cached for ``ttl`` seconds, misses included, as Hadoop's ``Groups`` cache
does (``hadoop.security.groups.cache.secs``, 300 by default), so a slow
directory is asked at most once per user per period.
"""

from __future__ import annotations

import grp
import os
import pwd
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

__all__ = ("GroupSource", "OsGroups", "StaticGroups", "group_source", "members_to_groups", "parse_groups")

_CACHE_LIMIT = 10_000  # users remembered at once; past it the cache starts afresh


class GroupSource(Protocol):
    def groups_of(self, user: str) -> frozenset[str]:
        """The groups ``user`` belongs to; empty for a user nobody knows."""
        ...


def parse_groups(entries: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``["g:u1,u2", "g:u3"]`` -> ``{"g": ("u1", "u2", "u3")}``; raise ``ValueError`` when malformed."""
    result: dict[str, list[str]] = {}
    for entry in entries:
        group, sep, users = entry.partition(":")
        names = [u.strip() for u in users.split(",") if u.strip()]
        if not sep or not group.strip() or not names:
            raise ValueError(f"group entry {entry!r} must look like 'group:user1,user2'")
        result.setdefault(group.strip(), []).extend(names)
    return {g: tuple(u) for g, u in result.items()}


def members_to_groups(memberships: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """``{group: users}`` -> ``{user: groups}``."""
    member_of: dict[str, set[str]] = {}
    for group, users in memberships.items():
        for user in users:
            member_of.setdefault(user, set()).add(group)
    return {user: frozenset(groups) for user, groups in member_of.items()}


class StaticGroups:
    """Groups as configured: a user is in exactly the groups that list it."""

    __slots__ = ("_member_of",)

    def __init__(self, member_of: Mapping[str, frozenset[str]]) -> None:
        self._member_of = dict(member_of)

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> StaticGroups:
        return cls(members_to_groups(parse_groups(entries)))

    def groups_of(self, user: str) -> frozenset[str]:
        return self._member_of.get(user, frozenset())


def _system_groups(user: str) -> frozenset[str]:
    """The primary and supplementary groups of ``user`` in the system databases; empty if unknown."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return frozenset()
    names: set[str] = set()
    for gid in os.getgrouplist(user, entry.pw_gid):
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:  # a gid without a name: nothing a rule could name
            continue
    return frozenset(names)


class OsGroups:
    """The operating system's groups of a user, cached for ``ttl`` seconds."""

    __slots__ = ("_cache", "_clock", "_lookup", "_ttl")

    def __init__(
        self,
        ttl: float = 300.0,
        *,
        lookup: Callable[[str], frozenset[str]] = _system_groups,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._lookup = lookup
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    def groups_of(self, user: str) -> frozenset[str]:
        now = self._clock()
        hit = self._cache.get(user)
        if hit is not None and hit[0] > now:
            return hit[1]
        groups = self._lookup(user)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[user] = (now + self._ttl, groups)
        return groups


def group_source(source: str, static: Iterable[str], cache_seconds: float) -> GroupSource:
    """The group source ``[groups]`` describes: ``"static"`` entries, or the system's (``"os"``)."""
    if source == "os":
        return OsGroups(cache_seconds)
    if source == "static":
        return StaticGroups.from_entries(static)
    raise ValueError(f"unknown group source {source!r}")
