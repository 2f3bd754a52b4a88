"""The gateway's loggers, one per concern, so operators can route them apart."""

import logging

from aiohttp.http_exceptions import HttpProcessingError

__all__ = (
    "ClientErrorFilter",
    "access_logger",
    "audit_logger",
    "auth_logger",
    "proxy_logger",
    "server_logger",
)

access_logger = logging.getLogger("gateway.access")
audit_logger = logging.getLogger("gateway.audit")
auth_logger = logging.getLogger("gateway.auth")
proxy_logger = logging.getLogger("gateway.proxy")
server_logger = logging.getLogger("gateway.server")


class ClientErrorFilter(logging.Filter):
    """Turn aiohttp's tracebacks for malformed requests into one INFO line.

    aiohttp logs every unparsable request line or header at ERROR with a
    traceback; that is the client's mistake, not the server's, and anyone
    could fill the error log with it.  Install on the ``aiohttp.server``
    logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "malformed request refused with %s: %s", (exc.code, exc.message.splitlines()[0])
            record.exc_info = record.exc_text = None
        return True
