"""The embedded backend's aiohttp application: Hoop REST over a local directory.

See the package docstring for the behaviour and the design choices.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.client_exceptions import ClientPayloadError

from ..config import EmbeddedConfig
from ..hoopjson import failure_response
from ..identity import SIGNATURE_HEADER, IdentitySigner
from ._errors import (
    AuthenticationError,
    BadRequestError,
    FsError,
    MethodNotAllowedError,
    NotFoundError,
)
from ._glob import GlobError, compile_glob
from ._host import HostTree
from ._io import CHUNK_SIZE, FileSink, FileSource, finish
from ._meta import InodeMeta, MetaStore
from ._namespace import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_REPLICATION,
    TMP_DIR,
    TRASH_DIR,
    Inode,
    Namespace,
    host_failure,
)
from ._paths import RESERVED_NAME, Parts, check_not_reserved, hdfs_path, parse_hdfs_path, parse_target
from ._perm import DEFAULT_DIR_PERM, GroupMap, Principal, format_permission, parse_groups
from ._params import Op, Params

__all__ = ("BACKEND_KEY", "EmbeddedBackend", "build_embedded_app")

logger = logging.getLogger("gateway.embedded")

_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")
_IO_THREADS = 4
_SMALL_READ = 64 * 1024  # read whole and answered in one write
_HOST_RE = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=:\[\]-]+")
_LOCATION_SAFE = "/!$&'()*+,;=:@-._~"

_USER_KEY = web.RequestKey("embedded_user", str)
_STREAMING_KEY = web.RequestKey("embedded_streaming", bool)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EmbeddedBackend:
    """The resources of one backend instance, opened at start-up and closed at clean-up."""

    def __init__(self, config: EmbeddedConfig) -> None:
        try:
            umask = int(config.umask, 8)
            if not 0 <= umask <= 0o777:
                raise ValueError
        except ValueError:
            raise ValueError(f"embedded.umask = {config.umask!r}: must be an octal number up to 777") from None
        self.root = Path(config.root)
        self.groups = GroupMap(parse_groups(config.groups), superuser=config.superuser, supergroup=config.supergroup)
        self.umask = umask
        self._ns: Namespace | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._append_locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @property
    def ns(self) -> Namespace:
        if self._ns is None:
            raise RuntimeError("the embedded backend is not started")
        return self._ns

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            raise RuntimeError("the embedded backend is not started")
        return self._pool

    def start(self) -> None:
        """Open the root, the metadata store and the I/O pool; clear leftovers of a crash."""
        self.root.mkdir(parents=True, exist_ok=True)
        state = self.root / RESERVED_NAME
        if state.is_symlink():
            raise RuntimeError(f"{state} must be a directory, not a symbolic link")
        state.mkdir(mode=0o700, exist_ok=True)
        for name in (TMP_DIR[-1], TRASH_DIR[-1]):
            scratch = state / name
            if scratch.is_symlink() or (scratch.exists() and not scratch.is_dir()):
                raise RuntimeError(f"{scratch} must be a directory")
            scratch.mkdir(mode=0o700, exist_ok=True)
            with os.scandir(scratch) as entries:
                leftovers = list(entries)  # of interrupted uploads and deletes
            for entry in leftovers:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        host = HostTree(self.root)
        try:
            store = MetaStore(state / "meta.sqlite3")
        except BaseException:
            host.close()
            raise
        ns = Namespace(host, store, self.groups, umask=self.umask)
        try:
            if store.get("/") is None:
                store.put("/", InodeMeta(self.groups.superuser, self.groups.supergroup, DEFAULT_DIR_PERM, 0, 0))
            system = self.groups.principal(self.groups.superuser)
            ns.ensure_dir(system, ("user",), DEFAULT_DIR_PERM)
        except BaseException:
            store.close()
            host.close()
            raise
        self._ns = ns
        self._pool = ThreadPoolExecutor(max_workers=_IO_THREADS, thread_name_prefix="embedded-io")

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._ns is not None:
            self._ns.store.close()
            self._ns.host.close()
            self._ns = None

    @contextlib.asynccontextmanager
    async def append_lock(self, path: str) -> AsyncIterator[None]:
        """Serialise appends to one file, so a failed one can be cut back cleanly."""
        lock, users = self._append_locks.get(path, (asyncio.Lock(), 0))
        self._append_locks[path] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._append_locks[path]
            if users == 1:
                del self._append_locks[path]
            else:
                self._append_locks[path] = (lock, users - 1)

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, func, *args)


BACKEND_KEY = web.AppKey("embedded_backend", EmbeddedBackend)


# -- middlewares ------------------------------------------------------------------


def _error_middleware() -> Any:
    @web.middleware
    async def impl(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except FsError as exc:
            if request.get(_STREAMING_KEY):
                raise
            return failure_response(exc.status, exc.message, exc.exception)
        except ClientPayloadError as exc:
            logger.info("incomplete request body for %s %s: %s", request.method, request.path, exc)
            return failure_response(400, "Incomplete request body", "IllegalArgumentException")
        except web.HTTPException:
            raise
        except Exception:
            if request.get(_STREAMING_KEY):
                raise
            # Never a traceback or a host path in the answer; the log has both.
            logger.exception("internal failure on %s %s", request.method, request.path)
            return failure_response(500, "Internal error in the embedded backend", "IOException")

    return impl


def _identity_middleware(*, signer: IdentitySigner, identity_header: str) -> Any:
    """Trust only identities the gateway signed for exactly this request line."""
    if not identity_header or any(c.isspace() or c == ":" for c in identity_header):
        raise ValueError(f"identity_header = {identity_header!r}: must be an HTTP header name")
    if identity_header.lower() == SIGNATURE_HEADER.lower():
        raise ValueError(f"identity_header = {identity_header!r}: must differ from {SIGNATURE_HEADER}")

    @web.middleware
    async def impl(request: web.Request, handler: Handler) -> web.StreamResponse:
        users = request.headers.getall(identity_header, [])
        signatures = request.headers.getall(SIGNATURE_HEADER, [])
        if len(users) != 1 or len(signatures) != 1:
            raise AuthenticationError("Authentication required: missing signed identity")
        user = users[0]
        if not user or not user.isprintable() or any(c.isspace() or c in "/:" for c in user):
            raise AuthenticationError("Authentication required: invalid identity")
        if not signer.verify(signatures[0], user, request.method, request.raw_path):
            raise AuthenticationError("Authentication required: invalid identity signature")
        request[_USER_KEY] = user
        return await handler(request)

    return impl


# -- helpers ------------------------------------------------------------------


def _base_url(request: web.Request) -> str:
    """``scheme://host`` as the client sees it (the gateway's forwarded headers first)."""
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    if proto not in ("http", "https"):
        proto = request.scheme
    if not host or not _HOST_RE.fullmatch(host):
        host = request.host
    return f"{proto}://{host}"


