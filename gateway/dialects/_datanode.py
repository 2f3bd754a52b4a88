"""Signed redirects to data nodes, as Apache Knox does them.

A WebHDFS NameNode answers data operations (OPEN, CREATE, APPEND) with a
redirect to a DataNode.  The client must not learn that address nor reach it
around the gateway, so the redirect becomes a gateway URL that carries the
target, its expiry and an HMAC over both and the user it was made for.  The
gateway proxies the data step only when that signature verifies for the
authenticated user and the target's ``host:port`` matches one of the route's
data-node patterns; anything else is refused, never followed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence

from authplugins.query import encode_param, iter_params, rewrite_query

__all__ = ("DataNodeRedirects", "SIGNED_PARAMS")

_NODE, _EXPIRES, _SIG = "authgateway.dn", "authgateway.exp", "authgateway.sig"
SIGNED_PARAMS = frozenset({_NODE, _EXPIRES, _SIG})


class DataNodeRedirects:
    """Signs and verifies data-node targets for one route."""

    __slots__ = ("_derived", "_keys", "_max_age", "_patterns")

    def __init__(
        self, keys: bytes | Callable[[], Sequence[bytes]], patterns: Sequence[str], *, max_age: int = 300
    ) -> None:
        """``keys``: one key, or what returns the keys in force, the one that signs first (they may rotate)."""
        if not patterns:
            raise ValueError("at least one data-node pattern is required")
        self._keys: Callable[[], Sequence[bytes]] = (lambda: (keys,)) if isinstance(keys, bytes) else keys
        self._derived: tuple[Sequence[bytes], tuple[bytes, ...]] = ((), ())
        self._patterns = tuple(p.lower() for p in patterns)
        self._max_age = max_age

    def _macs(self) -> tuple[bytes, ...]:
        """The redirect keys of the keys in force, the signing one first."""
        keys = self._keys()
        if keys != self._derived[0]:
            # A key of its own per key, so a redirect signature is never also something else's.
            derived = tuple(hmac.new(k, b"authgateway datanode redirect", hashlib.sha256).digest() for k in keys)
            self._derived = (keys, derived)
        return self._derived[1]

    def allowed(self, node: str) -> bool:
        """Whether ``node`` (``host:port``) matches a data-node pattern."""
        return any(fnmatch.fnmatchcase(node.lower(), p) for p in self._patterns)

    @staticmethod
    def _mac(key: bytes, user: str, scheme_node: str, expires: str, target: str) -> str:
        msg = "\n".join((user, scheme_node, expires, target)).encode("utf-8", "surrogateescape")
        return hmac.new(key, msg, hashlib.sha256).hexdigest()

    def sign(self, user: str, scheme_node: str, target: str, now: float | None = None) -> str:
        """``target`` (the data node's raw path and query) with the signed parameters added."""
        expires = str(int(time.time() if now is None else now) + self._max_age)
        extra = "&".join(
            encode_param(n, v)
            for n, v in ((_NODE, scheme_node), (_EXPIRES, expires), (_SIG, self._mac(self._macs()[0], user, scheme_node, expires, target)))
        )
        return f"{target}{'&' if '?' in target else '?'}{extra}"

    @staticmethod
    def is_signed(raw_target: str) -> bool:
        """Whether ``raw_target`` carries signed-redirect parameters (valid or not)."""
        return any(name in SIGNED_PARAMS for _, name, _ in iter_params(raw_target.partition("?")[2]))

    def verify(self, user: str, raw_target: str, now: float | None = None) -> tuple[str, str] | None:
        """``(scheme://host:port, target)`` of a data step signed for ``user``, or ``None``."""
        path, _, query = raw_target.partition("?")
        values: dict[str, list[str]] = {}
        for _, name, value in iter_params(query):
            if name in SIGNED_PARAMS:
                values.setdefault(name, []).append(value)
        if any(len(values.get(n, ())) != 1 for n in SIGNED_PARAMS):
            return None
        (node,), (expires,), (sig,) = values[_NODE], values[_EXPIRES], values[_SIG]
        rest = rewrite_query(query, SIGNED_PARAMS)
        target = f"{path}?{rest}" if rest else path
        if not expires.isascii() or not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return None
        if not sig.isascii() or not any(
            hmac.compare_digest(sig, self._mac(key, user, node, expires, target)) for key in self._macs()
        ):
            return None
        scheme, sep, host_port = node.partition("://")
        if not sep or scheme not in ("http", "https") or not self.allowed(host_port):
            return None
        return node, target
