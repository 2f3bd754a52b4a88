"""gateway.handles: sealed grants that open only with the keys in force, for their purpose, until they expire."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.handles import Grant, Handles

NOW = 1_800_000_000
K1, K2 = b"1" * 32, b"2" * 32


def handles(*keys: bytes, purpose: str = "datanode", max_age: int = 300) -> Handles:
    return Handles(lambda: keys, purpose, max_age=max_age)


def seal(h: Handles, **kw: object) -> str:
    args: dict[str, object] = {"user": "knox", "effective": "bob", "method": "GET", "path": "/webhdfs/v1/a",
                               "op": "open", "hidden": ("http://dn1:9864", "/x?delegation=T"), "now": NOW, **kw}
    return h.seal(**args)  # type: ignore[arg-type]


def test_a_handle_opens_to_its_grant_and_shows_nothing() -> None:
    h = handles(K1)
    token = seal(h)
    assert h.open(token, NOW + 300) == Grant(
        "knox", "bob", "GET", "/webhdfs/v1/a", "OPEN", NOW + 300, ("http://dn1:9864", "/x?delegation=T"))
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for clear in (b"dn1", b"9864", b"delegation", b"knox", b"bob", b"webhdfs", b"OPEN"):
        assert clear not in raw
    assert token.isascii() and set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert seal(h) != token  # a fresh nonce each time


def test_a_handle_expires() -> None:
    h = handles(K1, max_age=60)
    token = seal(h)
    assert h.open(token, NOW + 60) is not None
    assert h.open(token, NOW + 61) is None


def test_a_handle_follows_the_keys_in_force() -> None:
    keys: tuple[bytes, ...] = (K1,)
    h = Handles(lambda: keys, "datanode")
    old = seal(h)
    keys = (K2, K1)  # rotated: the new key seals, the old one still opens
    new = seal(h)
    assert h.open(old, NOW) is not None and h.open(new, NOW) is not None
    assert handles(K2).open(new, NOW) is not None and handles(K2).open(old, NOW) is None
    keys = (K2,)  # retired
    assert h.open(old, NOW) is None and h.open(new, NOW) is not None


def test_a_handle_opens_for_its_purpose_only() -> None:
    token = seal(handles(K1, purpose="datanode"))
    assert handles(K1, purpose="upload").open(token, NOW) is None


def test_any_change_to_a_handle_closes_it() -> None:
    h = handles(K1)
    raw = bytearray(base64.urlsafe_b64decode(seal(h) + "=="))
    for i in range(len(raw)):
        changed = bytearray(raw)
        changed[i] ^= 0x01
        token = base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode()
        assert h.open(token, NOW) is None, i
    assert h.open(base64.urlsafe_b64encode(bytes(raw[:-1])).rstrip(b"=").decode(), NOW) is None


@pytest.mark.parametrize(("kw", "allowed"), [
    ({}, True),
    ({"op": "Open"}, True),  # WebHDFS reads op without case
    ({"op": None}, True),
    ({"user": "bob"}, False),
    ({"effective": "knox"}, False),
    ({"method": "PUT"}, False),
    ({"method": "get"}, False),
    ({"path": "/webhdfs/v1/b"}, False),
    ({"op": "DELETE"}, False),
])
def test_a_grant_covers_exactly_its_request(kw: dict[str, str | None], allowed: bool) -> None:
    grant = Grant("knox", "bob", "GET", "/webhdfs/v1/a", "OPEN", NOW)
    args: dict[str, str | None] = {"user": "knox", "effective": "bob", "method": "GET", "path": "/webhdfs/v1/a",
                                   "op": "OPEN", **kw}
    assert grant.allows(**args) is allowed  # type: ignore[arg-type]


def test_names_any_string_survive() -> None:
    h = handles(K1)
    odd = "b\udcffob \u00e9\n\"'"  # a surrogate-escaped byte, a line break, quotes
    grant = h.open(seal(h, user=odd, path="/a%20b/\u00e9"), NOW)
    assert grant is not None and grant.user == odd and grant.path == "/a%20b/\u00e9"


@given(st.text(max_size=300))
def test_anything_else_never_opens_nor_raises(text: str) -> None:
    assert handles(K1).open(text, NOW) is None


def test_a_handle_needs_a_purpose_and_a_lifetime() -> None:
    with pytest.raises(ValueError):
        Handles(lambda: (K1,), "")
    with pytest.raises(ValueError):
        Handles(lambda: (K1,), "datanode", max_age=0)
