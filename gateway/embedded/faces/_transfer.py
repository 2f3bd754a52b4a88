"""Moving file contents between a store transfer and an HTTP exchange."""

from __future__ import annotations

from aiohttp import web

from ..store import SMALL_READ, Reader
from . import STREAMING_KEY

__all__ = ("send_file",)

_STREAM_CHUNK = 1 << 20


async def send_file(request: web.Request, reader: Reader, headers: dict[str, str]) -> web.StreamResponse:
    """Answer with what ``reader`` still has: one write when small, else streamed with a length."""
    remaining = reader.remaining
    if request.method == "HEAD":
        response = web.StreamResponse(headers=headers)
        response.content_length = remaining
        await response.prepare(request)
        await response.write_eof()
        return response
    if remaining <= SMALL_READ:
        # One read, here rather than on the pool, and one write: headers and
        # body leave together.
        return web.Response(headers=headers, body=reader.read_small(remaining))
    # A known length lets clients (and the gateway) tell a complete
    # download from one cut short.
    response = web.StreamResponse(headers=headers)
    response.content_length = remaining
    await response.prepare(request)
    request[STREAMING_KEY] = True
    while remaining > 0:
        data = await reader.read(min(_STREAM_CHUNK, remaining))
        if not data:  # the file shrank under us: never pad, cut the response
            if request.transport is not None:
                request.transport.abort()
            return response
        remaining -= len(data)
        await response.write(data)
    await response.write_eof()
    return response
