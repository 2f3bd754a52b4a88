"""The WebHDFS v1 face: ``/webhdfs/v1/<path>?op=...`` as HttpFS serves it.

Operation names are case-insensitive, as in Hadoop.  Results are WebHDFS's
JSON: ``{"FileStatus": {...}}``, ``{"FileStatuses": {"FileStatus": [...]}}``,
``{"DirectoryListing": ...}``, ``{"ContentSummary": ...}``, ``{"FileChecksum": ...}``
(HDFS's MD5-of-MD5-of-CRC32 of the bytes, as for a file written with CRC32 chunk checksums), ``{"boolean": ...}``,
``{"Path": ...}``; failures are ``RemoteException``
documents (:data:`gateway.wire.WireFormat.WEBHDFS`).

CREATE and APPEND take two steps, as HttpFS does them: the first request
(no ``data=true``) sends no data and is answered ``307`` with the data URL
in ``Location`` (``noredirect=true``: ``200 {"Location": ...}``); the
request to that URL, with ``data=true``, carries the body.  A first request
with ``data=true`` is the one step.  The data URL is this face's own, with
the operation's parameters but without ``user.name``, ``doas`` and
``delegation``: whoever follows it authenticates again.  OPEN answers the
data directly (``noredirect=true``: the data URL in ``{"Location": ...}``).

Defaults are Hadoop's: ``overwrite=false``, ``recursive=false``, ``offset``
0, ``length`` to the end.  DELETE of a missing path and RENAME of a missing
source answer ``{"boolean": false}``, as HDFS does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from ...wire import WireFormat, json_response
from ..store import (
    DEFAULT_REPLICATION,
    BadRequestError,
    Inode,
    MethodNotAllowedError,
    NotFoundError,
    Parts,
    Principal,
    Store,
    check_not_reserved,
    hdfs_path,
    parse_hdfs_path,
    parse_target,
)
from . import Face
from ._listing import send_listing
from ._params import Params
from ._transfer import send_file
from ._urls import base_url, path_url

__all__ = ("FACE", "PREFIX", "handle")

PREFIX = "/webhdfs/v1/"
_ROOT = PREFIX.rstrip("/")
_NOT_FORWARDED = frozenset({"user.name", "doas", "delegation", "data", "noredirect"})

_GET, _PUT, _POST, _DELETE = "GET", "PUT", "POST", "DELETE"


class _Call:
    """One request's decoded inputs."""

    __slots__ = ("params", "parts", "principal", "raw_query", "request", "store")

    def __init__(
        self, request: web.Request, store: Store, principal: Principal, parts: Parts, raw_query: str
    ) -> None:
        self.request = request
        self.store = store
        self.principal = principal
        self.parts = parts
        self.raw_query = raw_query
        self.params = Params(raw_query)

    def path_url(self) -> str:
        return path_url(self.request, _ROOT + hdfs_path(self.parts))

    def data_url(self) -> str:
        """This request's URL for its data step: its parameters, ``data=true``, no identity."""
        pairs = [
            (name, value)
            for name, value in parse_qsl(self.raw_query, keep_blank_values=True)
            if name.lower() not in _NOT_FORWARDED
        ]
        pairs.append(("data", "true"))
        return self.path_url() + "?" + urlencode(pairs)

    def flag(self, name: str) -> bool:
        return self.params.boolean(name, False)


def _json(data: object, status: int = 200) -> web.Response:
    return json_response(data, status=status)


def _empty(status: int = 200, location: str | None = None) -> web.Response:
    headers = {"Location": location} if location else None
    return json_response(None, status=status, headers=headers)


def _redirect(call: _Call) -> web.Response:
    """The first step of a data operation: where to send the data."""
    url = call.data_url()
    if call.flag("noredirect"):
        return _json({"Location": url})
    return _empty(307, url)


def _file_status(inode: Inode, suffix: str) -> dict[str, object]:
    meta = inode.meta
    return {
        "accessTime": inode.access_ms,
        "blockSize": meta.blocksize,
        "group": meta.group,
        "length": 0 if inode.is_dir else inode.length,
        "modificationTime": inode.modification_ms,
        "owner": meta.owner,
        "pathSuffix": suffix,
        "permission": format(meta.perm & 0o1777, "o"),
        "replication": meta.replication,
        "storagePolicy": 0,
        "type": "DIRECTORY" if inode.is_dir else "FILE",
    }


