"""Sending a listing as one JSON array, a page at a time.

A listing that fits in its first page (most do) is one ``application/json``
answer with a length, as before.  A longer one is streamed: the document's
head, the entries of each page as the store yields them (``await`` on the
write, so a client that does not read holds the listing where it is, with
one page and the transport's buffer in memory), then its tail.  The bytes are
exactly ``json.dumps`` of the whole document.  A failure once streaming has
started cuts the connection (:data:`~gateway.embedded.faces.STREAMING_KEY`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Callable

from aiohttp import web

from ..store import Inode, Page
from . import STREAMING_KEY

__all__ = ("send_listing",)

_TYPE = "application/json"  # exactly, as the faces' json_response sends it


def _items(page: Page, render: Callable[[Inode], object]) -> bytes:
    """The page's entries as the inside of a JSON array: ``json.dumps`` of the list without its brackets."""
    return json.dumps([render(inode) for inode in page.entries])[1:-1].encode()


async def send_listing(
    request: web.Request,
    pages: AsyncGenerator[Page, None],
    render: Callable[[Inode], object],
    head: bytes = b"[",
    tail: bytes = b"]",
) -> web.StreamResponse:
    """Answer with ``head``, every rendered entry of ``pages`` separated by ``", "``, then ``tail``.

    The first page is read before anything is sent, so a refusal (not found,
    denied) is still an error document.
    """
    async with contextlib.aclosing(pages):
        first = await anext(pages)
        if first.remaining == 0 or request.method == "HEAD":
            body = b"" if request.method == "HEAD" else head + _items(first, render) + tail
            return web.Response(body=body, headers={"Content-Type": _TYPE})
        response = web.StreamResponse(headers={"Content-Type": _TYPE})
        await response.prepare(request)
        request[STREAMING_KEY] = True
        chunk = _items(first, render)
        await response.write(head + chunk)
        written = bool(chunk)
        async for page in pages:
            chunk = _items(page, render)
            if chunk:
                await response.write(b", " + chunk if written else chunk)
                written = True
        await response.write(tail)
        await response.write_eof()
        return response
