"""The Hoop REST API face: ``/<path>?op=...`` with Hoop's JSON and failure document.

Parses the operation and its parameters (:mod:`._params`), calls the store
and renders Hoop's results: file status objects with an absolute ``path``,
``{"<op>": bool}``, ``homeDir``, ``201``/``200`` with a ``Location`` for
writes, and failures as ``{"statusCode", "reason", "message", "exception"}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ...wire import WireFormat, json_response
from ..store import (
    DEFAULT_REPLICATION,
    BadRequestError,
    FsError,
    GlobError,
    Inode,
    MethodNotAllowedError,
    Parts,
    Principal,
    Store,
    check_not_reserved,
    compile_glob,
    format_permission,
    hdfs_path,
    parse_hdfs_path,
    parse_target,
)
from . import Face
from ._listing import send_listing
from ._params import Op, Params
from ._transfer import send_file
from ._urls import base_url, path_url

__all__ = ("FACE", "handle")

_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")

class _Call:
    """One request's decoded inputs."""

    __slots__ = ("params", "parts", "principal", "request", "store")

    def __init__(self, request: web.Request, store: Store, principal: Principal, parts: Parts, params: Params) -> None:
        self.request = request
        self.store = store
        self.principal = principal
        self.parts = parts
        self.params = params

    def location(self, parts: Parts | None = None) -> str:
        return path_url(self.request, hdfs_path(self.parts if parts is None else parts))


def _json(data: object) -> web.Response:
    return json_response(data)


def _empty(status: int = 200, location: str | None = None) -> web.Response:
    headers = {"Location": location} if location else None
    return json_response(None, status=status, headers=headers)


def _status_json(base: str, inode: Inode) -> dict[str, object]:
    meta = inode.meta
    return {
        "path": base + inode.path,
        "isDir": inode.is_dir,
        "len": inode.length,
        "owner": meta.owner,
        "group": meta.group,
        "permission": format_permission(meta.perm, inode.is_dir),
        "accessTime": inode.access_ms,
        "modificationTime": inode.modification_ms,
        "blockSize": meta.blocksize,
        "replication": meta.replication,
    }


# -- operations ------------------------------------------------------------------


async def _open(call: _Call) -> web.StreamResponse:
    offset = call.params.integer("offset", -1, minimum=-1)
    length = call.params.integer("len", -1, minimum=-1)
    reader = await call.store.open(call.principal, call.parts, offset, length)
    try:
        headers = {"Location": call.location(), "Content-Type": "application/octet-stream"}
        return await send_file(call.request, reader, headers)
    finally:
        await reader.close()


async def _create(call: _Call) -> web.StreamResponse:
    params = call.params
    overwrite = params.boolean("overwrite", True)
    replication = params.replication(DEFAULT_REPLICATION)
    block_size = params.integer("blocksize", -1, minimum=-1)
    if block_size == 0:
        raise BadRequestError("Invalid value for parameter [blocksize]: 0 is not -1 or positive")
    perm = params.permission()
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
    return _empty(201, call.location())


async def _append(call: _Call) -> web.StreamResponse:
    await call.store.append(call.principal, call.parts, call.request.content, call.request.content_length)
    return _empty(200, call.location())


async def _rename(call: _Call) -> web.StreamResponse:
    to = call.params.get("to")
    if not to:
        raise BadRequestError("Missing parameter [to]")
    dst = parse_hdfs_path(to)
    check_not_reserved(dst)
    return _json({"rename": await call.store.rename(call.principal, call.parts, dst)})


async def _delete(call: _Call) -> web.StreamResponse:
    recursive = call.params.boolean("recursive", True)
    return _json({"delete": await call.store.delete(call.principal, call.parts, recursive)})


async def _list(call: _Call) -> web.StreamResponse:
    text = call.params.get("filter")
    try:
        glob = compile_glob(text) if text else None
    except GlobError as exc:
        raise BadRequestError(f"Invalid value for parameter [filter]: {exc}") from None
    base = base_url(call.request)
    pages = call.store.list_pages(call.principal, call.parts, glob)
    return await send_listing(call.request, pages, lambda inode: _status_json(base, inode))


async def _mkdirs(call: _Call) -> web.StreamResponse:
    await call.store.mkdirs(call.principal, call.parts, call.params.permission())
    return _json({"mkdirs": True})


async def _status(call: _Call) -> web.StreamResponse:
    inode = await call.store.status(call.principal, call.parts)
    return _json(_status_json(base_url(call.request), inode))


async def _homedir(call: _Call) -> web.StreamResponse:
    return _json({"homeDir": base_url(call.request) + hdfs_path(call.store.home(call.principal))})


async def _setowner(call: _Call) -> web.StreamResponse:
    owner, group = call.params.name("owner"), call.params.name("group")
    await call.store.set_owner(call.principal, call.parts, owner, group)
    return _empty()


async def _setpermission(call: _Call) -> web.StreamResponse:
    await call.store.set_permission(call.principal, call.parts, call.params.permission())
    return _empty()


async def _settimes(call: _Call) -> web.StreamResponse:
    mtime = call.params.integer("mtime", -1, minimum=-1)
    atime = call.params.integer("atime", -1, minimum=-1)
    await call.store.set_times(call.principal, call.parts, mtime, atime)
    return _empty()


async def _setreplication(call: _Call) -> web.StreamResponse:
    replication = call.params.replication(DEFAULT_REPLICATION)
    return _json({"setReplication": await call.store.set_replication(call.principal, call.parts, replication)})


_OPERATIONS: dict[Op, Callable[[_Call], Awaitable[web.StreamResponse]]] = {
    Op.OPEN: _open,
    Op.LIST: _list,
    Op.STATUS: _status,
    Op.HOMEDIR: _homedir,
    Op.CREATE: _create,
    Op.MKDIRS: _mkdirs,
    Op.APPEND: _append,
    Op.RENAME: _rename,
    Op.SETOWNER: _setowner,
    Op.SETPERMISSION: _setpermission,
    Op.SETTIMES: _settimes,
    Op.SETREPLICATION: _setreplication,
    Op.DELETE: _delete,
}


async def handle(request: web.Request, store: Store, principal: Principal) -> web.StreamResponse:
    if request.method not in _HTTP_METHODS:
        raise MethodNotAllowedError(f"HTTP method {request.method} is not supported")
    raw_path, _, raw_query = request.raw_path.partition("?")
    params = Params(raw_query)
    # HEAD is GET without the body, as servlet containers answer it.
    op = params.op("GET" if request.method == "HEAD" else request.method)
    parts = parse_target(raw_path)
    if op is not Op.HOMEDIR:
        check_not_reserved(parts)
    return await _OPERATIONS[op](_Call(request, store, principal, parts, params))


FACE = Face("hoop", "", handle, WireFormat.HOOP)
