"""Backend dialects: how each kind of backend is told who the user is, how
its redirects are rewritten and what its error bodies look like.

A dialect turns an authenticated request into a :class:`~gateway.proxy.Forward`
and shapes every error the gateway itself answers on its route, so a client
library parses gateway errors exactly as it parses the backend's own.  One
module per dialect, each behind :class:`Dialect`; :data:`DIALECTS` is the one
list of them (the configuration checks names against it).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ._base import SCRUBBED_PARAMS, Dialect
from ._datanode import DataNodeRedirects
from .alluxio import AlluxioDialect
from .generic import GenericDialect
from .hoop import HoopDialect
from .webhdfs import WebHdfsDialect

__all__ = (
    "DIALECTS",
    "SCRUBBED_PARAMS",
    "AlluxioDialect",
    "DataNodeRedirects",
    "Dialect",
    "GenericDialect",
    "HoopDialect",
    "WebHdfsDialect",
)

DIALECTS: Mapping[str, type[Dialect]] = MappingProxyType(
    {cls.name: cls for cls in (HoopDialect, WebHdfsDialect, AlluxioDialect, GenericDialect)}
)
