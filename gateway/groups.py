"""Where a user's groups come from: the configuration, or the operating system.

Proxy-user rules (``groups``) and the embedded backend's permissions ask for
the groups of a short user name.  :class:`StaticGroups` answers from
``"group:user1,user2"`` entries; :class:`OsGroups` from the system's user and
group databases (``getent``'s view: files, LDAP or SSSD through NSS),
cached for ``ttl`` seconds, misses included, as Hadoop's ``Groups`` cache
does (``hadoop.security.groups.cache.secs``, 300 by default), so a slow
directory is asked at most once per user per period.

An NSS lookup may take seconds (a directory far away or down), so it never
runs on the event loop: a caller there first awaits
:meth:`GroupSource.prefetch`, which looks the user up in a thread (one
lookup per user however many requests wait for it) and fills the cache, and
then asks :meth:`GroupSource.groups_of`, which answers from memory.  Other
requests go on meanwhile.

"""

from __future__ import annotations

import asyncio
import grp
import logging
import os
import pwd
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol

__all__ = (
    "GroupSource", "OsGroups", "StaticGroups", "group_source", "groups_known", "members_to_groups", "parse_groups",
)

logger = logging.getLogger("gateway.auth")

_CACHE_LIMIT = 10_000  # users remembered at once; past it the longest remembered goes
_LOOKUPS_AT_ONCE = 8  # threads asking NSS at once; more misses wait their turn
_FAILURE_SECONDS = 30.0  # a lookup that failed is tried again this soon, as Hadoop's negative cache
_MIN_TTL = 1.0  # even "no caching" (0) keeps an answer this long: the requests that waited for it use it


class GroupSource(Protocol):
    def groups_of(self, user: str) -> frozenset[str]:
        """The groups ``user`` belongs to; empty for a user nobody knows.

        On the event loop, only after :meth:`prefetch` (or when it returned ``None``).
        """
        ...

    def prefetch(self, user: str) -> Awaitable[object] | None:
        """``None`` when :meth:`groups_of` answers ``user`` from memory now; else an awaitable,
        done when it does (until the event loop next runs something else)."""
        ...


async def groups_known(prefetch: Callable[[str], Awaitable[object] | None], user: str) -> None:
    """Return once ``prefetch(user)`` is ``None`` (:meth:`GroupSource.prefetch`, or a function that asks
    the one in force, which a reload may replace meanwhile): the groups of ``user`` are then in memory."""
    while (pending := prefetch(user)) is not None:
        await pending


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

    def prefetch(self, user: str) -> None:
        return None


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


def _in_thread(ask: Callable[[str], tuple[frozenset[str], float]], user: str) -> asyncio.Future[tuple[frozenset[str], float]]:
    """``ask(user)`` in a daemon thread of its own: one stuck in NSS never holds up the process's exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[tuple[frozenset[str], float]] = loop.create_future()

    def settle(answer: tuple[frozenset[str], float]) -> None:
        if not future.done():  # cancelled meanwhile: nobody waits
            future.set_result(answer)

    def run() -> None:
        answer = ask(user)
        try:
            loop.call_soon_threadsafe(settle, answer)
        except RuntimeError:  # the loop is closed: nobody waits
            pass

    threading.Thread(target=run, name="authgateway-groups", daemon=True).start()
    return future


class OsGroups:
    """The operating system's groups of a user, cached for ``ttl`` seconds.

    At most ``limit`` users are remembered (the longest remembered goes
    first); at most ``lookups_at_once`` threads ask NSS at once.  A lookup
    that fails (NSS raised) answers no groups, logged, and is tried again
    after 30 seconds.  A ``ttl`` under a second counts as one: the requests
    that waited for a lookup must find its answer.  ``lookup`` and ``clock``
    replace the system's for tests.
    """

    __slots__ = ("_cache", "_clock", "_limit", "_lock", "_lookup", "_lookups_at_once", "_pending", "_slots", "_ttl")

    def __init__(
        self,
        ttl: float = 300.0,
        *,
        lookup: Callable[[str], frozenset[str]] = _system_groups,
        clock: Callable[[], float] = time.monotonic,
        limit: int = _CACHE_LIMIT,
        lookups_at_once: int = _LOOKUPS_AT_ONCE,
    ) -> None:
        self._ttl = max(ttl, _MIN_TTL)
        self._lookup = lookup
        self._clock = clock
        self._limit = limit
        self._lookups_at_once = lookups_at_once
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}  # user -> (expires at, groups), oldest first
        self._lock = threading.Lock()  # groups_of may also be asked from threads
        self._pending: dict[str, asyncio.Task[frozenset[str]]] = {}  # the lookup in progress per user
        self._slots: asyncio.Semaphore | None = None  # made at the first lookup, on the loop that waits for it

    def groups_of(self, user: str) -> frozenset[str]:
        """The remembered groups, even if their time is up (:meth:`prefetch` renews them);
        a user never looked up is looked up here, which blocks: never on the event loop."""
        hit = self._cache.get(user)
        if hit is not None:
            return hit[1]
        groups, ttl = self._ask(user)
        self._remember(user, groups, ttl)
        return groups

    def prefetch(self, user: str) -> Awaitable[frozenset[str]] | None:
        hit = self._cache.get(user)
        if hit is not None and hit[0] > self._clock():
            return None
        pending = self._pending.get(user)
        if pending is None:
            pending = self._pending[user] = asyncio.ensure_future(self._fetch(user))
            pending.add_done_callback(lambda _: self._pending.pop(user, None))  # cancelled unstarted too
        # A waiter that goes away (its client did) must not cancel the lookup others wait for.
        return asyncio.shield(pending)

    async def _fetch(self, user: str) -> frozenset[str]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._lookups_at_once)
        async with self._slots:
            try:
                groups, ttl = await _in_thread(self._ask, user)
            except RuntimeError as exc:  # no thread could be started
                logger.warning("group lookup for %s not started, answering no groups: %s", user, exc)
                groups, ttl = frozenset(), min(self._ttl, _FAILURE_SECONDS)
        self._remember(user, groups, ttl)
        return groups

    def _ask(self, user: str) -> tuple[frozenset[str], float]:
        """The groups of ``user`` and how long to keep them: never raises."""
        started = time.monotonic()
        try:
            groups = self._lookup(user)
        except Exception as exc:  # NSS (LDAP, SSSD) failed: no groups is the safe answer
            logger.warning("group lookup for %s failed, answering no groups for %.0f s: %s", user, _FAILURE_SECONDS, exc)
            return frozenset(), min(self._ttl, _FAILURE_SECONDS)
        took = time.monotonic() - started
        if took > 1.0:
            logger.warning("group lookup for %s took %.1f s (NSS: files, LDAP, SSSD)", user, took)
        return groups, self._ttl

    def _remember(self, user: str, groups: frozenset[str], ttl: float) -> None:
        with self._lock:
            self._cache.pop(user, None)  # re-inserted last: the newest
            while len(self._cache) >= self._limit:
                del self._cache[next(iter(self._cache))]
            self._cache[user] = (self._clock() + ttl, groups)


def group_source(source: str, static: Iterable[str], cache_seconds: float) -> GroupSource:
    """The group source ``[groups]`` describes: ``"static"`` entries, or the system's (``"os"``)."""
    if source == "os":
        return OsGroups(cache_seconds)
    if source == "static":
        return StaticGroups.from_entries(static)
    raise ValueError(f"unknown group source {source!r}")
