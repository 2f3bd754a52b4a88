from __future__ import annotations

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
