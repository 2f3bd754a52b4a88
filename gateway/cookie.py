"""The session cookie: what it carries, how it is signed, which keys verify it.

The value is an itsdangerous URL-safe token (HMAC-SHA256) over
``[user, principal, scheme, issued_at, expires_at]``.  A :class:`KeyRing`
holds the signing keys newest first: the newest signs, every key verifies,
so an operator rotates by prepending a key and dropping the oldest one after
the cookie validity has passed, without logging anyone out.

Anything that does not verify (tampered, signed by an unknown key, expired,
malformed, or minted by a scheme no longer configured) decodes to ``None``:
the client simply authenticates again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from itsdangerous import BadData, URLSafeSerializer

from gateway.config import read_secret

__all__ = ("CookieCodec", "KeyRing", "SessionToken")

_SALT = "authgateway.session-cookie.v1"
_SIGNATURE_CHARS = 43  # HMAC-SHA256 (32 bytes) in unpadded base64
# Base64 characters whose two low bits are zero, the only valid last ones.
_CANONICAL_LAST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[::4])


@dataclass(frozen=True, slots=True)
class SessionToken:
    """A verified session: who, as proven by which scheme, and until when."""

    user: str
    principal: str
    scheme: str
    issued_at: int
    expires_at: int

    def remaining(self, now: float) -> int:
        return max(0, int(self.expires_at - now))


class KeyRing:
    """Signing keys, newest first."""

    __slots__ = ("keys",)

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.keys: tuple[bytes, ...] = tuple(keys)

    @classmethod
    def from_files(cls, paths: Sequence[str]) -> KeyRing:
        return cls([read_secret(p) for p in paths])


class CookieCodec:
    """Encodes session tokens into cookie values and verifies them back."""

    __slots__ = ("_schemes", "_serializer")

    def __init__(self, keyring: KeyRing, *, schemes: Collection[str]) -> None:
        # itsdangerous wants the keys oldest first and signs with the last one.
        self._serializer = URLSafeSerializer(
            list(reversed(keyring.keys)),
            salt=_SALT,
            signer_kwargs={"digest_method": hashlib.sha256},
        )
        self._schemes = frozenset(schemes)

    def encode(self, token: SessionToken) -> str:
        payload = [token.user, token.principal, token.scheme, token.issued_at, token.expires_at]
        value = self._serializer.dumps(payload)
        assert isinstance(value, str)
        return value

    def decode(self, value: str, now: float | None = None) -> SessionToken | None:
        """The token in ``value`` if it verifies and has not expired, else ``None``."""
        if len(value) >= 2 and value[0] == value[-1] == '"':  # hadoop-auth quotes its values
            value = value[1:-1]
        if not value.isascii():  # header bytes that are not UTF-8 arrive as surrogates
            return None
        # A 32-byte HMAC in unpadded base64 leaves 2 unused bits in the last
        # character, which itsdangerous ignores: accept only the one canonical
        # spelling, so a token has exactly one cookie value.
        signature = value.rpartition(".")[2]
        if len(signature) != _SIGNATURE_CHARS or signature[-1] not in _CANONICAL_LAST:
            return None
        try:
            payload = self._serializer.loads(value)
        except BadData:
            return None
        try:
            user, principal, scheme, issued_at, expires_at = payload
        except (TypeError, ValueError):
            return None
        if not (
            isinstance(user, str)
            and isinstance(principal, str)
            and isinstance(scheme, str)
            and type(issued_at) is int
            and type(expires_at) is int
        ):
            return None
        if scheme not in self._schemes:
            return None
        if expires_at <= (time.time() if now is None else now):
            return None
        return SessionToken(user, principal, scheme, issued_at, expires_at)
