"""The Alluxio proxy's failure document: ``{"statusCode": "<Status name>", "message": ...}``.

Alluxio's REST proxy answers every failed call with HTTP 500 and an
``ErrorResponse`` naming the gRPC-style ``Status`` (``NOT_FOUND``,
``ALREADY_EXISTS``, ...); its clients read ``statusCode`` and ``message``
from any answer that is not 200.  File system failures therefore get 500
as there.  A request the gateway cannot parse (a malformed option body, a
bad parameter, a path that leads elsewhere) is the client's fault: 400, as
Jersey answers a body it cannot map before Alluxio's handler runs, so no
client input is ever counted as a server error.  Other failures that mean
something to HTTP itself keep their status:
a 401 must stay 401 for a client to answer the challenge, and 413, 417,
429, 502, 503 and 504 tell proxies and load balancers what happened.
"""

from __future__ import annotations

from types import MappingProxyType

from ._fault import Fault

__all__ = ("TABLE", "body", "status")

TABLE: MappingProxyType[Fault, tuple[int, str]] = MappingProxyType({
    Fault.BAD_REQUEST: (400, "INVALID_ARGUMENT"),
    Fault.UNAUTHENTICATED: (401, "UNAUTHENTICATED"),
    Fault.ACCESS_DENIED: (500, "PERMISSION_DENIED"),
    Fault.NOT_FOUND: (500, "NOT_FOUND"),
    Fault.METHOD_NOT_ALLOWED: (500, "UNIMPLEMENTED"),
    Fault.ALREADY_EXISTS: (500, "ALREADY_EXISTS"),
    Fault.PARENT_NOT_DIRECTORY: (500, "INVALID_ARGUMENT"),
    Fault.NOT_EMPTY: (500, "FAILED_PRECONDITION"),
    Fault.EXPECTATION_FAILED: (417, "INVALID_ARGUMENT"),
    Fault.PAYLOAD_TOO_LARGE: (413, "RESOURCE_EXHAUSTED"),
    Fault.IO_FAILURE: (500, "INTERNAL"),
    Fault.OVER_LIMIT: (400, "INVALID_ARGUMENT"),
    Fault.BACKEND_UNAVAILABLE: (502, "UNAVAILABLE"),
    Fault.UNAVAILABLE: (503, "UNAVAILABLE"),
    Fault.BACKEND_TIMEOUT: (504, "DEADLINE_EXCEEDED"),
    Fault.QUOTA_EXCEEDED: (429, "RESOURCE_EXHAUSTED"),
    Fault.REQUEST_TIMEOUT: (408, "DEADLINE_EXCEEDED"),
})
"""Each fault's HTTP status and Alluxio ``Status`` name."""


def status(fault: Fault) -> int:
    return TABLE[fault][0]


def body(fault: Fault, message: str) -> dict[str, object]:
    return {"statusCode": TABLE[fault][1], "message": message}
