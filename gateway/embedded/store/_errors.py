"""Failures of file system commands, one class per kind of failure.

Every error the store reports is an :class:`FsError` with a message that
names HDFS paths only (never a host path, never a traceback).  The store
knows no REST API: what a kind of failure looks like on the wire (HTTP
status, Java exception name) is for each face to say.
"""

from __future__ import annotations

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
)


class FsError(Exception):
    """A failed command; its class says what kind of failure it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthenticationError(FsError):
    pass


class BadRequestError(FsError):
    pass


class AccessDeniedError(FsError):
    pass


class NotFoundError(FsError):
    pass


class MethodNotAllowedError(FsError):
    pass


class AlreadyExistsError(FsError):
    pass


class ParentNotDirectoryError(FsError):
    pass


class NotEmptyError(FsError):
    pass


class IOFailureError(FsError):
    """The host file system failed (disk full, I/O error): a server fault."""
