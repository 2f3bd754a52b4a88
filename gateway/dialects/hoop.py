"""Hoop / HttpFS behind the gateway."""

from __future__ import annotations

from gateway.wire import WireFormat

from ._base import Dialect

__all__ = ("HoopDialect",)


class HoopDialect(Dialect):
    """The backend learns the user from ``user.name`` (the authenticated
    user's, the client's removed) and from the identity header; behind a
    backend the gateway authenticates to as itself, from ``doas``.  A client's
    own ``doas`` and ``delegation`` never reach it (the auth filter has
    applied the proxy-user rules to ``doas``)."""

    name = "hoop"

    @property
    def wire_format(self) -> WireFormat:
        return WireFormat.HOOP

    def identity_query(self, user: str) -> tuple[tuple[str, str], ...]:
        return ((self._user_param, user),)
