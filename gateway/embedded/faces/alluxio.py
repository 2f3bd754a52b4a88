"""The Alluxio proxy REST API v1 face: ``/api/v1/paths/<path>/<action>`` and ``/api/v1/streams/<id>/<action>``.

Every call is a POST; options come as a JSON object in the body (absent:
the defaults), ``rename`` takes ``?dst=``.  Results are what the Alluxio
clients read: ``FileInfo`` objects, ``true``/``false`` for ``exists``, a
stream id (an integer) for ``open-file`` and ``create-file``, the bytes
written for a stream ``write``, the file's bytes for ``read``.  Failures
are Alluxio's ``{"statusCode": "<Status>", "message"}``
(:data:`gateway.wire.WireFormat.ALLUXIO`).

Paths arrive as ``paths//a/b/<action>``: empty segments collapse.  As in
Alluxio, ``create-directory`` and ``create-file`` refuse an existing path
(``allowExists`` lets a directory be) and a missing parent unless
``recursive``; ``delete`` is not recursive unless asked.  ``free`` checks
the path and does nothing (nothing is cached).  ``mount`` and ``unmount``
are refused (``UNIMPLEMENTED``): the embedded store has one file system.
Streams are the store's (:meth:`~gateway.embedded.store.Store.open_read_stream`):
usable only by their opener, expiring when abandoned; a file written
through a stream appears when the stream is closed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ...wire import WireFormat, json_response
from ..store import (
    DEFAULT_REPLICATION,
    AlreadyExistsError,
    BadRequestError,
    Inode,
    MethodNotAllowedError,
    NotFoundError,
    Parts,
    Principal,
    Store,
    check_not_reserved,
    parse_hdfs_path,
    parse_target,
)
from . import Face
from ._listing import send_listing
from ._transfer import send_file

__all__ = ("FACE", "PREFIX", "handle")

PREFIX = "/api/v1/"
_PATHS = PREFIX + "paths/"
_STREAMS = PREFIX + "streams/"
_MAX_OPTIONS = 64 * 1024
_MAX_CONTAINERS = 64
_BITS = {
    "NONE": 0, "EXECUTE": 1, "WRITE": 2, "WRITE_EXECUTE": 3,
    "READ": 4, "READ_EXECUTE": 5, "READ_WRITE": 6, "ALL": 7,
}  # fmt: skip


def _json(data: object) -> web.Response:
    return json_response(data)


def _ok() -> web.Response:
    return json_response(None)


class Options:
    """An options body, its shape checked once, whole, before any action reads it.

    :meth:`parse` refuses (:class:`BadRequestError`, ``INVALID_ARGUMENT``)
    anything but a JSON object of at most :data:`_MAX_OPTIONS` bytes and
    :data:`_MAX_CONTAINERS` objects and arrays (so no nesting can reach
    the decoder's recursion limit), and any option an action reads whose
    value has the wrong type or is out of range.  Options no action reads
    are ignored, as Alluxio ignores those its version does not know.  The
    accessors then only read.
    """

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    @classmethod
    def parse(cls, raw: bytes) -> Options:
        if not raw.strip():
            return cls({})
        # A [ or { inside a string counts too: no option holds such a string.
        if raw.count(b"[") + raw.count(b"{") > _MAX_CONTAINERS:
            raise BadRequestError(f"Options must hold at most {_MAX_CONTAINERS} objects and arrays")
        try:
            values = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise BadRequestError("Options must be a JSON object") from None
        if not isinstance(values, dict):
            raise BadRequestError("Options must be a JSON object")
        for key, kind in _SHAPE.items():
            value = values.get(key)
            if value is not None and not _has_type(value, kind):
                raise BadRequestError(f"Invalid option [{key}]: {_shown(value)} is not {_KIND_NAMES[kind]}")
        for key in ("owner", "group"):
            value = values.get(key)
            if value and (any(c in value for c in "/:") or not value.isprintable() or " " in value):
                raise BadRequestError(f"Invalid option [{key}]: {_shown(value)} is not a valid name")
        block_size = values.get("blockSizeBytes")
        if block_size is not None and not (block_size == -1 or block_size > 0):
            raise BadRequestError(f"Invalid option [blockSizeBytes]: {block_size} is not -1 or positive")
        mode = values.get("mode")
        if mode is not None:
            for key in _MODE_KEYS:
                bits = mode.get(key, "NONE")
                if not isinstance(bits, str) or bits not in _BITS:
                    raise BadRequestError(f"Invalid option [mode.{key}]: {_shown(bits)}")
        return cls(values)

    def flag(self, name: str, default: bool) -> bool:
        value = self._values.get(name)
        return default if value is None else bool(value)

    def block_size(self) -> int:
        """``blockSizeBytes``: -1 (the default) or a positive size."""
        value = self._values.get("blockSizeBytes")
        return -1 if value is None else int(value)

    def name(self, key: str) -> str | None:
        """``owner`` or ``group``; ``None`` when absent or empty."""
        return self._values.get(key) or None

    def mode(self) -> int | None:
        """``mode`` as ``{"ownerBits", "groupBits", "otherBits"}`` (Alluxio's ``Mode``); ``None`` when absent."""
        mode = self._values.get("mode")
        if mode is None:
            return None
        perm = 0
        for key in _MODE_KEYS:
            perm = perm << 3 | _BITS[mode.get(key, "NONE")]
        return perm


# The options the actions read and the JSON type each must have.
_SHAPE: dict[str, type] = {
    "recursive": bool,
    "allowExists": bool,
    "blockSizeBytes": int,
    "mode": dict,
    "owner": str,
    "group": str,
}
_KIND_NAMES = {bool: "true or false", int: "an integer", dict: "an object", str: "a string"}
_MODE_KEYS = ("ownerBits", "groupBits", "otherBits")


def _has_type(value: object, kind: type) -> bool:
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def _shown(value: object) -> str:
    """A bad value for a message: its JSON, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


async def _options(request: web.Request) -> Options:
    """The options of the body, checked (:meth:`Options.parse`); none without a body."""
    if request.content_length is not None and request.content_length > _MAX_OPTIONS:
        raise BadRequestError("Options too large")
    pieces: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_MAX_OPTIONS + 1 - size):  # read() may stop short of n
        pieces.append(chunk)
        size += len(chunk)
        if size > _MAX_OPTIONS:
            raise BadRequestError("Options too large")
    return Options.parse(b"".join(pieces))


def _file_info(inode: Inode) -> dict[str, object]:
    meta = inode.meta
    file_id = int.from_bytes(hashlib.sha256(inode.path.encode("utf-8")).digest()[:7], "big")
    return {
        "blockIds": [],
        "blockSizeBytes": meta.blocksize,
        "cacheable": not inode.is_dir,
        "completed": True,
        "creationTimeMs": inode.modification_ms,
        "lastModificationTimeMs": inode.modification_ms,
        "fileBlockInfos": [],
        "fileId": file_id,
        "folder": inode.is_dir,
        "owner": meta.owner,
        "group": meta.group,
        "inMemoryPercentage": 0,
        "length": 0 if inode.is_dir else inode.length,
        "name": inode.parts[-1] if inode.parts else "",
        "path": inode.path,
        "ufsPath": "",
        "pinned": False,
        "persisted": True,
        "persistenceState": "PERSISTED",
        "mode": meta.perm & 0o777,
        "mountPoint": not inode.parts,
        "ttl": -1,
        "ttlAction": "DELETE",
    }


async def _require_parent(store: Store, principal: Principal, parts: Parts, recursive: bool) -> None:
    """Without ``recursive`` the parent must exist (Alluxio's rule, not HDFS's)."""
    if parts and not recursive:
        try:
            await store.status(principal, parts[:-1])
        except NotFoundError:
            raise NotFoundError(f"Path {'/' + '/'.join(parts[:-1])} does not exist") from None


# -- paths ------------------------------------------------------------------


_PathAction = Callable[[web.Request, Store, Principal, Parts, Options], Awaitable[web.StreamResponse]]


async def _create_directory(
    request: web.Request, store: Store, principal: Principal, parts: Parts, options: Options
) -> web.StreamResponse:
    recursive, allow_exists = options.flag("recursive", False), options.flag("allowExists", False)
    perm = options.mode()
    try:
        existing = await store.status(principal, parts)
    except NotFoundError:
        existing = None
    if existing is not None and not (existing.is_dir and allow_exists):
        raise AlreadyExistsError(f"{existing.path} already exists")
    await _require_parent(store, principal, parts, recursive)
    await store.mkdirs(principal, parts, perm)
    return _ok()


async def _create_file(
    request: web.Request, store: Store, principal: Principal, parts: Parts, options: Options
) -> web.StreamResponse:
    recursive, block_size, perm = options.flag("recursive", False), options.block_size(), options.mode()
    await _require_parent(store, principal, parts, recursive)
    stream_id = await store.open_write_stream(
        principal, parts, overwrite=False, perm=perm, replication=DEFAULT_REPLICATION, block_size=block_size
    )
    return _json(stream_id)


async def _delete(
    request: web.Request, store: Store, principal: Principal, parts: Parts, options: Options
) -> web.StreamResponse:
    await store.delete(principal, parts, options.flag("recursive", False))
    return _ok()


async def _exists(
    request: web.Request, store: Store, principal: Principal, parts: Parts, options: Options
) -> web.StreamResponse:
    try:
        await store.status(principal, parts)
    except NotFoundError:
        return _json(False)
    return _json(True)


async def _free(
    request: web.Request, store: Store, principal: Principal, parts: Parts, options: Options
) -> web.StreamResponse:
    await store.status(principal, parts)
    return _ok()


async def _get_status(
    request: web.Request, store: Store, principal: Principal, parts: Parts, options: Options
) -> web.StreamResponse:
    return _json(_file_info(await store.status(principal, parts)))


async def _list_status(
    request: web.Request, store: Store, principal: Principal, parts: Parts, options: Options
) -> web.StreamResponse:
    return await send_listing(request, store.list_pages(principal, parts), _file_info)


async def _open_file(
    request: web.Request, store: Store, principal: Principal, parts: Parts, options: Options
) -> web.StreamResponse:
    return _json(await store.open_read_stream(principal, parts))


async def _rename(
    request: web.Request, store: Store, principal: Principal, parts: Parts, options: Options
) -> web.StreamResponse:
    dst_text = request.query.get("dst")
    if not dst_text:
        raise BadRequestError("Missing parameter [dst]")
    dst = parse_hdfs_path(dst_text)
    check_not_reserved(dst)
    await store.status(principal, parts)  # a missing source is NOT_FOUND, as in Alluxio
    if not await store.rename(principal, parts, dst):
        raise AlreadyExistsError(f"Cannot rename {'/' + '/'.join(parts)} to {'/' + '/'.join(dst)}")
    return _ok()


async def _set_attribute(
    request: web.Request, store: Store, principal: Principal, parts: Parts, options: Options
) -> web.StreamResponse:
    if options.flag("recursive", False):
        raise BadRequestError("Invalid option [recursive]: a recursive set-attribute is not supported")
    owner, group, perm = options.name("owner"), options.name("group"), options.mode()
    if owner is not None or group is not None:
        await store.set_owner(principal, parts, owner, group)
    if perm is not None:
        await store.set_permission(principal, parts, perm)
    if owner is None and group is None and perm is None:
        await store.status(principal, parts)
    return _ok()


async def _unsupported(
    request: web.Request, store: Store, principal: Principal, parts: Parts, options: Options
) -> web.StreamResponse:
    raise MethodNotAllowedError("mount and unmount are not supported: the embedded backend serves one file system")


_PATH_ACTIONS: dict[str, _PathAction] = {
    "create-directory": _create_directory,
    "create-file": _create_file,
    "delete": _delete,
    "exists": _exists,
    "free": _free,
    "get-status": _get_status,
    "list-status": _list_status,
    "open-file": _open_file,
    "rename": _rename,
    "set-attribute": _set_attribute,
    "mount": _unsupported,
    "unmount": _unsupported,
}


# -- streams ------------------------------------------------------------------


async def _stream(request: web.Request, store: Store, principal: Principal, rest: str) -> web.StreamResponse:
    text, _, action = rest.partition("/")
    if not text.isdigit() or len(text) > 10:
        raise NotFoundError(f"Stream {text} does not exist")
    stream_id = int(text)
    if action == "read":
        reader = await store.stream_read(principal, stream_id)
        try:
            return await send_file(request, reader, {"Content-Type": "application/octet-stream"})
        finally:
            await reader.close()
    if action == "write":
        written = await store.stream_write(principal, stream_id, request.content, request.content_length)
        return _json(written)
    if action == "close":
        await store.stream_close(principal, stream_id)
        return _ok()
    raise BadRequestError(f"Unknown stream action [{action}]")


async def handle(request: web.Request, store: Store, principal: Principal) -> web.StreamResponse:
    if request.method != "POST":
        raise MethodNotAllowedError(f"HTTP method {request.method} is not supported")
    raw_path = request.raw_path.partition("?")[0]
    if raw_path.startswith(_STREAMS):
        return await _stream(request, store, principal, raw_path[len(_STREAMS) :])
    if not raw_path.startswith(_PATHS):
        raise NotFoundError(f"Unknown resource {raw_path}")
    raw_target, _, action = raw_path[len(_PATHS) :].rpartition("/")
    operation = _PATH_ACTIONS.get(action)
    if operation is None:
        raise BadRequestError(f"Unknown path action [{action}]")
    parts = parse_target("/" + raw_target)
    check_not_reserved(parts)
    options = await _options(request)
    return await operation(request, store, principal, parts, options)


FACE = Face("alluxio", PREFIX, handle, WireFormat.ALLUXIO)
