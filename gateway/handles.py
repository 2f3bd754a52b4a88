"""Opaque handles: what a gateway URL lets its bearer do, sealed so only the gateways that share the keys read it.

A redirect the gateway hands out (a NameNode's redirect to a DataNode;
later the gateway's own upload redirects) must carry its authority without
showing the client anything that lies behind the gateway.  A handle is a
:class:`Grant` (who, acting as whom, which method and operation on which
path, until when, and what the gateway keeps to itself) encrypted and
authenticated with AES-256-GCM (``cryptography``'s ``AESGCM``), in
unpadded base64url::

    version (1 byte) | key id (4) | nonce (12) | ciphertext and tag

Its keys are derived (HKDF-SHA256) from the gateway's own rotating keys
(:meth:`gateway.cookie.KeyRing.secrets`), one per key and *purpose*, so a
handle for one purpose never opens as another's and is never anything else
that key signs.  The key that signs cookies seals; every key in force opens,
so a handle sealed by any worker or any gateway reading the same keys file
opens on every other, and stops opening once its key is retired.  The key
id picks the one key to try; the version, the key id and the purpose are
authenticated with the content.

:meth:`Handles.open` returns ``None`` for anything that does not open (not
a handle, an unknown or retired key, tampered, expired): the caller refuses
it.  Whether the grant covers the request in hand is :meth:`Grant.allows`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ("Grant", "Handles")

_VERSION = b"\x01"
_ID_BYTES = 4
_NONCE_BYTES = 12
_HEADER = len(_VERSION) + _ID_BYTES + _NONCE_BYTES
_MAX_TOKEN = 16 * 1024  # characters: a handle is a few hundred; anything longer is not one


@dataclass(frozen=True, slots=True)
class Grant:
    """What a handle allows: ``method`` with ``op`` on ``path``, by ``user`` acting as ``effective``,
    until ``expires`` (Unix time); ``hidden``: what the gateway keeps from the client (where the
    step goes), opaque to this module."""

    user: str
    effective: str
    method: str
    path: str
    op: str
    expires: int
    hidden: tuple[str, ...] = ()

    def allows(self, *, user: str, effective: str, method: str, path: str, op: str | None = None) -> bool:
        """Whether the grant covers this request (``op``: the operation it names, ``None`` for none;
        compared without case, as WebHDFS reads it); expiry is :meth:`Handles.open`'s to check."""
        return (
            user == self.user
            and effective == self.effective
            and method == self.method
            and path == self.path
            and (op is None or op.upper() == self.op)
        )


class Handles:
    """Seals and opens the handles of one ``purpose`` with the keys in force.

    ``keys`` returns the keys in force, the one that signs first (as
    :meth:`~gateway.cookie.KeyRing.secrets` does); they may change between
    calls (a rotation, a reload).  A handle lives ``max_age`` seconds.
    """

    __slots__ = ("_derived", "_keys", "_purpose", "max_age")

    def __init__(self, keys: Callable[[], Sequence[bytes]], purpose: str, *, max_age: int = 300) -> None:
        if not purpose or max_age <= 0:
            raise ValueError("a handle needs a purpose and a positive max_age")
        self._keys = keys
        self._purpose = purpose.encode("ascii")
        self.max_age = max_age
        self._derived: tuple[Sequence[bytes], tuple[tuple[bytes, AESGCM], ...]] = ((), ())

    def _ring(self) -> tuple[tuple[bytes, AESGCM], ...]:
        """``(key id, cipher)`` per key in force, the sealing one first; derived again only when the keys change."""
        keys = self._keys()
        if keys != self._derived[0]:
            ring = []
            for key in keys:
                derived = HKDF(
                    algorithm=hashes.SHA256(), length=32, salt=None, info=b"authgateway handle v1\0" + self._purpose
                ).derive(key)
                kid = hmac.new(derived, b"key id", hashlib.sha256).digest()[:_ID_BYTES]
                ring.append((kid, AESGCM(derived)))
            self._derived = (keys, tuple(ring))
        return self._derived[1]

    def _aad(self, header: bytes) -> bytes:
        return self._purpose + b"\0" + header[: len(_VERSION) + _ID_BYTES]

    def seal(
        self,
        *,
        user: str,
        effective: str,
        method: str,
        path: str,
        op: str,
        hidden: Sequence[str] = (),
        now: float | None = None,
    ) -> str:
        """A handle granting what the arguments say for :attr:`max_age` seconds from ``now``."""
        expires = int(time.time() if now is None else now) + self.max_age
        kid, cipher = self._ring()[0]
        header = _VERSION + kid + os.urandom(_NONCE_BYTES)
        doc = [user, effective, method, path, op.upper(), expires, list(hidden)]
        plain = json.dumps(doc, separators=(",", ":")).encode("ascii")  # ensure_ascii: any str survives
        sealed = cipher.encrypt(header[-_NONCE_BYTES:], plain, self._aad(header))
        return base64.urlsafe_b64encode(header + sealed).rstrip(b"=").decode("ascii")

    def open(self, token: str, now: float | None = None) -> Grant | None:
        """The grant ``token`` carries if it opens with a key in force and has not expired, else ``None``."""
        if len(token) > _MAX_TOKEN or not token.isascii():
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) <= _HEADER or raw[:1] != _VERSION:
            return None
        kid = raw[len(_VERSION) : len(_VERSION) + _ID_BYTES]
        cipher = next((c for k, c in self._ring() if hmac.compare_digest(k, kid)), None)
        if cipher is None:
            return None
        try:
            plain = cipher.decrypt(raw[len(_VERSION) + _ID_BYTES : _HEADER], raw[_HEADER:], self._aad(raw))
        except InvalidTag:
            return None
        user, effective, method, path, op, expires, hidden = json.loads(plain)  # ours: sealed, so well-formed
        if expires < (time.time() if now is None else now):
            return None
        return Grant(user, effective, method, path, op, expires, tuple(hidden))
