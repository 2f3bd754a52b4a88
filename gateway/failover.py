"""Which of a route's backends to try, in what order, and when to try the next.

A route may list several backends (an HA NameNode pair, HttpFS instances).
The rules, which :class:`~gateway.proxy.UpstreamProxy` applies:

* Order: the backend that last answered first (as HDFS clients stay with
  the active NameNode), then the others in the order configured.  A
  backend that failed is passed over for ``cooldown`` seconds (a short
  circuit breaker), unless every backend is cooling down, when all are
  tried in that order anyway: the breaker never makes a route unreachable.
* At most ``attempts`` backends per request, each at most once, with no
  pause between them.
* What moves a request on to the next backend (:class:`Failure`):

  - it could not connect (refused, unreachable, connect timeout): the
    request never reached a backend, so any method moves on;
  - the connection broke before any byte of an answer: only a *safe*
    method (GET, HEAD, OPTIONS, TRACE; RFC 9110 9.2.1) moves on, since the
    backend may have acted.  PUT and DELETE are idempotent in HTTP but
    not in WebHDFS (``op=RENAME``, ``op=CREATE`` without overwrite,
    ``op=DELETE`` answering ``false`` the second time), so they do not;
  - the backend answered Hadoop's ``StandbyException`` (a NameNode in
    standby or observer state refuses in ``checkOperation``, before doing
    anything; WebHDFS sends it as a 403 ``RemoteException``): any method
    moves on, as Hadoop's own client retry policy
    (``FailoverOnNetworkExceptionRetry``) fails over on it whatever the
    call.  Knox, by default, keeps POST and PATCH even from this.

  In every case a request with a body moves on only while no byte of the
  body has been read from the client: a streamed body cannot be replayed.
* Anything else (an answer of any status, a timeout once the request was
  sent, a pool with no free connection) is the answer: it is passed on.

The state (the preferred backend, each one's cool-down) is per worker
process: each learns on its own within one request, and nothing needs to
hold across workers.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.upstream import Origin

__all__ = ("Backend", "BackendSet", "Failure", "SAFE_METHODS", "STANDBY_BODY_LIMIT", "is_standby_answer")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
STANDBY_BODY_LIMIT = 64 * 1024  # a RemoteException document is a few hundred bytes
_STANDBY_CLASSES = frozenset({"StandbyException", "org.apache.hadoop.ipc.StandbyException"})


class Failure(enum.Enum):
    """Why an attempt on one backend failed in a way that may move the request on."""

    CONNECT = "could not connect"  # never reached the backend
    BROKEN = "connection broke before an answer"  # may have reached it
    STANDBY = "answered StandbyException"  # reached it; it did nothing

    def moves_on(self, method: str, body_touched: bool) -> bool:
        """Whether a request (``method``; ``body_touched``: some of its body already read) may go on to another backend."""
        if body_touched:
            return False
        return self is not Failure.BROKEN or method in SAFE_METHODS


def is_standby_answer(status: int, body: bytes) -> bool:
    """Whether an answer is Hadoop's ``StandbyException``: a 403 whose JSON body is a
    ``RemoteException`` of that class (by its ``exception`` or ``javaClassName``).

    The body is parsed, not searched: a path or message that merely contains
    the word (``Permission denied: /StandbyException``) is no standby answer.
    """
    if status != 403 or not body:
        return False
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # the decoder recurses once per level of nesting
        return False
    remote = doc.get("RemoteException") if isinstance(doc, dict) else None
    if not isinstance(remote, dict):
        return False
    names = (remote.get("exception"), remote.get("javaClassName"))
    return any(isinstance(name, str) and name in _STANDBY_CLASSES for name in names)  # a list is unhashable


class Backend:
    """One backend URL and its circuit breaker."""

    __slots__ = ("down_until", "origin", "url")

    def __init__(self, url: str) -> None:
        self.url = url
        self.origin = Origin.from_url(url)
        self.down_until = 0.0  # monotonic time its cool-down ends

    def cooling(self, now: float) -> bool:
        return now < self.down_until


@dataclass(frozen=True, slots=True)
class _Policy:
    attempts: int
    cooldown: float


class BackendSet:
    """A route's backends in the order to try them (see the module's rules).

    ``backends`` may be shared with other sets (their breakers then are),
    each set keeps its own preferred backend.  With one backend there is
    nothing to choose: it is always tried, and nothing is recorded.
    """

    __slots__ = ("_backends", "_policy", "_preferred")

    def __init__(self, backends: Sequence[Backend], *, attempts: int = 3, cooldown: float = 5.0) -> None:
        if not backends:
            raise ValueError("a backend set needs at least one backend")
        self._backends = tuple(backends)
        self._policy = _Policy(max(1, attempts), max(0.0, cooldown))
        self._preferred = 0

    @classmethod
    def single(cls, url: str) -> BackendSet:
        return cls([Backend(url)])

    @property
    def backends(self) -> tuple[Backend, ...]:
        return self._backends

    def order(self) -> Sequence[Backend]:
        """The backends one request is to try, best first, at most ``attempts`` of them."""
        backends = self._backends
        if len(backends) == 1:
            return backends
        first = self._preferred
        ordered = [backends[first], *backends[:first], *backends[first + 1 :]]
        now = time.monotonic()
        ready = [b for b in ordered if not b.cooling(now)]
        return (ready or ordered)[: self._policy.attempts]

    def succeeded(self, backend: Backend) -> None:
        """``backend`` answered: it is tried first from now on, and its breaker closes."""
        if len(self._backends) == 1:
            return
        backend.down_until = 0.0
        self._preferred = self._backends.index(backend)

    def failed(self, backend: Backend) -> None:
        """``backend`` failed (a :class:`Failure`): it is passed over for the cool-down."""
        if len(self._backends) == 1:
            return
        backend.down_until = time.monotonic() + self._policy.cooldown
