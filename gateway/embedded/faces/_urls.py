"""Absolute URLs as the client sees them, for ``Location`` headers and JSON paths."""

from __future__ import annotations

import re
from urllib.parse import quote

from aiohttp import web

__all__ = ("base_url", "path_url")

_HOST_RE = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=:\[\]-]+")
_LOCATION_SAFE = "/!$&'()*+,;=:@-._~"


def base_url(request: web.Request) -> str:
    """``scheme://host`` as the client sees it (the gateway's forwarded headers first)."""
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    if proto not in ("http", "https"):
        proto = request.scheme
    if not host or not _HOST_RE.fullmatch(host):
        host = request.host
    return f"{proto}://{host}"


def path_url(request: web.Request, path: str) -> str:
    """The absolute URL of a raw-path-to-be (``path`` is decoded; it is quoted here)."""
    return base_url(request) + quote(path, safe=_LOCATION_SAFE)