def _location(request: web.Request, parts: Parts) -> str:
    return _base_url(request) + quote(hdfs_path(parts), safe=_LOCATION_SAFE)


def _json(data: object) -> web.Response:
    return web.Response(text=json.dumps(data), content_type="application/json")


def _empty(status: int = 200, location: str | None = None) -> web.Response:
    headers = {"Location": location} if location else None
    return web.Response(status=status, headers=headers, content_type="application/json")


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


class _Call:
    """One request's decoded inputs."""

    __slots__ = ("backend", "params", "parts", "principal", "request")

    def __init__(self, request: web.Request, backend: EmbeddedBackend, parts: Parts, params: Params) -> None:
        self.request = request
        self.backend = backend
        self.parts = parts
        self.params = params
        self.principal: Principal = backend.groups.principal(request[_USER_KEY])

    @property
    def ns(self) -> Namespace:
        return self.backend.ns


# -- operations ------------------------------------------------------------------


async def _open(call: _Call) -> web.StreamResponse:
    offset = call.params.integer("offset", -1, minimum=-1)
    length = call.params.integer("len", -1, minimum=-1)
    inode, fd = call.ns.open_for_read(call.principal, call.parts)
    source = FileSource(fd, max(offset, 0))
    try:
        size = os.fstat(fd).st_size
        if source.position > size:
            raise BadRequestError(f"Offset {offset} is beyond the end of {inode.path} ({size} bytes)")
        remaining = size - source.position
        if length != -1:
            remaining = min(length, remaining)
        headers = {"Location": _location(call.request, call.parts), "Content-Type": "application/octet-stream"}
        if call.request.method == "HEAD":
            response = web.StreamResponse(headers=headers)
            response.content_length = remaining
            await response.prepare(call.request)
            await response.write_eof()
            return response
        if remaining <= _SMALL_READ:
            # One read, one write: headers and body leave together.
            return web.Response(headers=headers, body=await call.backend.run(source.read, remaining))
        # A known length lets clients (and the gateway) tell a complete
        # download from one cut short.
        response = web.StreamResponse(headers=headers)
        response.content_length = remaining
        await response.prepare(call.request)
        call.request[_STREAMING_KEY] = True
        while remaining > 0:
            data = await call.backend.run(source.read, min(CHUNK_SIZE, remaining))
            if not data:  # the file shrank under us: never pad, cut the response
                if call.request.transport is not None:
                    call.request.transport.abort()
                return response
            remaining -= len(data)
            await response.write(data)
        await response.write_eof()
        return response
    finally:
        await finish(call.backend.pool, source.close)


