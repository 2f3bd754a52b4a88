"""Hadoop ``GlobFilter`` patterns, matched in linear time.

The syntax is Hadoop's ``GlobPattern``: ``*`` any run of characters, ``?``
one character, ``[abc]`` / ``[a-z]`` a set, ``[^a]`` or ``[!a]`` its
complement, ``{a,b}`` alternatives (nestable), ``\\c`` the character ``c``
itself.  A pattern matches a whole file name.  Malformed patterns (unclosed
set or group, dangling escape, reversed range) raise :class:`GlobError`, and
so do patterns nested deeper than :data:`MAX_GROUP_DEPTH` groups or too big
for :data:`_MAX_PROGRAM` bytes of matcher.

As Hadoop does (its ``GlobPattern`` compiles to RE2/J), the pattern becomes
an RE2 expression: RE2 runs in time linear in the name whatever the pattern,
so no filter (``*a*a*a*a*a*a*a*a*a*a*b`` over a long name) can backtrack for
hours.  The translation is one iterative pass; nothing recurses on the
pattern's nesting.
"""

from __future__ import annotations

from typing import Any

import re2  # type: ignore[import-untyped]

__all__ = ("MAX_GROUP_DEPTH", "Glob", "GlobError", "compile_glob")

MAX_GROUP_DEPTH = 100
"""Deepest nesting of ``{...}`` groups a filter may have; deeper is refused."""

# RE2's memory budget for one compiled filter (program and DFA cache).  A
# filter that needs more is refused rather than allowed to grow; a DFA that
# fills its cache falls back to RE2's NFA, still linear.
_MAX_PROGRAM = 1 << 20
_OPTIONS: Any = re2.Options()
_OPTIONS.max_mem = _MAX_PROGRAM
_OPTIONS.dot_nl = True  # a name may hold any character but "/"
_OPTIONS.never_capture = True
_OPTIONS.log_errors = False


class GlobError(ValueError):
    """The filter is not a valid glob; the message says where."""


class Glob:
    """A compiled filter: :meth:`matches` tells whether it accepts a whole name."""

    __slots__ = ("_regex", "pattern")

    def __init__(self, pattern: str, regex: Any) -> None:
        self.pattern = pattern
        self._regex = regex

    def matches(self, name: str) -> bool:
        return self._regex.fullmatch(name) is not None


def compile_glob(pattern: str) -> Glob:
    """Compile ``pattern``; raise :class:`GlobError` when it is malformed or too big."""
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
            out.append(_literal(pattern[i]))
        elif char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "{":
            depth += 1
            if depth > MAX_GROUP_DEPTH:
                raise GlobError(f"More than {MAX_GROUP_DEPTH} nested groups in glob {pattern[:40]!r}...")
            out.append("(?:")
        elif char == "," and depth:
            out.append("|")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "[":
            i = _char_class(pattern, i, out)
        else:
            out.append(_literal(char))
        i += 1
    if depth:
        raise GlobError(f"Unclosed group in glob {pattern!r}")
    try:
        regex = re2.compile("".join(out), _OPTIONS)
    except re2.error:
        raise GlobError(f"Glob too complex: {pattern[:40]!r}...") from None
    return Glob(pattern, regex)


def _literal(char: str) -> str:
    """``char`` as an RE2 literal: punctuation and controls escaped by code point."""
    if char.isalnum() or char == "_" or not char.isascii():
        return char
    return f"\\x{{{ord(char):x}}}"


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
            members.append(f"{_class_literal(low)}-{_class_literal(high)}")
        else:
            members.append(_class_literal(low))
        i += 1
    if not members:
        raise GlobError(f"Empty character class in glob {pattern!r}")
    out.append("[" + ("^" if negate else "") + "".join(members) + "]")
    return i


def _class_literal(char: str) -> str:
    """``char`` inside a set: by code point always, so no member reads as syntax."""
    return f"\\x{{{ord(char):x}}}"


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """The (possibly escaped) character at ``i`` and the index of its last char."""
    if pattern[i] == "\\":
        if i + 1 >= len(pattern):
            raise GlobError(f"Missing escaped character at end of glob {pattern!r}")
        return pattern[i + 1], i + 1
    return pattern[i], i