# -- operations ------------------------------------------------------------------


async def _open(call: _Call) -> web.StreamResponse:
    offset = call.params.integer("offset", 0, minimum=0)
    length = call.params.integer("length", -1, minimum=-1)
    if call.flag("noredirect") and not call.flag("data"):
        await call.store.status(call.principal, call.parts)  # refuse now what the data step would
        return _json({"Location": call.data_url()})
    reader = await call.store.open(call.principal, call.parts, offset, length)
    try:
        return await send_file(call.request, reader, {"Content-Type": "application/octet-stream"})
    finally:
        await reader.close()


async def _getfilestatus(call: _Call) -> web.StreamResponse:
    inode = await call.store.status(call.principal, call.parts)
    return _json({"FileStatus": _file_status(inode, "")})


async def _liststatus(call: _Call) -> web.StreamResponse:
    """Every entry in name order, streamed a page at a time as the NameNode streams it; a file lists itself."""
    pages = call.store.list_pages(call.principal, call.parts)
    return await send_listing(
        call.request, pages, lambda e: _file_status(e, _suffix(call, e)), b'{"FileStatuses": {"FileStatus": [', b"]}}"
    )


async def _liststatus_batch(call: _Call) -> web.StreamResponse:
    """``ls_limit`` entries after ``startAfter`` in name order, and how many follow (HDFS's DirectoryListing)."""
    page = await call.store.list_batch(call.principal, call.parts, call.params.get("startAfter") or "")
    statuses = [_file_status(e, _suffix(call, e)) for e in page.entries]
    return _json({
        "DirectoryListing": {
            "partialListing": {"FileStatuses": {"FileStatus": statuses}},
            "remainingEntries": page.remaining,
        }
    })


def _suffix(call: _Call, inode: Inode) -> str:
    """An entry's ``pathSuffix``: its name, or empty for a file listing itself."""
    return "" if inode.parts == call.parts else inode.parts[-1]


async def _getcontentsummary(call: _Call) -> web.StreamResponse:
    summary = await call.store.content_summary(call.principal, call.parts)
    return _json({
        "ContentSummary": {
            "directoryCount": summary.directories,
            "fileCount": summary.files,
            "length": summary.length,
            "quota": -1,
            "spaceConsumed": summary.space_consumed,
            "spaceQuota": -1,
            "typeQuota": {},
        }
    })


async def _getfilechecksum(call: _Call) -> web.StreamResponse:
    checksum = await call.store.file_checksum(call.principal, call.parts)
    return _json({
        "FileChecksum": {"algorithm": checksum.algorithm, "bytes": checksum.data.hex(), "length": len(checksum.data)}
    })


async def _gethomedirectory(call: _Call) -> web.StreamResponse:
    return _json({"Path": hdfs_path(call.store.home(call.principal))})


async def _create(call: _Call) -> web.StreamResponse:
    params = call.params
    overwrite = params.boolean("overwrite", False)
    replication = params.replication(DEFAULT_REPLICATION)
    block_size = params.integer("blocksize", -1, minimum=-1)
    if block_size == 0:
        raise BadRequestError("Invalid value for parameter [blocksize]: 0 is not -1 or positive")
    perm = params.permission()
    if not call.flag("data"):
        return _redirect(call)
    await call.store.create(
        call.principal,
        call.parts,
        call.request.content,
        call.request.content_length,
        overwrite=overwrite,
        perm=perm,
        replication=replication,
        block_size=block_size,
    )
    return _empty(201, call.path_url())


async def _append(call: _Call) -> web.StreamResponse:
    if not call.flag("data"):
        return _redirect(call)
    await call.store.append(call.principal, call.parts, call.request.content, call.request.content_length)
    return _empty()


async def _truncate(call: _Call) -> web.StreamResponse:
    if call.params.get("newlength") in (None, ""):
        raise BadRequestError("Missing parameter [newlength]")
    new_length = call.params.integer("newlength", 0, minimum=0)
    await call.store.truncate(call.principal, call.parts, new_length)
    return _json({"boolean": True})  # done at once: no block recovery to wait for


