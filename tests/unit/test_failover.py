"""The failover policy: which backend first, which failures move a request on, what a standby answer is."""

from __future__ import annotations

import json
import types

import pytest

from gateway import failover
from gateway.config import BackendConfig
from gateway.failover import Backend, BackendSet, Failure, is_standby_answer


def urls(backends: BackendSet) -> list[str]:
    return [b.url for b in backends.order()]


def make(n: int, *, attempts: int = 3, cooldown: float = 3600.0) -> tuple[BackendSet, list[Backend]]:
    backends = [Backend(f"http://nn{i}:9870") for i in range(n)]
    return BackendSet(backends, attempts=attempts, cooldown=cooldown), backends


def test_the_configured_order_until_one_answers_then_that_one_first() -> None:
    s, (a, b, c) = make(3)
    assert urls(s) == [a.url, b.url, c.url]
    s.succeeded(c)
    assert urls(s) == [c.url, a.url, b.url]
    s.succeeded(b)
    assert urls(s) == [b.url, a.url, c.url]


def test_a_failed_backend_is_passed_over_while_it_cools_down() -> None:
    s, (a, b, c) = make(3)
    s.failed(a)
    assert urls(s) == [b.url, c.url]
    s.succeeded(a)  # answered after all (tried when all were cooling): its breaker closes
    assert urls(s) == [a.url, b.url, c.url]


def test_without_a_cooldown_nothing_is_passed_over() -> None:
    s, (a, b) = make(2, cooldown=0)
    s.failed(a)
    assert urls(s) == [a.url, b.url]


def test_when_every_backend_cools_down_all_are_tried_in_order() -> None:
    s, (a, b) = make(2)
    s.succeeded(b)
    s.failed(a)
    s.failed(b)
    assert urls(s) == [b.url, a.url]


def test_attempts_bound_the_backends_tried() -> None:
    s, backends = make(5, attempts=2)
    assert urls(s) == [backends[0].url, backends[1].url]
    s, backends = make(3, attempts=1)  # failover_attempts = 1: no failover
    assert urls(s) == [backends[0].url]


def test_an_empty_set_is_refused() -> None:
    with pytest.raises(ValueError, match="^a backend set needs at least one backend$"):
        BackendSet([])


class Clock:
    """time.monotonic for gateway.failover, read and moved by the test (its reference point is undefined)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(100.0)
    monkeypatch.setattr(failover, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    return clock


def test_a_cooldown_ends_when_it_says(clock: Clock) -> None:
    s, (a, b) = make(2, cooldown=5.0)
    s.failed(a)
    clock.now = 104.999
    assert urls(s) == [b.url]
    clock.now = 105.0
    assert urls(s) == [a.url, b.url]


def test_without_a_cooldown_nothing_is_passed_over_even_within_one_tick(clock: Clock) -> None:
    s, (a, b) = make(2, cooldown=0)
    s.failed(a)  # and the clock reads the same when the next request orders them
    assert urls(s) == [a.url, b.url]


def test_an_answer_closes_the_breaker_whatever_the_clock_reads(clock: Clock) -> None:
    clock.now = 0.0
    s, (a, b, c) = make(3, cooldown=5.0)
    s.failed(a)
    clock.now = 0.5
    s.succeeded(a)
    assert urls(s) == [a.url, b.url, c.url]


def test_the_defaults_are_the_configurations(clock: Clock) -> None:
    defaults = BackendConfig()
    backends = [Backend(f"http://nn{i}:9870") for i in range(defaults.failover_attempts + 2)]
    s = BackendSet(backends)
    assert len(s.order()) == defaults.failover_attempts
    s.failed(backends[0])
    assert backends[0].down_until == clock.now + defaults.failover_cooldown


def test_one_backend_is_always_tried_and_nothing_is_recorded() -> None:
    s = BackendSet.single("http://only:1")
    (only,) = s.backends
    s.failed(only)
    assert urls(s) == ["http://only:1"] and only.down_until == 0.0


def test_a_breaker_is_shared_by_the_sets_that_list_the_backend() -> None:
    shared = Backend("http://nn0:9870")
    first = BackendSet([shared, Backend("http://nn1:9870")])
    second = BackendSet([Backend("http://nn2:9870"), shared])
    first.failed(shared)
    assert urls(second) == ["http://nn2:9870"]


@pytest.mark.parametrize(
    ("failure", "method", "touched", "moves_on"),
    [
        (Failure.CONNECT, "GET", False, True),
        (Failure.CONNECT, "POST", False, True),  # never reached a backend
        (Failure.CONNECT, "PUT", True, False),  # but a body already read cannot be sent again
        (Failure.BROKEN, "GET", False, True),
        (Failure.BROKEN, "HEAD", False, True),
        (Failure.BROKEN, "OPTIONS", False, True),
        (Failure.BROKEN, "POST", False, False),  # may have reached a backend
        (Failure.BROKEN, "PUT", False, False),  # WebHDFS PUTs (RENAME, CREATE) are not repeatable
        (Failure.BROKEN, "DELETE", False, False),
        (Failure.STANDBY, "PUT", False, True),  # a standby did nothing
        (Failure.STANDBY, "POST", False, True),
        (Failure.STANDBY, "POST", True, False),
    ],
)
def test_what_moves_a_request_on(failure: Failure, method: str, touched: bool, moves_on: bool) -> None:
    assert failure.moves_on(method, touched) is moves_on


def remote(exception: str, java: str, message: str = "m") -> bytes:
    return json.dumps({"RemoteException": {"exception": exception, "javaClassName": java, "message": message}}).encode()


STANDBY = remote("StandbyException", "org.apache.hadoop.ipc.StandbyException",
                 "Operation category READ is not supported in state standby. Visit https://s.apache.org/sbnn-error")


@pytest.mark.parametrize(
    ("status", "body", "standby"),
    [
        (403, STANDBY, True),
        (403, remote("StandbyException", ""), True),
        (403, remote("", "org.apache.hadoop.ipc.StandbyException"), True),
        (500, STANDBY, False),  # WebHDFS sends it as 403 only
        (403, remote("AccessControlException", "org.apache.hadoop.security.AccessControlException",
                     "Permission denied: user=bob, path=/StandbyException"), False),
        (403, b'{"RemoteException": "StandbyException"}', False),
        (403, b"StandbyException", False),
        (403, b"", False),
        (403, b"[1, 2]", False),
        (403, b"\xff\xfe", False),
        (403, b"[" * 50_000, False),  # deeper than the decoder recurses
        (403, b'{"RemoteException": ' * 3_000, False),
        (403, b'{"RemoteException": {"exception": ["StandbyException"]}}', False),  # a class name is a string
        (403, b'{"RemoteException": {"exception": null, "javaClassName": {"StandbyException": 1}}}', False),
    ],
)
def test_is_standby_answer(status: int, body: bytes, standby: bool) -> None:
    assert is_standby_answer(status, body) is standby
