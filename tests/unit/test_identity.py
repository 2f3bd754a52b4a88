from __future__ import annotations

import hashlib
import hmac

import pytest

from gateway.identity import IdentitySigner

KEY = b"k" * 32
NOW = 1_800_000_000.0


def test_signature_binds_user_method_and_target() -> None:
    signer = IdentitySigner(KEY)
    sig = signer.sign("bob", "GET", "/a?op=list&user.name=bob", now=NOW)
    assert signer.verify(sig, "bob", "GET", "/a?op=list&user.name=bob", now=NOW + 1)
    assert not signer.verify(sig, "root", "GET", "/a?op=list&user.name=bob", now=NOW + 1)
    assert not signer.verify(sig, "bob", "DELETE", "/a?op=list&user.name=bob", now=NOW + 1)
    assert not signer.verify(sig, "bob", "GET", "/b?op=list&user.name=bob", now=NOW + 1)
    assert not IdentitySigner(b"o" * 32).verify(sig, "bob", "GET", "/a?op=list&user.name=bob", now=NOW)


def test_signature_expires() -> None:
    signer = IdentitySigner(KEY, max_age=300)
    sig = signer.sign("bob", "GET", "/", now=NOW)
    assert signer.verify(sig, "bob", "GET", "/", now=NOW + 299)
    assert not signer.verify(sig, "bob", "GET", "/", now=NOW + 301)
    assert not signer.verify(sig, "bob", "GET", "/", now=NOW - 60)


@pytest.mark.parametrize("sig", ["", "abc", "1:2", ":" + "0" * 64, "x:" + "0" * 64, "1800000000:" + "0" * 64])
def test_malformed_signatures_fail(sig: str) -> None:
    assert not IdentitySigner(KEY).verify(sig, "bob", "GET", "/", now=NOW)


def test_short_key_refused() -> None:
    with pytest.raises(ValueError):
        IdentitySigner(b"short")


# -- near misses: what a weakened check would let through --------------------------


def _known_mac(*fields: bytes) -> str:
    return hmac.new(KEY, b"\n".join(fields), hashlib.sha256).hexdigest()


def test_signature_format_is_fixed() -> None:
    # The gateway and a separately run `authgateway embedded` must agree on
    # the bytes under the MAC: time, user, method, target, one per line.
    sig = IdentitySigner(KEY).sign("bob", "GET", "/a?op=list", now=NOW + 0.9)
    assert sig == "1800000000:" + _known_mac(b"1800000000", b"bob", b"GET", b"/a?op=list")


def test_a_target_that_is_not_utf8_is_signed_byte_for_byte() -> None:
    # aiohttp hands undecodable target bytes over as surrogates.
    signer = IdentitySigner(KEY)
    target = b"/caf\xe9?op=open".decode("utf-8", "surrogateescape")
    sig = signer.sign("bob", "GET", target, now=NOW)
    assert sig == "1800000000:" + _known_mac(b"1800000000", b"bob", b"GET", b"/caf\xe9?op=open")
    assert signer.verify(sig, "bob", "GET", target, now=NOW)
    assert not signer.verify(sig, "bob", "GET", "/caf\u00e9?op=open", now=NOW)


@pytest.mark.parametrize("position", [0, 7, 8, 32, 62, 63])
def test_a_mac_wrong_in_one_character_is_refused(position: int) -> None:
    # Catches a comparison of a prefix only (the first 8 characters, say).
    signer = IdentitySigner(KEY)
    stamp, _, mac = signer.sign("bob", "GET", "/", now=NOW).partition(":")
    wrong = mac[:position] + ("0" if mac[position] != "0" else "1") + mac[position + 1 :]
    assert not signer.verify(f"{stamp}:{wrong}", "bob", "GET", "/", now=NOW)
    assert signer.verify(f"{stamp}:{mac}", "bob", "GET", "/", now=NOW)


def test_a_mac_for_another_time_is_refused() -> None:
    signer = IdentitySigner(KEY)
    _, _, mac = signer.sign("bob", "GET", "/", now=NOW).partition(":")
    assert not signer.verify(f"1800000001:{mac}", "bob", "GET", "/", now=NOW + 1)


def test_default_max_age_is_300_seconds_inclusive() -> None:
    signer = IdentitySigner(KEY)
    sig = signer.sign("bob", "GET", "/", now=NOW)
    assert signer.verify(sig, "bob", "GET", "/", now=NOW + 300)
    assert not signer.verify(sig, "bob", "GET", "/", now=NOW + 300.5)


def test_max_age_is_inclusive() -> None:
    signer = IdentitySigner(KEY, max_age=10)
    sig = signer.sign("bob", "GET", "/", now=NOW)
    assert signer.verify(sig, "bob", "GET", "/", now=NOW + 10)
    assert not signer.verify(sig, "bob", "GET", "/", now=NOW + 10.5)


def test_clock_skew_of_30_seconds_is_allowed_and_no_more() -> None:
    signer = IdentitySigner(KEY)
    sig = signer.sign("bob", "GET", "/", now=NOW)
    assert signer.verify(sig, "bob", "GET", "/", now=NOW - 30)
    assert not signer.verify(sig, "bob", "GET", "/", now=NOW - 30.5)


def test_key_length_boundary_and_message() -> None:
    IdentitySigner(b"k" * 32)
    with pytest.raises(ValueError, match=r"^identity key must be at least 32 bytes$"):
        IdentitySigner(b"k" * 31)


# Found by mutation testing: a forged header sent straight to the embedded
# backend made verify() raise, a 500, where it must answer False (401).
def test_a_stamp_of_other_unicode_digits_is_refused() -> None:
    assert not IdentitySigner(KEY).verify("\u00b2:" + "0" * 64, "bob", "GET", "/", now=NOW)


def test_a_non_ascii_mac_is_refused() -> None:
    assert not IdentitySigner(KEY).verify("1800000000:" + "\u00e9" * 64, "bob", "GET", "/", now=NOW)
