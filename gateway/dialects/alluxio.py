"""The Alluxio proxy REST API v1 behind the gateway."""

from __future__ import annotations

from gateway.wire import WireFormat

from ._base import Dialect

__all__ = ("AlluxioDialect",)


class AlluxioDialect(Dialect):
    """The backend learns the user from the identity header alone (the
    Alluxio proxy has no user parameter); errors are Alluxio's
    ``{"statusCode", "message"}``, which its clients raise as their own."""

    name = "alluxio"

    @property
    def wire_format(self) -> WireFormat:
        return WireFormat.ALLUXIO

    def identity_query(self, user: str) -> tuple[tuple[str, str], ...]:
        return ()
