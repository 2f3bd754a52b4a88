"""Hoop / HttpFS behind the gateway."""

from __future__ import annotations

from gateway.wire import WireFormat

from ._base import Dialect

__all__ = ("HoopDialect",)


class HoopDialect(Dialect):
    """The backend learns the user from ``user.name`` (the authenticated
    user's, the client's removed) and from the identity header; ``doas`` and
    ``delegation`` are removed until proxy-user rules exist."""

    name = "hoop"

    @property
    def wire_format(self) -> WireFormat:
        return WireFormat.HOOP

    def identity_query(self, user: str) -> tuple[tuple[str, str], ...]:
        return (("user.name", user),)
