"""What failures look like on the wire, once per REST format.

A :class:`Fault` names a kind of failure; a :class:`WireFormat` names a
REST API's error document.  :func:`error_response` renders one in the
other, from one table module per format (:mod:`.hoop`, :mod:`.webhdfs`,
:mod:`.alluxio`).  The gateway's dialects and the embedded backend's faces
both answer through here, so a client sees one format per API whoever
answered.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from types import MappingProxyType

from aiohttp import web
from multidict import CIMultiDict

from . import alluxio, hoop, webhdfs
from ._fault import Fault

__all__ = ("Fault", "WireFormat", "error_response", "fault_for_status", "json_response")


class WireFormat(enum.Enum):
    HOOP = "hoop"
    WEBHDFS = "webhdfs"
    ALLUXIO = "alluxio"


_Table = tuple[Callable[[Fault], int], Callable[[Fault, str], dict[str, object]]]
_TABLES: MappingProxyType[WireFormat, _Table] = MappingProxyType({
    WireFormat.HOOP: (hoop.status, hoop.body),
    WireFormat.WEBHDFS: (webhdfs.status, webhdfs.body),
    WireFormat.ALLUXIO: (alluxio.status, alluxio.body),
})


def json_response(
    data: object, *, status: int = 200, headers: CIMultiDict[str] | dict[str, str] | None = None
) -> web.Response:
    """``data`` as JSON, typed exactly ``application/json`` as Jersey (HttpFS, Alluxio) sends it.

    No ``charset`` parameter: JSON is UTF-8 by definition, and the Alluxio Go
    client compares the whole Content-Type with ``application/json``.
    """
    body = b"" if data is None else json.dumps(data).encode()
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def error_response(
    fmt: WireFormat, fault: Fault, message: str, *, headers: CIMultiDict[str] | None = None
) -> web.Response:
    """``fault`` with ``message`` as a JSON response in ``fmt``, with ``headers`` added."""
    status, body = _TABLES[fmt]
    return json_response(body(fault, message), status=status(fault), headers=headers)


_BY_STATUS: MappingProxyType[int, Fault] = MappingProxyType({
    400: Fault.BAD_REQUEST,
    401: Fault.UNAUTHENTICATED,
    403: Fault.ACCESS_DENIED,
    408: Fault.REQUEST_TIMEOUT,
    413: Fault.PAYLOAD_TOO_LARGE,
    417: Fault.EXPECTATION_FAILED,
    502: Fault.BACKEND_UNAVAILABLE,
    503: Fault.UNAVAILABLE,
    504: Fault.BACKEND_TIMEOUT,
})


def fault_for_status(status: int) -> Fault:
    """The fault behind a status the gateway answers itself (400, 401, 403, 408, 413, 417, 502, 503, 504).

    Raises ``ValueError`` for any other status: the gateway has no other answers of its own.
    """
    try:
        return _BY_STATUS[status]
    except KeyError:
        raise ValueError(f"the gateway answers no {status} of its own") from None
