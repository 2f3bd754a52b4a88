"""Hoop's failure document: ``{"statusCode", "reason", "message", "exception"}``.

As the Hoop REST API documents it, with the HTTP status repeated in the
body.  The statuses are Hoop's where Hoop has one; where HttpFS answers
500 for "you asked not to overwrite" we answer 409 Conflict, the honest
status.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from types import MappingProxyType

from aiohttp import web
from multidict import CIMultiDict

from ._fault import Fault

__all__ = ("TABLE", "body", "failure_body", "failure_response", "status")

TABLE: MappingProxyType[Fault, tuple[int, str]] = MappingProxyType({
    Fault.BAD_REQUEST: (400, "IllegalArgumentException"),
    Fault.UNAUTHENTICATED: (401, "AuthenticationException"),
    Fault.ACCESS_DENIED: (403, "AccessControlException"),
    Fault.NOT_FOUND: (404, "FileNotFoundException"),
    Fault.METHOD_NOT_ALLOWED: (405, "UnsupportedOperationException"),
    Fault.ALREADY_EXISTS: (409, "FileAlreadyExistsException"),
    Fault.PARENT_NOT_DIRECTORY: (409, "ParentNotDirectoryException"),
    Fault.NOT_EMPTY: (409, "PathIsNotEmptyDirectoryException"),
    Fault.EXPECTATION_FAILED: (417, "GatewayException"),
    Fault.PAYLOAD_TOO_LARGE: (413, "GatewayException"),
    Fault.IO_FAILURE: (500, "IOException"),
    Fault.OVER_LIMIT: (400, "IOException"),  # HttpFS: 500, but the client is at fault
    Fault.BACKEND_UNAVAILABLE: (502, "BackendUnavailableException"),
    Fault.UNAVAILABLE: (503, "ServiceUnavailableException"),
    Fault.BACKEND_TIMEOUT: (504, "BackendTimeoutException"),
    Fault.QUOTA_EXCEEDED: (429, "QuotaExceededException"),
    Fault.REQUEST_TIMEOUT: (408, "GatewayException"),
})
"""Each fault's HTTP status and Java exception name."""


def status(fault: Fault) -> int:
    return TABLE[fault][0]


def body(fault: Fault, message: str) -> dict[str, object]:
    code, exception = TABLE[fault]
    return failure_body(code, message, exception)


def failure_body(status: int, message: str, exception: str) -> dict[str, object]:
    """The document for any status and exception name (for canned answers written by hand)."""
    return {"statusCode": status, "reason": HTTPStatus(status).phrase, "message": message, "exception": exception}


def failure_response(
    status: int, message: str, exception: str, headers: CIMultiDict[str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(failure_body(status, message, exception)),
        content_type="application/json",
        headers=headers,
    )
