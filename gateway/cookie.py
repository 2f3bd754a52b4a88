"""The session cookie: what it carries, how it is signed, which keys verify it.

The value is an itsdangerous URL-safe token (HMAC-SHA256) over
``[user, principal, scheme, issued_at, expires_at]``.  Keys come in two kinds:

* Keys with an id (:class:`Key`, from a keys file, :mod:`gateway.keys`):
  the cookie value is ``ID.TOKEN``, the id picks the one key that verifies
  it, and the id is bound into the signature (it is in the salt).  The key
  that signs is the newest whose ``signs_from`` has come; a key not yet due
  already verifies, so a rotation is published before any gateway uses it.
* Keys without an id (``cookie.secret_files``, the embedded default's
  generated key): the value is ``TOKEN``; the first key signs (when no key
  with an id is configured), every key verifies.

The two spellings cannot be confused: an id is lower-case hex, and a token
starts with ``.`` or with ``Wy`` (the base64 of ``["``).

Anything that does not verify (tampered, signed by an unknown or retired key,
expired, malformed, or minted by a scheme no longer configured) decodes to
``None``: the client simply authenticates again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from itsdangerous import BadData, URLSafeSerializer

from gateway.config import read_secret

__all__ = ("CookieCodec", "Key", "KeyRing", "LiveKeys", "SessionToken")

_SALT = "authgateway.session-cookie.v1"
_SIGNER = {"digest_method": hashlib.sha256}
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


@dataclass(frozen=True, slots=True)
class Key:
    """A signing key with an id: it verifies from the moment it is known, and signs from ``signs_from``."""

    id: str
    secret: bytes = field(repr=False)
    created: int
    signs_from: int


def _serializer(secrets: Sequence[bytes], salt: str) -> URLSafeSerializer:
    # itsdangerous wants the keys oldest first and signs with the last one.
    return URLSafeSerializer(list(reversed(secrets)), salt=salt, signer_kwargs=_SIGNER)


class KeyRing:
    """The keys in force at one moment, never changed once built.

    ``keys``: secrets without an id, newest first.  ``named``: keys with an
    id, in any order.  At least one of either is required.
    """

    __slots__ = ("_by_id", "_legacy", "_schedule", "keys", "named")

    def __init__(self, keys: Sequence[bytes] = (), *, named: Sequence[Key] = ()) -> None:
        if not keys and not named:
            raise ValueError("a key ring needs at least one key")
        self.keys: tuple[bytes, ...] = tuple(keys)
        self.named: tuple[Key, ...] = tuple(sorted(named, key=lambda k: (k.signs_from, k.created), reverse=True))
        self._legacy = _serializer(self.keys, _SALT) if self.keys else None
        # The id is in the salt: a token verifies only under the id it was signed for.
        self._by_id = {k.id: (k, _serializer([k.secret], f"{_SALT}:{k.id}")) for k in self.named}
        self._schedule = tuple((k.signs_from, self._by_id[k.id]) for k in self.named)

    @classmethod
    def from_files(cls, paths: Sequence[str]) -> KeyRing:
        return cls([read_secret(p) for p in paths])

    def signing_key(self, now: float) -> Key | None:
        """The key with an id that signs at ``now``; ``None`` when the first key without an id signs."""
        for signs_from, (key, _) in self._schedule:
            if signs_from <= now:
                return key
        return None

    def secrets(self, now: float | None = None) -> tuple[bytes, ...]:
        """Every secret, the one that signs at ``now`` first (for other signatures that follow the ring)."""
        signing = self.signing_key(time.time() if now is None else now)
        first = [signing.secret] if signing is not None else list(self.keys[:1])
        rest = [k.secret for k in self.named if k is not signing] + list(self.keys)
        return tuple(dict.fromkeys(first + rest))

    def _signer(self, now: float) -> tuple[str, URLSafeSerializer]:
        for signs_from, (key, serializer) in self._schedule:
            if signs_from <= now:
                return key.id + ".", serializer
        if self._legacy is not None:
            return "", self._legacy
        # Only keys not yet due: the oldest of them signs rather than nothing.
        key, serializer = self._schedule[-1][1]
        return key.id + ".", serializer

    def _verifier(self, value: str) -> tuple[str, URLSafeSerializer] | None:
        kid, dot, rest = value.partition(".")
        if dot and kid in self._by_id:
            return rest, self._by_id[kid][1]
        if self._legacy is not None:
            return value, self._legacy
        return None


class LiveKeys:
    """The key ring in force: replaced whole when the keys change, never mutated.

    ``generation`` counts the replacements, so that what was verified with an
    older ring (a cache) can be forgotten.
    """

    __slots__ = ("generation", "ring")

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self.generation = 0

    def replace(self, ring: KeyRing) -> None:
        self.ring = ring
        self.generation += 1


class CookieCodec:
    """Encodes session tokens into cookie values and verifies them back, with the keys in force."""

    __slots__ = ("_schemes", "keys")

    def __init__(self, keys: KeyRing | LiveKeys, *, schemes: Collection[str]) -> None:
        self.keys = keys if isinstance(keys, LiveKeys) else LiveKeys(keys)
        self._schemes = frozenset(schemes)

    def encode(self, token: SessionToken, now: float | None = None) -> str:
        prefix, serializer = self.keys.ring._signer(time.time() if now is None else now)
        payload = [token.user, token.principal, token.scheme, token.issued_at, token.expires_at]
        value = serializer.dumps(payload)
        assert isinstance(value, str)
        return prefix + value

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
        verifier = self.keys.ring._verifier(value)
        if verifier is None:
            return None
        signed, serializer = verifier
        try:
            payload = serializer.loads(signed)
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
