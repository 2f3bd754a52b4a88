"""The REST faces of the embedded store: one module per API.

A face parses its requests into calls on the :class:`~gateway.embedded.store.Store`
and renders the results, and any :class:`~gateway.embedded.store.FsError`, in
its own wire format.  The app picks a face by path prefix
(:func:`face_for`), longest first, before it verifies the identity, so even
a 401 comes in the face's format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ...wire import WireFormat, error_response
from ..store import FsError, Principal, Store

__all__ = ("STREAMING_KEY", "Face", "face_for")

# Set once a streamed answer has started: a failure then can only cut the
# connection, never become an error document.
STREAMING_KEY = web.RequestKey("embedded_streaming", bool)


@dataclass(frozen=True, slots=True)
class Face:
    """One REST API over the store.

    ``prefix`` is the raw path prefix it serves (``""``: everything no
    other face claims).  ``handle`` answers a request with a verified
    principal; its failures, and those raised before it (identity,
    internal faults), are rendered in ``wire``'s error format.
    """

    name: str
    prefix: str
    handle: Callable[[web.Request, Store, Principal], Awaitable[web.StreamResponse]]
    wire: WireFormat

    def error_response(self, error: FsError) -> web.Response:
        return error_response(self.wire, error.fault, error.message)

    def serves(self, raw_path: str) -> bool:
        if not self.prefix:
            return True
        return raw_path == self.prefix.rstrip("/") or raw_path.startswith(self.prefix)


def face_for(faces: tuple[Face, ...], raw_path: str) -> Face:
    """The face with the longest prefix that serves ``raw_path``."""
    path = raw_path.partition("?")[0]
    best = max((f for f in faces if f.serves(path)), key=lambda f: len(f.prefix), default=None)
    if best is None:
        raise LookupError(f"no face serves {path!r}")
    return best
