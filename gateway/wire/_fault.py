"""The kinds of failure, named once for every wire format."""

from __future__ import annotations

import enum

__all__ = ("Fault",)


class Fault(enum.Enum):
    """One member per kind of failure; what it looks like on the wire is each table's business."""

    BAD_REQUEST = enum.auto()
    UNAUTHENTICATED = enum.auto()
    ACCESS_DENIED = enum.auto()
    NOT_FOUND = enum.auto()
    METHOD_NOT_ALLOWED = enum.auto()
    ALREADY_EXISTS = enum.auto()
    PARENT_NOT_DIRECTORY = enum.auto()
    NOT_EMPTY = enum.auto()
    EXPECTATION_FAILED = enum.auto()
    PAYLOAD_TOO_LARGE = enum.auto()
    IO_FAILURE = enum.auto()
    OVER_LIMIT = enum.auto()  # a request over a limit HDFS refuses with a plain IOException (path length)
    BACKEND_UNAVAILABLE = enum.auto()  # the gateway could not get an answer from its backend
    UNAVAILABLE = enum.auto()  # the gateway itself cannot serve now (full, shutting down)
    BACKEND_TIMEOUT = enum.auto()
    QUOTA_EXCEEDED = enum.auto()  # a per-user limit is reached (open streams)
    REQUEST_TIMEOUT = enum.auto()  # the client stopped sending its request body (server.body_timeout)
