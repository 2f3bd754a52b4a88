"""The Hoop failure document, shared by the Hoop dialect and the embedded backend.

``{"statusCode": N, "reason": "...", "message": "...", "exception": "..."}``,
as the Hoop REST API documents it; the Alluxio client reads ``statusCode``
from it too.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from aiohttp import web
from multidict import CIMultiDict

__all__ = ("failure_body", "failure_response")


def failure_body(status: int, message: str, exception: str) -> dict[str, object]:
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