async def _concat(call: _Call) -> web.StreamResponse:
    text = call.params.get("sources") or ""
    sources = [parse_hdfs_path(name) for name in text.split(",") if name]
    await call.store.concat(call.principal, call.parts, sources)
    return _empty()


async def _mkdirs(call: _Call) -> web.StreamResponse:
    await call.store.mkdirs(call.principal, call.parts, call.params.permission())
    return _json({"boolean": True})


async def _rename(call: _Call) -> web.StreamResponse:
    destination = call.params.get("destination")
    if not destination:
        raise BadRequestError("Missing parameter [destination]")
    dst = parse_hdfs_path(destination)
    check_not_reserved(dst)
    try:
        done = await call.store.rename(call.principal, call.parts, dst)
    except NotFoundError:
        done = False
    return _json({"boolean": done})


async def _delete(call: _Call) -> web.StreamResponse:
    recursive = call.params.boolean("recursive", False)
    try:
        done = await call.store.delete(call.principal, call.parts, recursive)
    except NotFoundError:
        done = False
    return _json({"boolean": done})


async def _setowner(call: _Call) -> web.StreamResponse:
    owner, group = call.params.name("owner"), call.params.name("group")
    await call.store.set_owner(call.principal, call.parts, owner, group)
    return _empty()


async def _setpermission(call: _Call) -> web.StreamResponse:
    await call.store.set_permission(call.principal, call.parts, call.params.permission())
    return _empty()


async def _settimes(call: _Call) -> web.StreamResponse:
    mtime = call.params.integer("modificationtime", -1, minimum=-1)
    atime = call.params.integer("accesstime", -1, minimum=-1)
    await call.store.set_times(call.principal, call.parts, mtime, atime)
    return _empty()


async def _setreplication(call: _Call) -> web.StreamResponse:
    replication = call.params.replication(DEFAULT_REPLICATION)
    return _json({"boolean": await call.store.set_replication(call.principal, call.parts, replication)})


_Operation = Callable[[_Call], Awaitable[web.StreamResponse]]

# op name (upper case) -> (HTTP method, handler)
_OPERATIONS: dict[str, tuple[str, _Operation]] = {
    "OPEN": (_GET, _open),
    "GETFILESTATUS": (_GET, _getfilestatus),
    "LISTSTATUS": (_GET, _liststatus),
    "LISTSTATUS_BATCH": (_GET, _liststatus_batch),
    "GETCONTENTSUMMARY": (_GET, _getcontentsummary),
    "GETFILECHECKSUM": (_GET, _getfilechecksum),
    "GETHOMEDIRECTORY": (_GET, _gethomedirectory),
    "CREATE": (_PUT, _create),
    "MKDIRS": (_PUT, _mkdirs),
    "RENAME": (_PUT, _rename),
    "SETOWNER": (_PUT, _setowner),
    "SETPERMISSION": (_PUT, _setpermission),
    "SETTIMES": (_PUT, _settimes),
    "SETREPLICATION": (_PUT, _setreplication),
    "APPEND": (_POST, _append),
    "TRUNCATE": (_POST, _truncate),
    "CONCAT": (_POST, _concat),
    "DELETE": (_DELETE, _delete),
}


async def handle(request: web.Request, store: Store, principal: Principal) -> web.StreamResponse:
    raw_path, _, raw_query = request.raw_path.partition("?")
    method = "GET" if request.method == "HEAD" else request.method
    if method not in (_GET, _PUT, _POST, _DELETE):
        raise MethodNotAllowedError(f"HTTP method {request.method} is not supported")
    call = _Call(request, store, principal, parse_target(raw_path[len(_ROOT) :]), raw_query)
    text = call.params.get("op")
    if not text:
        raise BadRequestError("Missing parameter [op]")
    entry = _OPERATIONS.get(text.upper())
    if entry is None:
        raise BadRequestError(f"Invalid value for webhdfs parameter \"op\": {text}")
    if entry[0] != method:
        raise BadRequestError(f"Invalid HTTP {method} operation [{text}]")
    if entry[1] is not _gethomedirectory:
        check_not_reserved(call.parts)
    return await entry[1](call)


FACE = Face("webhdfs", PREFIX, handle, WireFormat.WEBHDFS)
