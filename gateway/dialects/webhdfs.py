"""WebHDFS v1 (a NameNode or HttpFS) behind the gateway."""

from __future__ import annotations

from gateway.wire import WireFormat

from ._base import Dialect

__all__ = ("WebHdfsDialect",)


class WebHdfsDialect(Dialect):
    """The backend learns the user from ``user.name``, as Hoop's does; errors
    are ``RemoteException`` documents, which HdfsCLI and fsspec read."""

    name = "webhdfs"

    @property
    def wire_format(self) -> WireFormat:
        return WireFormat.WEBHDFS

    def identity_query(self, user: str) -> tuple[tuple[str, str], ...]:
        return (("user.name", user),)
