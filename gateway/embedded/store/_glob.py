"""Hadoop ``GlobFilter`` patterns, translated to Python regular expressions.

The syntax is Hadoop's ``GlobPattern``: ``*`` any run of characters, ``?``
one character, ``[abc]`` / ``[a-z]`` a set, ``[^a]`` or ``[!a]`` its
complement, ``{a,b}`` alternatives (nestable), ``\\c`` the character ``c``
itself.  A pattern matches a whole file name.  Malformed patterns (unclosed
set or group, dangling escape, reversed range) raise :class:`GlobError`.
"""

from __future__ import annotations

import re

__all__ = ("GlobError", "compile_glob")


class GlobError(ValueError):
    """The filter is not a valid glob; the message says where."""


def compile_glob(pattern: str) -> re.Pattern[str]:
    """Return a compiled regex that ``fullmatch``-es the names ``pattern`` accepts."""
    out: list[str] = []
    depth = 0
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            i += 1
            if i >= n:
                raise GlobError(f"Missing escaped character at end of glob {pattern!r}")
            out.append(re.escape(pattern[i]))
        elif char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "," and depth:
            out.append("|")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "[":
            i = _char_class(pattern, i, out)
        else:
            out.append(re.escape(char))
        i += 1
    if depth:
        raise GlobError(f"Unclosed group in glob {pattern!r}")
    return re.compile("".join(out), re.DOTALL)


def _char_class(pattern: str, start: int, out: list[str]) -> int:
    """Translate the set opening at ``start``; return the index of its ``]``."""
    i = start + 1
    n = len(pattern)
    negate = i < n and pattern[i] in "^!"
    if negate:
        i += 1
    members: list[str] = []
    while True:
        if i >= n:
            raise GlobError(f"Unclosed character class in glob {pattern!r}")
        char = pattern[i]
        if char == "]":
            break
        if char == "[":
            raise GlobError(f"Nested character class in glob {pattern!r}")
        low, i = _class_char(pattern, i)
        if i + 1 < n and pattern[i + 1] == "-" and i + 2 < n and pattern[i + 2] != "]":
            high, i = _class_char(pattern, i + 2)
            if high < low:
                raise GlobError(f"Illegal character range {low}-{high} in glob {pattern!r}")
            members.append(f"{re.escape(low)}-{re.escape(high)}")
        else:
            members.append(re.escape(low))
        i += 1
    if not members:
        raise GlobError(f"Empty character class in glob {pattern!r}")
    out.append("[" + ("^" if negate else "") + "".join(members) + "]")
    return i


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """The (possibly escaped) character at ``i`` and the index of its last char."""
    if pattern[i] == "\\":
        if i + 1 >= len(pattern):
            raise GlobError(f"Missing escaped character at end of glob {pattern!r}")
        return pattern[i + 1], i + 1
    return pattern[i], i
