"""Any HTTP backend that trusts the identity header."""

from __future__ import annotations

from gateway.wire import WireFormat

from ._base import Dialect

__all__ = ("GenericDialect",)


class GenericDialect(Dialect):
    """The backend learns the user from the identity header alone; the
    gateway's own errors are Hoop's JSON, having no better format to use."""

    name = "generic"

    @property
    def wire_format(self) -> WireFormat:
        return WireFormat.HOOP

    def identity_query(self, user: str) -> tuple[tuple[str, str], ...]:
        return ()
