"""Reading and scrubbing ``Cookie`` request headers, by one reading.

The gateway looks for its session cookie and removes it before forwarding
with the same tokenizer, so whatever could authenticate a request can never
reach a backend.  The reading is the widest any server applies: ``;`` and
``,`` both separate pairs (RFC 2965 allowed ``,`` and parsers such as
aiohttp's still accept it), white space of any kind around names and values
is ignored (Python's ``http.cookies`` and aiohttp take a vertical tab
before a name as space), and a value in double quotes is unquoted.  A name
that is not exactly ours never authenticates; scrubbing also drops names
that differ only in letter case, since some backend might fold them.

Everything not dropped is forwarded byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator

__all__ = ("cookie_values", "iter_cookies", "strip_cookies")

_SEPARATORS = re.compile(r"[;,]")
_PIECES = re.compile(r"(?=[;,])")  # split before each separator, keeping it
_EDGES = re.compile(r"^[\s;,]+|\s+$")  # what may be left around the kept pairs


def iter_cookies(header: str) -> Iterator[tuple[str, str]]:
    """Yield ``(name, value)`` for each pair of one ``Cookie`` header, in order.

    Pieces without ``=`` are skipped; names and values are stripped of
    any white space and a value's surrounding double quotes are removed.
    """
    for pair in _SEPARATORS.split(header):
        name, sep, value = pair.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        yield name.strip(), value


def cookie_values(headers: Iterable[str], name: str) -> list[str]:
    """Every value of cookie ``name`` across ``headers`` (all ``Cookie`` lines), in order."""
    return [value for header in headers for n, value in iter_cookies(header) if n == name]


def strip_cookies(header: str, names: Collection[str]) -> str:
    """``header`` without any pair whose name, in any letter case, is in ``names``.

    ``names`` must be lower case.  Returns ``""`` when nothing is left.
    """
    kept: list[str] = []
    for piece in _PIECES.split(header):
        pair = piece[1:] if piece[:1] in (";", ",") else piece
        name, sep, _ = pair.partition("=")
        if sep and name.strip().lower() in names:
            continue
        kept.append(piece)
    return _EDGES.sub("", "".join(kept))
