"""Query parameters of the Hoop and WebHDFS faces, parsed and validated.

:class:`Op` and :meth:`Params.op` are Hoop's; the WebHDFS face reads its
``op`` itself.  Names are case-sensitive as in Hoop (``op``'s *value* is not); ``&``
separates pairs, ``+`` and percent escapes are decoded, the first of
repeated names wins and unknown names are ignored.  A bad value raises
:class:`BadRequestError` naming the parameter.
"""

from __future__ import annotations

import enum
from urllib.parse import unquote_plus

from ..store import BadRequestError, parse_permission

__all__ = ("Op", "Params")

_SHORT_MAX = 32767
_LONG_MAX = (1 << 63) - 1


class Op(enum.Enum):
    """The Hoop operations, by their ``op`` value."""

    OPEN = "open"
    LIST = "list"
    STATUS = "status"
    HOMEDIR = "homedir"
    CREATE = "create"
    MKDIRS = "mkdirs"
    APPEND = "append"
    RENAME = "rename"
    SETOWNER = "setowner"
    SETPERMISSION = "setpermission"
    SETTIMES = "settimes"
    SETREPLICATION = "setreplication"
    DELETE = "delete"

    @property
    def method(self) -> str:
        """The HTTP method that carries this operation."""
        return _METHODS[self]


_METHODS = {
    Op.OPEN: "GET",
    Op.LIST: "GET",
    Op.STATUS: "GET",
    Op.HOMEDIR: "GET",
    Op.CREATE: "POST",
    Op.MKDIRS: "POST",
    Op.APPEND: "PUT",
    Op.RENAME: "PUT",
    Op.SETOWNER: "PUT",
    Op.SETPERMISSION: "PUT",
    Op.SETTIMES: "PUT",
    Op.SETREPLICATION: "PUT",
    Op.DELETE: "DELETE",
}


class Params:
    """The decoded query parameters of one request."""

    __slots__ = ("_values",)

    def __init__(self, raw_query: str) -> None:
        values: dict[str, str] = {}
        for pair in raw_query.split("&"):
            if not pair:
                continue
            raw_name, _, raw_value = pair.partition("=")
            try:
                name = unquote_plus(raw_name, errors="strict")
                value = unquote_plus(raw_value, errors="strict")
            except UnicodeDecodeError:
                raise BadRequestError("Query parameters must be UTF-8") from None
            values.setdefault(name, value)
        self._values = values

    def get(self, name: str) -> str | None:
        return self._values.get(name)

    def op(self, method: str) -> Op:
        """The operation; GET without ``op`` reads the file."""
        text = self.get("op")
        if text is None or text == "":
            if method == "GET":
                return Op.OPEN
            raise BadRequestError(f"Missing parameter [op] for HTTP {method}")
        try:
            op = Op(text.lower())
        except ValueError:
            raise BadRequestError(f"Invalid operation [{text}]") from None
        if op.method != method:
            raise BadRequestError(f"Invalid HTTP {method} operation [{text}]")
        return op

    def boolean(self, name: str, default: bool) -> bool:
        text = self.get(name)
        if text is None or text == "":
            return default
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise BadRequestError(f"Invalid value for parameter [{name}]: {text!r} is not true or false")

    def integer(self, name: str, default: int, *, minimum: int, maximum: int = _LONG_MAX) -> int:
        """An integer in ``[minimum, maximum]``; ``default`` when absent or empty."""
        text = self.get(name)
        if text is None or text == "":
            return default
        try:
            value = int(text, 10)
        except ValueError:
            raise BadRequestError(f"Invalid value for parameter [{name}]: {text!r} is not an integer") from None
        if not minimum <= value <= maximum:
            raise BadRequestError(
                f"Invalid value for parameter [{name}]: {value} is not between {minimum} and {maximum}"
            )
        return value

    def replication(self, default: int) -> int:
        """``replication``: -1 (or absent) means ``default``, otherwise 1..32767."""
        value = self.integer("replication", -1, minimum=-1, maximum=_SHORT_MAX)
        if value == 0:
            raise BadRequestError("Invalid value for parameter [replication]: 0 is not -1 or positive")
        return default if value == -1 else value

    def permission(self) -> int | None:
        """``permission``: ``None`` for the default (absent, empty or ``default``)."""
        text = self.get("permission")
        if text is None or text == "" or text == "default":
            return None
        try:
            return parse_permission(text)
        except ValueError as exc:
            raise BadRequestError(f"Invalid value for parameter [permission]: {exc}") from None

    def name(self, name: str) -> str | None:
        """A user or group name (``owner``, ``group``); ``None`` when absent or empty."""
        text = self.get(name)
        if not text:
            return None
        if any(c in text for c in "/:") or any(c.isspace() or not c.isprintable() for c in text):
            raise BadRequestError(f"Invalid value for parameter [{name}]: {text!r} is not a valid name")
        return text