async def _receive(call: _Call, sink: FileSink) -> None:
    """Copy the whole request body into ``sink``; raise unless it all arrived."""
    content = call.request.content
    while True:
        chunk = await content.readany()
        if not chunk:
            break
        # Batch what has already arrived into one write on the pool, but
        # never wait for more while holding it: a stalled upload must not
        # keep a buffer (memory follows connections, not their stalls).
        pieces, size = [chunk], len(chunk)
        while size < CHUNK_SIZE and (more := content.read_nowait(CHUNK_SIZE - size)):
            pieces.append(more)
            size += len(more)
        data = chunk if len(pieces) == 1 else b"".join(pieces)
        del chunk, pieces
        await call.backend.run(sink.write, data)
        del data
    expected = call.request.content_length
    if not content.is_eof() or (expected is not None and sink.written != expected):
        raise BadRequestError("Incomplete request body")


async def _create(call: _Call) -> web.StreamResponse:
    params, ns, principal = call.params, call.ns, call.principal
    overwrite = params.boolean("overwrite", True)
    replication = params.replication(DEFAULT_REPLICATION)
    block_size = params.integer("blocksize", -1, minimum=-1)
    if block_size == 0:
        raise BadRequestError("Invalid value for parameter [blocksize]: 0 is not -1 or positive")
    perm = params.permission()
    perm = ns.default_perm(False) if perm is None else perm
    ns.ensure_home(principal.name, call.parts, inclusive=False)
    ns.check_create(principal, call.parts, overwrite)  # refuse before taking the body
    try:
        temp, fd = ns.new_temp()
    except OSError as exc:
        raise host_failure(exc, hdfs_path(call.parts)) from exc
    sink = FileSink(fd)
    committed = False
    try:
        await _receive(call, sink)
        await call.backend.run(sink.sync)
        await finish(call.backend.pool, sink.close)
        ns.commit_create(
            principal,
            call.parts,
            temp,
            overwrite=overwrite,
            perm=perm,
            replication=replication,
            block_size=DEFAULT_BLOCK_SIZE if block_size == -1 else block_size,
        )
        committed = True
    finally:
        if not committed:
            await finish(call.backend.pool, sink.close)
            await finish(call.backend.pool, lambda: ns.discard(temp))
    return _empty(201, _location(call.request, call.parts))


async def _append(call: _Call) -> web.StreamResponse:
    ns, backend = call.ns, call.backend
    async with backend.append_lock(hdfs_path(call.parts)):
        _inode, fd = ns.open_for_append(call.principal, call.parts)
        sink = FileSink(fd)
        done = False
        try:
            await _receive(call, sink)
            await backend.run(sink.sync)
            done = True
        finally:
            if not done:
                await finish(backend.pool, sink.truncate_back)
            await finish(backend.pool, sink.close)
    return _empty(200, _location(call.request, call.parts))


async def _rename(call: _Call) -> web.StreamResponse:
    to = call.params.get("to")
    if not to:
        raise BadRequestError("Missing parameter [to]")
    dst = parse_hdfs_path(to)
    check_not_reserved(dst)
    call.ns.ensure_home(call.principal.name, dst, inclusive=False)
    return _json({"rename": call.ns.rename(call.principal, call.parts, dst)})


