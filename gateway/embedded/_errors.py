"""Failures of file system commands (rendered by gateway.hoopjson).

Every error the embedded backend reports is an :class:`FsError`: an HTTP
status, the Java exception name a Hoop/HttpFS client expects and a message
that names HDFS paths only (never a host path, never a traceback).
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
    """A failed command; ``status`` and ``exception`` shape the failure JSON."""

    status: int = 500
    exception: str = "IOException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthenticationError(FsError):
    status = 401
    exception = "AuthenticationException"


class BadRequestError(FsError):
    status = 400
    exception = "IllegalArgumentException"


class AccessDeniedError(FsError):
    status = 403
    exception = "AccessControlException"


class NotFoundError(FsError):
    status = 404
    exception = "FileNotFoundException"


class MethodNotAllowedError(FsError):
    status = 405
    exception = "UnsupportedOperationException"


class AlreadyExistsError(FsError):
    # HttpFS maps this IOException to 500 and WebHDFS to 403; neither is an
    # honest answer to "you asked not to overwrite", 409 Conflict is.
    status = 409
    exception = "FileAlreadyExistsException"


class ParentNotDirectoryError(FsError):
    status = 409
    exception = "ParentNotDirectoryException"


class NotEmptyError(FsError):
    status = 409
    exception = "PathIsNotEmptyDirectoryException"


class IOFailureError(FsError):
    """The host file system failed (disk full, I/O error): a real 500."""

    status = 500
    exception = "IOException"
