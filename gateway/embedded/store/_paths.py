"""HDFS paths as the embedded backend accepts them.

A path is the request target's path, percent-decoded exactly once, split on
``/`` with empty segments dropped (so ``//a///b`` is ``/a/b``, as the Alluxio
client sends it).  It must be UTF-8, must not contain NUL and must not have
``.`` or ``..`` segments (HDFS refuses them as names too); ``%2F`` decodes
to a separator like any other ``/``.  The result is a tuple of names that can
only ever address something below the served root; the host side
(:mod:`._host`) additionally refuses to follow symbolic links.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from ._errors import AccessDeniedError, BadRequestError, PathTooLongError

__all__ = (
    "MAX_PATH_DEPTH",
    "MAX_PATH_LENGTH",
    "RESERVED_NAME",
    "Parts",
    "check_not_reserved",
    "check_path_limits",
    "hdfs_path",
    "join",
    "parse_hdfs_path",
    "parse_target",
)

Parts = tuple[str, ...]

# The backend's own state (metadata database, temporary uploads, trash) lives
# in this directory at the root; it is invisible and inaccessible to clients.
RESERVED_NAME = ".authgateway"


def parse_target(raw_path: str) -> Parts:
    """Return the names of the HDFS path in a raw request target (query ignored)."""
    path = raw_path.partition("?")[0].partition("#")[0]
    try:
        text = unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("Invalid path name: not UTF-8") from None
    return _split(text)


def parse_hdfs_path(text: str) -> Parts:
    """Return the names of an already decoded absolute HDFS path (``to=``)."""
    if not text.startswith("/"):
        raise BadRequestError(f"Invalid path name: {text!r} is not absolute")
    return _split(text)


def _split(text: str) -> Parts:
    if "\x00" in text:
        raise BadRequestError("Invalid path name: contains NUL")
    parts = tuple(p for p in text.split("/") if p)
    for name in parts:
        if name in (".", ".."):
            raise BadRequestError(f"Invalid path name: {name!r} segments are not allowed")
    return parts


def hdfs_path(parts: Parts) -> str:
    """The canonical text of a path: ``/`` or ``/a/b``."""
    return "/" + "/".join(parts)


def join(parts: Parts, name: str) -> Parts:
    return (*parts, name)


# HDFS's limits on a path it creates (HdfsServerConstants, checked by the
# NameNode's create, mkdirs and rename): characters of the path's text, as
# Java counts them (UTF-16 code units), and names in it.
MAX_PATH_LENGTH = 8000
MAX_PATH_DEPTH = 1000


def check_path_limits(op: str, parts: Parts) -> None:
    """Refuse, as the NameNode does, to create a path deeper or longer than HDFS allows."""
    if len(parts) <= MAX_PATH_DEPTH:
        length = len(parts) + sum(map(len, parts))  # the text, "/" before each name
        if length <= MAX_PATH_LENGTH // 2 or length + _astral(parts) <= MAX_PATH_LENGTH:
            return
    raise PathTooLongError(
        f"{op}: Pathname too long.  Limit {MAX_PATH_LENGTH} characters, {MAX_PATH_DEPTH} levels."
    )


def _astral(parts: Parts) -> int:
    """How many characters of ``parts`` Java counts twice (outside the Basic Multilingual Plane)."""
    return sum(1 for name in parts if not name.isascii() for c in name if ord(c) > 0xFFFF)


def check_not_reserved(parts: Parts) -> None:
    """Refuse any access to the backend's own state directory."""
    if parts and parts[0] == RESERVED_NAME:
        raise AccessDeniedError(f"Permission denied: /{RESERVED_NAME} is reserved")
