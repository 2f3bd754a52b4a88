"""The OS group source off the event loop: coalesced lookups in threads, a bounded cache (gateway.groups).

The slow lookups here are the ``lookup`` the source takes for tests; the
end-to-end test (tests/e2e/test_groups_nss.py) makes the system's NSS slow.
"""

from __future__ import annotations

import asyncio
import threading
import time

from gateway.groups import OsGroups, groups_known


async def test_concurrent_misses_for_one_user_make_one_lookup_in_another_thread() -> None:
    calls: list[tuple[str, str]] = []
    release = threading.Event()

    def lookup(user: str) -> frozenset[str]:
        calls.append((user, threading.current_thread().name))
        release.wait(5)
        return frozenset({"staff"})

    groups = OsGroups(60.0, lookup=lookup)
    waiters = [asyncio.ensure_future(groups_known(groups.prefetch, "bob")) for _ in range(20)]
    await asyncio.sleep(0.05)  # the loop runs on while the lookup waits
    assert not any(w.done() for w in waiters)
    release.set()
    await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert calls == [("bob", "authgateway-groups")]
    assert groups.groups_of("bob") == {"staff"} and groups.prefetch("bob") is None


async def test_a_waiter_that_goes_away_does_not_cancel_the_lookup_others_wait_for() -> None:
    release = threading.Event()
    groups = OsGroups(60.0, lookup=lambda user: (release.wait(5), frozenset({"g"}))[1])
    first = asyncio.ensure_future(groups_known(groups.prefetch, "bob"))
    second = asyncio.ensure_future(groups_known(groups.prefetch, "bob"))
    await asyncio.sleep(0.01)
    first.cancel()
    release.set()
    await asyncio.wait_for(second, 5)
    assert groups.groups_of("bob") == {"g"}


async def test_a_slow_user_does_not_hold_up_another() -> None:
    def lookup(user: str) -> frozenset[str]:
        if user == "slow":
            time.sleep(2)
        return frozenset({user})

    groups = OsGroups(60.0, lookup=lookup)
    slow = asyncio.ensure_future(groups_known(groups.prefetch, "slow"))
    started = time.monotonic()
    await asyncio.wait_for(groups_known(groups.prefetch, "fast"), 1)
    assert time.monotonic() - started < 0.5 and not slow.done()
    await asyncio.wait_for(slow, 5)


async def test_the_cache_is_bounded_and_forgets_the_longest_remembered_first() -> None:
    groups = OsGroups(60.0, lookup=lambda user: frozenset({user}), limit=3)
    for user in ("a", "b", "c", "d"):
        await groups_known(groups.prefetch, user)
    assert len(groups._cache) == 3 and "a" not in groups._cache
    assert groups.prefetch("b") is None and groups.prefetch("a") is not None


async def test_a_failing_lookup_answers_no_groups_and_is_retried_soon() -> None:
    now = [0.0]
    answers: list[frozenset[str] | Exception] = [OSError("LDAP server unavailable"), frozenset({"g"})]

    def lookup(user: str) -> frozenset[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    groups = OsGroups(300.0, lookup=lookup, clock=lambda: now[0])
    await groups_known(groups.prefetch, "bob")
    assert groups.groups_of("bob") == frozenset()
    now[0] = 29.0
    assert groups.prefetch("bob") is None
    now[0] = 31.0
    await groups_known(groups.prefetch, "bob")
    assert groups.groups_of("bob") == {"g"}


async def test_lookups_at_once_are_bounded() -> None:
    running = [0, 0]  # now, most
    lock = threading.Lock()

    def lookup(user: str) -> frozenset[str]:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return frozenset()

    groups = OsGroups(60.0, lookup=lookup, lookups_at_once=3)
    await asyncio.wait_for(asyncio.gather(*(groups_known(groups.prefetch, f"u{i}") for i in range(12))), 10)
    assert running[1] == 3


async def test_no_caching_still_lets_the_waiting_requests_use_their_lookup() -> None:
    asked: list[str] = []
    groups = OsGroups(0.0, lookup=lambda user: (asked.append(user), frozenset({"g"}))[1])
    await asyncio.wait_for(groups_known(groups.prefetch, "bob"), 5)  # not a lookup after another, for ever
    assert asked == ["bob"] and groups.groups_of("bob") == {"g"}
