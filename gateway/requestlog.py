"""What the gateway records of every request once it is answered: access line, audit line, metrics.

aiohttp calls the access logger of :func:`request_log_class` after each
response has been sent (or the client went away), when everything is known:
the route, who authenticated and for whom the request acted (also for a
session cookie), the status, the bytes each way and the time taken.

* ``gateway.access``: one JSON object per line (keys below).
* ``gateway.audit``: one Hadoop-style line per request, ``key=value`` pairs
  separated by tabs: ``time allowed user effective ip method route path op
  status bytes_in bytes_out request_id``.  ``allowed`` says whether the
  gateway let the request through to the backend (the backend's own refusal
  shows in ``status``); ``-`` stands for what is not known (no user
  authenticated, no route).

Both carry the raw path (as sent: no decoded newline can forge a line) and
the query with every credential-bearing parameter masked
(:func:`gateway.log.redact_query`); never a cookie, a token or a header.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from authplugins.query import param_values
from gateway.app import ROUTE
from gateway.authfilter import BY_COOKIE, HANDSHAKE, IDENTITY, REFUSAL, SESSION
from gateway.forwarded import client_view
from gateway.log import audit_logger, redact_query, request_id

if TYPE_CHECKING:  # prometheus-client is imported only where the admin listener is on
    from gateway.metrics import GatewayMetrics

__all__ = ("operation", "request_log_class")

_NO_ROUTE = "-"
_OPERATION = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def operation(raw_path: str, raw_query: str) -> str:
    """The operation a request asks for: WebHDFS's and HttpFS's ``op``, else Alluxio's last path segment.

    Only ``[A-Za-z0-9_.-]`` (up to 64) is kept, so the value cannot forge an
    audit field; ``-`` when there is none.
    """
    ops = param_values(raw_query, "op") if raw_query else ()
    op = ops[0].upper() if ops else ""
    if not op and "/paths/" in raw_path:
        op = raw_path.rstrip("/").rpartition("/")[2]
    return op if _OPERATION.fullmatch(op) else "-"


def _utc(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def request_log_class(
    *, access: bool, audit: bool, metrics: GatewayMetrics | None
) -> type[AbstractAccessLogger]:
    """The access logger class for the gateway's runner.

    ``access``: write the JSON line to the logger aiohttp hands it
    (``gateway.access``); ``audit``: write the audit line to
    ``gateway.audit``; ``metrics``: count the request there.
    """

    class RequestLog(AbstractAccessLogger):
        __slots__ = ()

        @property
        def enabled(self) -> bool:
            return metrics is not None or (access and self.logger.isEnabledFor(logging.INFO)) or (
                audit and audit_logger.isEnabledFor(logging.INFO)
            )

        def log(self, request: BaseRequest, response: web.StreamResponse, time_taken: float) -> None:
            route = request.get(ROUTE)
            prefix = route.prefix if route is not None else _NO_ROUTE
            session = request.get(SESSION)
            identity = request.get(IDENTITY)
            status = response.status
            received = request.content.total_bytes
            sent = response.body_length
            if metrics is not None:
                metrics.request(
                    prefix, request.method, status, session.scheme if session is not None else "none", received, sent
                )
                refusal = request.get(REFUSAL)
                if refusal is not None:
                    metrics.auth_failure(refusal[0].value, refusal[1])
                handshake = request.get(HANDSHAKE)
                if handshake is not None:
                    metrics.handshake(*handshake)
            write_access = access and self.logger.isEnabledFor(logging.INFO)
            write_audit = audit and audit_logger.isEnabledFor(logging.INFO)
            if not (write_access or write_audit):
                return
            now = _utc(time.time())
            raw_path, _, raw_query = request.raw_path.partition("?")
            query = redact_query(raw_query)
            user = session.user if session is not None else None
            effective = identity.user if identity is not None else None
            rid = request_id(request)
            address = client_view(cast(web.Request, request)).address  # the gateway's requests are web.Requests
            op = operation(raw_path, raw_query)
            if write_access:
                line: dict[str, Any] = {
                    "time": now,
                    "request_id": rid,
                    "client": address,
                    "user": user,
                    "effective_user": effective,
                    "auth": session.scheme if session is not None else None,
                    "cookie": request.get(BY_COOKIE, False),
                    "method": request.method,
                    "route": route.prefix if route is not None else None,
                    "path": raw_path,
                    "query": query,
                    "op": op,
                    "status": status,
                    "bytes_in": received,
                    "bytes_out": sent,
                    "duration_ms": round(time_taken * 1000, 3),
                    "user_agent": request.headers.get("User-Agent"),
                }
                refusal = request.get(REFUSAL)
                if refusal is not None:
                    line["refused"] = refusal[0].value
                self.logger.info("%s", json.dumps(line, separators=(",", ":"), ensure_ascii=False))
            if write_audit:
                audit_logger.info(
                    "time=%s\tallowed=%s\tuser=%s\teffective=%s\tip=%s\tmethod=%s\troute=%s\tpath=%s\top=%s"
                    "\tstatus=%d\tbytes_in=%d\tbytes_out=%d\trequest_id=%s",
                    now, "true" if identity is not None else "false", user or "-", effective or "-", address,
                    request.method, prefix, raw_path, op, status, received, sent, rid,
                )

    return RequestLog
