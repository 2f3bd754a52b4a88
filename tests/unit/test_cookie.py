from __future__ import annotations

import time

import pytest

from gateway.cookie import CookieCodec, KeyRing, SessionToken

OLD = b"o" * 40
NEW = b"n" * 40
FOREIGN = b"f" * 40


def token(expires_in: int = 600, scheme: str = "simple") -> SessionToken:
    now = int(time.time())
    return SessionToken("bob", "bob@EXAMPLE.COM", scheme, now, now + expires_in)


def codec(*keys: bytes, schemes: tuple[str, ...] = ("simple", "kerberos")) -> CookieCodec:
    return CookieCodec(KeyRing(keys), schemes=schemes)


def test_round_trip_carries_every_field() -> None:
    t = token()
    assert codec(NEW).decode(codec(NEW).encode(t)) == t


def test_value_is_cookie_safe() -> None:
    value = codec(NEW).encode(token())
    assert all(c.isalnum() or c in "-_." for c in value)


def test_quoted_value_is_accepted() -> None:
    t = token()
    assert codec(NEW).decode('"' + codec(NEW).encode(t) + '"') == t


def test_rotation_old_cookies_verify_new_key_signs() -> None:
    before = codec(OLD).encode(token())
    rotated = codec(NEW, OLD)
    assert rotated.decode(before) is not None
    after = rotated.encode(token())
    assert codec(NEW).decode(after) is not None
    assert codec(OLD).decode(after) is None


def test_dropped_key_logs_out() -> None:
    assert codec(NEW).decode(codec(OLD).encode(token())) is None


def test_foreign_key_is_ignored() -> None:
    assert codec(NEW, OLD).decode(codec(FOREIGN).encode(token())) is None


def test_expired_is_ignored() -> None:
    c = codec(NEW)
    value = c.encode(token(expires_in=60))
    assert c.decode(value, now=time.time() + 59) is not None
    assert c.decode(value, now=time.time() + 61) is None


def test_scheme_no_longer_configured_is_ignored() -> None:
    value = codec(NEW).encode(token(scheme="kerberos"))
    assert codec(NEW, schemes=("simple",)).decode(value) is None


@pytest.mark.parametrize("mangle", [lambda v: v[:-1], lambda v: v + "A", lambda v: "x" + v, lambda v: v.replace(".", "", 1)])
def test_tampered_is_ignored(mangle: object) -> None:
    value = codec(NEW).encode(token())
    assert callable(mangle)
    assert codec(NEW).decode(mangle(value)) is None


@pytest.mark.parametrize("value", ["", '"', "garbage", "u=bob&p=bob&t=simple&e=9999999999999&s=abc", "a.b.c"])
def test_garbage_is_ignored(value: str) -> None:
    assert codec(NEW).decode(value) is None


def test_well_signed_but_wrong_shape_is_ignored() -> None:
    from itsdangerous import URLSafeSerializer
    import hashlib

    s = URLSafeSerializer([NEW], salt="authgateway.session-cookie.v1", signer_kwargs={"digest_method": hashlib.sha256})
    assert codec(NEW).decode(s.dumps(["bob", "bob", "simple", "1", "2"])) is None
    assert codec(NEW).decode(s.dumps({"user": "bob"})) is None


def test_keyring_needs_a_key() -> None:
    with pytest.raises(ValueError):
        KeyRing([])
