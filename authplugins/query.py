"""Query strings as the backends may read them, for lookup and scrubbing.

Backends disagree on what separates parameters and how names are spelled, so
for anything that touches identity we take the widest reading: ``&`` and
``;`` both separate, names are percent- and ``+``-decoded and compared case
insensitively.  Pairs we keep are forwarded exactly as the client wrote them.

It lives here, below both, because the simple scheme reads ``user.name`` by
exactly the reading by which the gateway's dialects scrub it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator
from urllib.parse import quote, unquote_plus

__all__ = ("encode_param", "iter_params", "param_values", "rewrite_query")

_SEPARATORS = re.compile(r"[&;]")
_PIECES = re.compile(r"(?=[&;])")  # split before each separator, keeping it


def _decode(text: str) -> str:
    return unquote_plus(text, encoding="utf-8", errors="surrogateescape")


def iter_params(raw_query: str) -> Iterator[tuple[str, str, str]]:
    """Yield ``(raw_pair, folded_name, value)`` for each non-empty pair.

    ``folded_name`` is the decoded name in lower case; ``value`` is decoded.
    """
    if not raw_query:
        return
    for pair in _SEPARATORS.split(raw_query):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        yield pair, _decode(name).strip().lower(), _decode(value)


def param_values(raw_query: str, name: str) -> list[str]:
    """All decoded values of parameter ``name`` (any spelling), in order."""
    folded = name.lower()
    return [value for _, n, value in iter_params(raw_query) if n == folded]


def encode_param(name: str, value: str) -> str:
    return f"{quote(name, safe='.-_~')}={quote(value, safe='.-_~@')}"


def rewrite_query(raw_query: str, drop: Collection[str], append: Iterable[tuple[str, str]] = ()) -> str:
    """Remove every parameter whose folded name is in ``drop``; add ``append``.

    ``drop`` must hold lower-case names.  Everything else, separators and
    empty pairs included, is kept byte for byte.
    """
    kept: list[str] = []
    for piece in _PIECES.split(raw_query) if raw_query else ():
        pair = piece[1:] if piece[:1] in ("&", ";") else piece
        name = _decode(pair.partition("=")[0]).strip().lower()
        if pair and name in drop:
            continue
        kept.append(piece)
    query = "".join(kept)
    if query[:1] in ("&", ";") and raw_query[:1] not in ("&", ";"):
        query = query[1:]  # the first pair was dropped: do not start with its follower's separator
    added = "&".join(encode_param(n, v) for n, v in append)
    if added:
        query = f"{query}&{added}" if query else added
    return query
