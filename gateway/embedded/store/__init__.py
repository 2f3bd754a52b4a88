"""The embedded file system store: HDFS semantics over a local directory, no REST API.

Namespace (paths, host tree, metadata), permissions, transfers, streams
(:mod:`._streams`, open files named by an id, kept in SQLite) and one
family of errors (:class:`FsError`, a class per kind of failure).  The
faces (:mod:`gateway.embedded.faces`) parse requests into calls on
:class:`Store` and render its results and errors in their REST API.
"""

from ._errors import (
    AccessDeniedError,
    AlreadyExistsError,
    AuthenticationError,
    BadRequestError,
    FsError,
    IOFailureError,
    MethodNotAllowedError,
    NotEmptyError,
    NotFoundError,
    ParentNotDirectoryError,
    PathTooLongError,
    QuotaExceededError,
)
from ._glob import Glob, GlobError, compile_glob
from ._namespace import DEFAULT_BLOCK_SIZE, DEFAULT_REPLICATION, Inode, Namespace
from ._paths import (
    MAX_PATH_DEPTH,
    MAX_PATH_LENGTH,
    Parts,
    check_not_reserved,
    check_path_limits,
    hdfs_path,
    parse_hdfs_path,
    parse_target,
)
from ._perm import Principal, format_permission, parse_groups, parse_permission
from ._store import SMALL_READ, STREAM_TTL_MS, Body, ContentSummary, FileChecksum, Page, Reader, Store
from ._streams import StreamKind

__all__ = (
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_REPLICATION",
    "MAX_PATH_DEPTH",
    "MAX_PATH_LENGTH",
    "SMALL_READ",
    "STREAM_TTL_MS",
    "AccessDeniedError",
    "AlreadyExistsError",
    "AuthenticationError",
    "BadRequestError",
    "Body",
    "ContentSummary",
    "FileChecksum",
    "FsError",
    "Glob",
    "GlobError",
    "IOFailureError",
    "Inode",
    "MethodNotAllowedError",
    "Namespace",
    "NotEmptyError",
    "NotFoundError",
    "ParentNotDirectoryError",
    "QuotaExceededError",
    "Page",
    "Parts",
    "PathTooLongError",
    "Principal",
    "Reader",
    "Store",
    "StreamKind",
    "check_not_reserved",
    "check_path_limits",
    "compile_glob",
    "format_permission",
    "hdfs_path",
    "parse_groups",
    "parse_hdfs_path",
    "parse_permission",
    "parse_target",
)
