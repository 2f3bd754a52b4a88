"""The signed identity the gateway hands to a backend that must trust it.

The gateway sends the authenticated user in the identity header and, next to
it, ``X-Authgateway-Signature: <unix-time>:<hex HMAC-SHA256>``.  The MAC covers
the time, the user, the method and the raw request target (path and query),
so a captured signature is good for that one request line for
``max_age`` seconds and for nothing else.  The embedded backend refuses every
request without a valid signature, so a client that reaches its port
directly gets 401.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ("SIGNATURE_HEADER", "IdentitySigner")

SIGNATURE_HEADER = "X-Authgateway-Signature"


class IdentitySigner:
    """Signs (gateway side) and verifies (backend side) forwarded identities."""

    __slots__ = ("_keyed", "max_age")

    def __init__(self, key: bytes, *, max_age: float = 300.0) -> None:
        if len(key) < 32:
            raise ValueError("identity key must be at least 32 bytes")
        # Keyed once; each MAC copies it (2.2 us instead of 5.2 for a new HMAC).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self.max_age = max_age

    def _mac(self, stamp: str, user: str, method: str, target: str) -> str:
        mac = self._keyed.copy()
        mac.update("\n".join((stamp, user, method, target)).encode("utf-8", "surrogateescape"))
        return mac.hexdigest()

    def sign(self, user: str, method: str, target: str, now: float | None = None) -> str:
        """Return the signature header value for this request line."""
        stamp = str(int(time.time() if now is None else now))
        return f"{stamp}:{self._mac(stamp, user, method, target)}"

    def verify(self, signature: str, user: str, method: str, target: str, now: float | None = None) -> bool:
        """True when ``signature`` was made by :meth:`sign` for exactly this request, recently."""
        stamp, sep, mac = signature.partition(":")
        # ASCII first: isdigit() takes "²" and compare_digest refuses non-ASCII text.
        if not sep or not signature.isascii() or not stamp.isdigit() or len(mac) != 64:
            return False
        age = (time.time() if now is None else now) - int(stamp)
        if not -30.0 <= age <= self.max_age:  # allow a little clock skew between hosts
            return False
        return hmac.compare_digest(mac, self._mac(stamp, user, method, target))
