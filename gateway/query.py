"""Query strings as the backends may read them, for lookup and scrubbing.

Backends disagree on what separates parameters and how names are spelled, so
for anything that touches identity we take the widest reading: ``&`` and
``;`` both separate, names are percent- and ``+``-decoded and compared case
insensitively.  Pairs we keep are forwarded exactly as the client wrote them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator
from urllib.parse import quote, unquote_plus

__all__ = ("encode_param", "iter_params", "param_values", "rewrite_query")

_SEPARATORS = re.compile(r"[&;]")


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

    ``drop`` must hold lower-case names.  Kept pairs are not re-encoded.
    """
    kept = [pair for pair, name, _ in iter_params(raw_query) if name not in drop]
    kept.extend(encode_param(n, v) for n, v in append)
    return "&".join(kept)
