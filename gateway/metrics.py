"""The gateway's Prometheus metrics, correct across its worker processes.

prometheus-client's multiprocess mode: each worker writes its samples to
files of its own in one directory, and the admin listener
(:mod:`gateway.admin`) adds them all up on every scrape.  The serving process
makes the directory, fresh and private, before any worker exists
(:func:`start_multiprocess`); when a worker dies its gauges are dropped
(:func:`forget_process`) while its counts stay in the totals, so counters
never go backwards when a worker is replaced.

Cheap on the hot path: label children are looked up once per distinct label
set and kept; a request costs a few dictionary look-ups and writes to a
memory-mapped file.  The open connections and streams are sampled once a
second (:func:`sample_forever`) rather than counted on every change.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = (
    "GatewayMetrics",
    "MULTIPROC_VARIABLE",
    "forget_process",
    "multiprocess_registry",
    "remove_multiprocess_dir",
    "sample_forever",
    "start_multiprocess",
)

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Methods counted under their own name; any other token is "other", so a
# client cannot grow the label set.
_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"})
# A pseudo handshake takes microseconds, a Kerberos one a few milliseconds,
# one against a slow KDC or an overloaded accept pool much more.
_HANDSHAKE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, float("inf"))
_UPSTREAM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf"))
# An event loop stall is reported past log.loop_stall (0.1 s by default; the suite watches from 0.025 s).
_STALL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf"))
_SAMPLE_PERIOD = 1.0  # seconds between samples of the open connections and streams


def start_multiprocess() -> str:
    """Make a fresh private directory for this gateway's samples; metrics made from now on write there.

    Call once in the serving process before any worker exists: the workers
    inherit the setting.  Returns the directory (remove it at exit with
    :func:`remove_multiprocess_dir`).
    """
    path = tempfile.mkdtemp(prefix="authgateway-metrics-")  # mode 0700
    os.environ[MULTIPROC_VARIABLE] = path
    # prometheus-client picks its value class when first imported; pick again
    # now that the directory is known, whoever imported it first.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


def forget_process(pid: int) -> None:
    """Drop the gauges of a worker that exited (its counters stay in the totals)."""
    path = os.environ.get(MULTIPROC_VARIABLE)
    if path:
        mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def remove_multiprocess_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def multiprocess_registry(path: str) -> CollectorRegistry:
    """A registry that adds up every worker's samples in ``path`` at each collection."""
    registry = CollectorRegistry(auto_describe=True)
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry


@dataclass(frozen=True, slots=True)
class _RouteChildren:
    upstream: Histogram
    received: Counter
    sent: Counter


class GatewayMetrics:
    """The metrics one worker records; every method is safe to call on the hot path.

    Label values: ``route`` is a route's prefix; ``scheme`` the authentication
    scheme of the request's session (``simple``, ``kerberos``...) or ``none``;
    ``method`` the request's method or ``other``; ``reason`` a
    :class:`gateway.authfilter.Refusal`.
    """

    def __init__(self) -> None:
        # registry=None: the admin listener collects from the files, and an
        # app built twice in one process (tests) must not register twice.
        self._requests = Counter(
            "authgateway_requests", "Requests answered, by route, method, status and authentication scheme",
            ("route", "method", "status", "scheme"), registry=None,
        )
        self._failures = Counter(
            "authgateway_auth_failures", "Requests the authentication filter refused, by reason and scheme",
            ("reason", "scheme"), registry=None,
        )
        self._handshake = Histogram(
            "authgateway_auth_handshake_seconds", "Seconds a scheme took to examine presented credentials",
            ("scheme",), buckets=_HANDSHAKE_BUCKETS, registry=None,
        )
        self._upstream = Histogram(
            "authgateway_upstream_seconds",
            "Seconds from forwarding a request until its answer's head was ready to send, by route",
            ("route",), buckets=_UPSTREAM_BUCKETS, registry=None,
        )
        self._received = Counter(
            "authgateway_received_bytes", "Request body bytes received from clients, by route", ("route",),
            registry=None,
        )
        self._sent = Counter(
            "authgateway_sent_bytes", "Response bytes (head and body) sent to clients, by route", ("route",),
            registry=None,
        )
        self._connections = Gauge(
            "authgateway_open_connections", "Client connections open (sampled each second)",
            registry=None, multiprocess_mode="livesum",
        )
        self._streams = Gauge(
            "authgateway_open_streams", "Requests in progress (sampled each second)",
            registry=None, multiprocess_mode="livesum",
        )
        self._workers = Gauge(
            "authgateway_workers", "Worker processes serving", registry=None, multiprocess_mode="livesum"
        )
        self._loop_stalls = Histogram(
            "authgateway_loop_stall_seconds",
            "Stalls of a worker's event loop longer than log.loop_stall: seconds it was held by one stretch of "
            "work (every other request of the worker waited), time spent waiting for a CPU not counted",
            buckets=_STALL_BUCKETS, registry=None,
        )
        self._request_children: dict[tuple[str, str, int, str], Counter] = {}
        self._route_children: dict[str, _RouteChildren] = {}
        self._failure_children: dict[tuple[str, str], Counter] = {}
        self._handshake_children: dict[str, Histogram] = {}

    def _route(self, route: str) -> _RouteChildren:
        children = self._route_children.get(route)
        if children is None:
            children = _RouteChildren(
                self._upstream.labels(route), self._received.labels(route), self._sent.labels(route)
            )
            self._route_children[route] = children
        return children

    def request(self, route: str, method: str, status: int, scheme: str, received: int, sent: int) -> None:
        """One request answered on ``route``: ``received`` body bytes in, ``sent`` bytes out."""
        if method not in _METHODS:
            method = "other"
        key = (route, method, status, scheme)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self._requests.labels(route, method, str(status), scheme)
        child.inc()
        children = self._route(route)
        if received:
            children.received.inc(received)
        if sent:
            children.sent.inc(sent)

    def auth_failure(self, reason: str, scheme: str) -> None:
        key = (reason, scheme)
        child = self._failure_children.get(key)
        if child is None:
            child = self._failure_children[key] = self._failures.labels(reason, scheme)
        child.inc()

    def handshake(self, scheme: str, seconds: float) -> None:
        child = self._handshake_children.get(scheme)
        if child is None:
            child = self._handshake_children[scheme] = self._handshake.labels(scheme)
        child.observe(seconds)

    def upstream(self, route: str, seconds: float) -> None:
        self._route(route).upstream.observe(seconds)

    def loop_stall(self, seconds: float) -> None:
        """This worker's event loop was held ``seconds`` (past ``log.loop_stall``; :mod:`gateway.loopwatch`)."""
        self._loop_stalls.observe(seconds)

    def sample(self, *, serving: bool, connections: int, streams: int) -> None:
        """This worker's state: ``serving`` (counted in ``authgateway_workers``), its connections and streams."""
        self._workers.set(1 if serving else 0)
        self._connections.set(connections)
        self._streams.set(streams)


async def sample_forever(
    metrics: GatewayMetrics, serving: Callable[[], bool], connections: Callable[[], int], streams: Callable[[], int]
) -> None:
    """Record this worker's state now and then once a second until cancelled.

    A worker that drains at shutdown stops counting as serving within a
    second, so ``/readyz`` turns away new traffic while it finishes.
    """
    while True:
        metrics.sample(serving=serving(), connections=connections(), streams=streams())
        await asyncio.sleep(_SAMPLE_PERIOD)