async def _delete(call: _Call) -> web.StreamResponse:
    ns, backend, principal = call.ns, call.backend, call.principal
    recursive = call.params.boolean("recursive", True)
    if not call.parts:
        ns.existing(principal, call.parts)
        return _json({"delete": False})  # HDFS never deletes the root
    target, walk = ns.check_delete(principal, call.parts, recursive)
    if walk:
        try:
            below = await backend.run(ns.host.subdirectories, call.parts)
        except OSError as exc:
            raise NotFoundError(f"File does not exist: {target.path}") from exc
        target, walk = ns.check_delete(principal, call.parts, recursive)  # it may have changed meanwhile
        if walk:
            ns.check_subtree(principal, target, below)
    trash = ns.unlink_to_trash(call.parts)
    if trash is not None:
        try:
            await finish(backend.pool, lambda: ns.discard(trash))
        except OSError:
            logger.warning("could not remove deleted %s from the trash; it goes at the next start", target.path)
    return _json({"delete": True})


async def _list(call: _Call) -> web.StreamResponse:
    text = call.params.get("filter")
    try:
        pattern = compile_glob(text) if text else None
    except GlobError as exc:
        raise BadRequestError(f"Invalid value for parameter [filter]: {exc}") from None
    target = call.ns.existing(call.principal, call.parts)
    entries = call.ns.list_children(call.principal, target) if target.is_dir else [target]
    if pattern is not None:
        entries = [e for e in entries if pattern.fullmatch(e.parts[-1] if e.parts else "")]
    base = _base_url(call.request)
    return _json([_status_json(base, e) for e in entries])


async def _mkdirs(call: _Call) -> web.StreamResponse:
    perm = call.params.permission()
    call.ns.ensure_home(call.principal.name, call.parts, inclusive=True)
    call.ns.make_dirs(call.principal, call.parts, call.ns.default_perm(True) if perm is None else perm)
    return _json({"mkdirs": True})


async def _status(call: _Call) -> web.StreamResponse:
    inode = call.ns.existing(call.principal, call.parts)
    return _json(_status_json(_base_url(call.request), inode))


async def _homedir(call: _Call) -> web.StreamResponse:
    return _json({"homeDir": _base_url(call.request) + hdfs_path(("user", call.principal.name))})


async def _setowner(call: _Call) -> web.StreamResponse:
    call.ns.set_owner(call.principal, call.parts, call.params.name("owner"), call.params.name("group"))
    return _empty()


async def _setpermission(call: _Call) -> web.StreamResponse:
    call.ns.set_permission(call.principal, call.parts, call.params.permission())
    return _empty()


async def _settimes(call: _Call) -> web.StreamResponse:
    mtime = call.params.integer("mtime", -1, minimum=-1)
    atime = call.params.integer("atime", -1, minimum=-1)
    call.ns.set_times(call.principal, call.parts, mtime, atime)
    return _empty()


async def _setreplication(call: _Call) -> web.StreamResponse:
    replication = call.params.replication(DEFAULT_REPLICATION)
    return _json({"setReplication": call.ns.set_replication(call.principal, call.parts, replication)})


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


async def _dispatch(request: web.Request) -> web.StreamResponse:
    if request.method not in _METHODS:
        raise MethodNotAllowedError(f"HTTP method {request.method} is not supported")
    raw_path, _, raw_query = request.raw_path.partition("?")
    params = Params(raw_query)
    # HEAD is GET without the body, as servlet containers answer it.
    op = params.op("GET" if request.method == "HEAD" else request.method)
    parts = parse_target(raw_path)
    if op is not Op.HOMEDIR:
        check_not_reserved(parts)
    call = _Call(request, request.app[BACKEND_KEY], parts, params)
    return await _OPERATIONS[op](call)


# -- the application ------------------------------------------------------------------


def build_embedded_app(
    config: EmbeddedConfig, *, signer: IdentitySigner, identity_header: str
) -> web.Application:
    """The embedded Hoop backend serving ``config.root``; see the package docstring.

    Configuration problems raise ``ValueError`` here; the root, metadata
    store and I/O threads are opened when the app starts (``cleanup_ctx``).
    """
    backend = EmbeddedBackend(config)
    app = web.Application(
        middlewares=[_error_middleware(), _identity_middleware(signer=signer, identity_header=identity_header)]
    )
    app[BACKEND_KEY] = backend

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        backend.start()
        try:
            yield
        finally:
            backend.stop()

    app.cleanup_ctx.append(lifetime)
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app
