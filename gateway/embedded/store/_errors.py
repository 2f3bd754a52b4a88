"""Failures of file system commands, one class per kind of failure.

Every error the store reports is an :class:`FsError`: a
:class:`~gateway.wire.Fault` (the kind of failure) and a message that names
HDFS paths only (never a host path, never a traceback).  The store knows no
REST API: what a fault looks like on the wire (HTTP status, Java exception
name) is in :mod:`gateway.wire`'s tables, which the faces render.
"""

from __future__ import annotations

from typing import ClassVar

from ...wire import Fault

__all__ = (
    "AccessDeniedError",
    "AlreadyExistsError",
    "AuthenticationError",
    "BadRequestError",
    "FsError",
    "IOFailureError",
    "MethodNotAllowedError",
    "NotEmptyError",
    "NotFoundError",
    "ParentNotDirectoryError",
    "PathTooLongError",
    "QuotaExceededError",
)


class FsError(Exception):
    """A failed command; ``fault`` says what kind of failure it is."""

    fault: ClassVar[Fault] = Fault.IO_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthenticationError(FsError):
    fault = Fault.UNAUTHENTICATED


class BadRequestError(FsError):
    fault = Fault.BAD_REQUEST


class AccessDeniedError(FsError):
    fault = Fault.ACCESS_DENIED


class NotFoundError(FsError):
    fault = Fault.NOT_FOUND


class MethodNotAllowedError(FsError):
    fault = Fault.METHOD_NOT_ALLOWED


class AlreadyExistsError(FsError):
    fault = Fault.ALREADY_EXISTS


class ParentNotDirectoryError(FsError):
    fault = Fault.PARENT_NOT_DIRECTORY


class NotEmptyError(FsError):
    fault = Fault.NOT_EMPTY


class PathTooLongError(FsError):
    """A path over HDFS's limits: an ``IOException`` there, the client's fault."""

    fault = Fault.OVER_LIMIT


class IOFailureError(FsError):
    """The host file system failed (disk full, I/O error): a server fault."""

    fault = Fault.IO_FAILURE


class QuotaExceededError(FsError):
    """A per-user limit is reached (open write streams); closing something frees it."""

    fault = Fault.QUOTA_EXCEEDED
