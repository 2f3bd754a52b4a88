"""Replacing the backend's origin in a streamed body, in bounded memory."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ("OriginReplacer",)


class OriginReplacer:
    """Replaces ``scheme://host:port`` of some origins (one, or a list) by another in a byte stream.

    JSON's escaped form (``http:\\/\\/host:port``) is replaced too, by the
    escaped replacement.  An origin followed by a further host or port
    character is a different origin and is left alone.  At most the length of the longest
    match (plus one byte) is held back between chunks.  A fresh instance
    serves one body.
    """

    __slots__ = ("_carry", "_hold", "_pattern", "_plain", "_escaped")

    def __init__(self, origin: str | Sequence[str], replacement: str) -> None:
        origins = [origin] if isinstance(origin, str) else list(origin)
        plain = [o.encode() for o in origins]
        escaped = [o.replace("/", "\\/").encode() for o in origins]
        # The lookahead below keeps one origin from matching inside a longer one, whatever the order.
        alternatives = sorted(plain, key=len, reverse=True), sorted(escaped, key=len, reverse=True)
        self._pattern = re.compile(
            b"(?:(" + b"|".join(map(re.escape, alternatives[0])) + b")|("
            + b"|".join(map(re.escape, alternatives[1])) + b"))(?![\\w.:-])",
            re.IGNORECASE,
        )
        self._plain = replacement.encode()
        self._escaped = replacement.replace("/", "\\/").encode()
        # A match that starts this far from the end is whole and has a byte after it.
        self._hold = max(map(len, escaped)) + 1
        self._carry = b""

    def _replace(self, match: re.Match[bytes]) -> bytes:
        return self._plain if match.group(1) is not None else self._escaped

    def feed(self, chunk: bytes) -> bytes:
        buf = self._carry + chunk
        keep_from = max(0, len(buf) - self._hold)
        out: list[bytes] = []
        pos = 0
        for match in self._pattern.finditer(buf):
            if match.start() >= keep_from:
                break
            out.append(buf[pos : match.start()])
            out.append(self._replace(match))
            pos = match.end()
        cut = max(pos, keep_from)
        out.append(buf[pos:cut])
        self._carry = buf[cut:]
        return b"".join(out)

    def finish(self) -> bytes:
        rest, self._carry = self._carry, b""
        return self._pattern.sub(self._replace, rest)
