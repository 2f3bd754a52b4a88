"""The embedded backend: the Hoop, WebHDFS v1 and Alluxio proxy REST APIs over a local directory.

``build_embedded_app(config, signer=..., identity_header=...)`` returns the
aiohttp application; the gateway runs it on ``embedded.listen``.

Layout: ``store/`` is the file system (namespace, metadata, permissions,
transfers, streams, one family of errors) and knows no REST API;
``faces/`` holds one module per REST API (``hoop.py`` for every path,
``webhdfs.py`` for ``/webhdfs/v1/``, ``alluxio.py`` for ``/api/v1/``),
which parses requests into store calls and renders results and errors
(through :mod:`gateway.wire`'s tables); ``app.py`` only verifies the
identity, picks the face by path prefix and runs the store's lifetime.  What follows is the Hoop face; the other faces' choices are in
their module docstrings.

Behaviour and the choices made where Hoop/HDFS leave room:

* **Identity.** Only the user in ``identity_header`` counts, and only with a
  valid ``X-Authgateway-Signature`` for exactly this method and raw request
  target; anything else is 401 ``AuthenticationException``.  ``user.name``
  in the query is ignored.  With ``embedded.auth = "kerberos"`` (run alone)
  callers authenticate with SPNEGO instead and may name another user with
  ``doas`` where ``[[proxy_users]]`` allow it (see ``_spnego.py``).
  Absolute URLs in responses (``Location``, status
  ``path``, ``homeDir``) use ``X-Forwarded-Proto``/``X-Forwarded-Host``.
* **Failures** are the Hoop failure JSON (statusCode, reason, message,
  exception).  400 ``IllegalArgumentException`` for bad input (unknown op, op
  on the wrong method, bad values, ``..``/NUL in paths, over-long names,
  malformed glob, offset past the end, incomplete body); 401 as above; 403
  ``AccessControlException``; 404 ``FileNotFoundException`` for a missing
  path (also for delete, rename's source and reading a directory); 405 for
  other HTTP methods.  **409** for conflicts: ``FileAlreadyExistsException``
  (create with ``overwrite=false`` on an existing file, create over a
  directory, mkdirs over a file), ``ParentNotDirectoryException`` and
  ``PathIsNotEmptyDirectoryException`` (non-recursive delete of a non-empty
  directory).  HttpFS answers these IOExceptions with 500 and WebHDFS with
  403; neither says "conflict", and 500 must mean a server fault here: only
  host I/O failures (disk full, EIO) are 500 ``IOException``.  Messages name
  HDFS paths only.
* **Defaults as in the seed**: ``overwrite=true``, ``recursive=true``,
  ``offset``/``len`` ``-1``, ``replication`` 3 and ``blocksize`` 64 MiB for
  files (0/0 for directories).  rename follows HDFS: into an existing
  directory it moves below it; an existing file, a missing parent or a move
  into itself give ``{"rename":false}``.  Deleting ``/`` gives
  ``{"delete":false}``; setreplication on a directory gives
  ``{"setReplication":false}``.
* **Metadata** (owner, group, permission, replication, block size) lives in
  SQLite at ``<root>/.authgateway/meta.sqlite3`` and survives restarts; sizes
  and times are the host's.  The root starts as ``superuser:supergroup 755``.
  Inodes nobody recorded (copied in by hand) read as superuser-owned,
  parent's group, 755/644.  New inodes: owner = requester, group = parent's
  group, permission = the parameter as given (octal or symbolic) or else
  644/755 minus ``umask``.
* **/user and homes.** ``/user`` is created at start-up as
  ``superuser:supergroup 755``.  A user's home ``/user/<user>`` is created,
  owned by that user (group from ``/user``, 755 minus umask), the first time
  that user creates or renames something below it or mkdirs it or below it.
  Nobody can create a home for someone else (no squatting, unlike a
  world-writable sticky ``/user``); the superuser can still prepare homes.
* **Permissions** follow HDFS: EXECUTE on every ancestor, READ to read,
  READ_EXECUTE to list, WRITE on the parent to create/delete/rename (and on
  the file to overwrite or append), ALL on every directory of a subtree for
  a recursive delete, the sticky bit on directories.  The superuser and the
  supergroup's members pass every check.  Only they can change an owner;
  an owner can change the group to one of its groups and the permission;
  times and replication need ownership or WRITE.
* **Atomic create.** The body goes to ``.authgateway/tmp/<random>``, is
  fsynced and only then linked (``overwrite=false``: no replacing, ever) or
  renamed (``overwrite=true``) into place.  On any failure (disconnect,
  truncated or short body, cancellation) the temp file is removed and the
  old file is untouched.  Leftovers of a crash are removed at start-up
  (not a temp file another process still holds the ``flock`` of, nor an
  open stream's).
* **Append** writes in place (no copy of big files) under a per-file lock
  (an asyncio lock in the process, ``flock`` on the file across processes),
  and on failure truncates the file back to its size before the append.
  Concurrent readers may see the appended bytes before the append
  completes; a crash of the whole process mid-append can leave them.
* **Delete** first renames the entry into ``.authgateway/trash`` (atomic,
  immediately gone from the namespace), drops its metadata, then removes
  the files on the I/O pool.
* **Faces by prefix.** ``/webhdfs/v1`` and ``/api/v1`` (and below) belong to
  the WebHDFS and Alluxio faces, so HDFS paths under them are out of the
  Hoop face's reach; every other path is Hoop's.
* **Confinement.** The path is the raw request path, percent-decoded once,
  ``//`` collapsed; ``.``/``..`` segments, NUL and non-UTF-8 are 400.
  ``/.authgateway`` is hidden from listings and any access to it is 403.
  Host access walks from a descriptor of the root with ``O_NOFOLLOW`` and
  the ``*at`` calls, so **symbolic links are never followed**: they (and
  device files, fifos, sockets) are invisible, addressing them is 404.
* **I/O.** File contents move in 1 MiB chunks on a 4-thread pool; memory per
  transfer is bounded whatever the file size.  Reads are streamed with
  chunked encoding.
"""

from .app import BACKEND_KEY, LOCAL_HANDLER, build_embedded_app
from .store import Store

__all__ = ("BACKEND_KEY", "LOCAL_HANDLER", "Store", "build_embedded_app")
