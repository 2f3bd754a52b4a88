"""WebHDFS's failure document: ``{"RemoteException": {"exception", "javaClassName", "message"}}``.

The statuses are those of Hadoop's WebHDFS ``ExceptionHandler`` on the
NameNode: ``SecurityException`` 401, ``FileNotFoundException`` 404,
``IllegalArgumentException`` and ``UnsupportedOperationException`` 400,
``AccessControlException`` and every other ``IOException`` 403 (so
``FileAlreadyExistsException`` too).  Failures only a gateway has (413, 417,
502, 503, 504) keep their HTTP status and name the nearest Java exception.
"""

from __future__ import annotations

from types import MappingProxyType

from ._fault import Fault

__all__ = ("TABLE", "body", "status")

TABLE: MappingProxyType[Fault, tuple[int, str]] = MappingProxyType({
    Fault.BAD_REQUEST: (400, "java.lang.IllegalArgumentException"),
    Fault.UNAUTHENTICATED: (401, "java.lang.SecurityException"),
    Fault.ACCESS_DENIED: (403, "org.apache.hadoop.security.AccessControlException"),
    Fault.NOT_FOUND: (404, "java.io.FileNotFoundException"),
    Fault.METHOD_NOT_ALLOWED: (400, "java.lang.UnsupportedOperationException"),
    Fault.ALREADY_EXISTS: (403, "org.apache.hadoop.fs.FileAlreadyExistsException"),
    Fault.PARENT_NOT_DIRECTORY: (403, "org.apache.hadoop.fs.ParentNotDirectoryException"),
    Fault.NOT_EMPTY: (403, "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException"),
    Fault.EXPECTATION_FAILED: (417, "java.lang.IllegalArgumentException"),
    Fault.PAYLOAD_TOO_LARGE: (413, "java.io.IOException"),
    Fault.IO_FAILURE: (403, "java.io.IOException"),
    Fault.OVER_LIMIT: (403, "java.io.IOException"),
    Fault.BACKEND_UNAVAILABLE: (502, "java.io.IOException"),
    Fault.UNAVAILABLE: (503, "org.apache.hadoop.ipc.RetriableException"),
    Fault.BACKEND_TIMEOUT: (504, "java.net.SocketTimeoutException"),
    Fault.QUOTA_EXCEEDED: (429, "org.apache.hadoop.hdfs.protocol.QuotaExceededException"),
    Fault.REQUEST_TIMEOUT: (408, "java.net.SocketTimeoutException"),
})
"""Each fault's HTTP status and fully qualified Java class."""


def status(fault: Fault) -> int:
    return TABLE[fault][0]


def body(fault: Fault, message: str) -> dict[str, object]:
    java_class = TABLE[fault][1]
    return {
        "RemoteException": {
            "exception": java_class.rpartition(".")[2],
            "javaClassName": java_class,
            "message": message,
        }
    }
