"""The gateway's loggers, one per concern, so operators can route them apart."""

import logging

__all__ = ("access_logger", "audit_logger", "auth_logger", "proxy_logger", "server_logger")

access_logger = logging.getLogger("gateway.access")
audit_logger = logging.getLogger("gateway.audit")
auth_logger = logging.getLogger("gateway.auth")
proxy_logger = logging.getLogger("gateway.proxy")
server_logger = logging.getLogger("gateway.server")
