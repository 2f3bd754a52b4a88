"""Properties of the session-cookie codec (``gateway/cookie.py``).

Whatever a client sends as ``hadoop.auth`` decodes to ``None`` or to a
:class:`SessionToken`, never to an exception; only a value signed by a key of
the ring, unchanged, unexpired and minted by a configured scheme decodes to a
token, and then to exactly the token that was encoded.
"""

from __future__ import annotations

import hashlib
import string
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from gateway.cookie import _SALT, CookieCodec, KeyRing, SessionToken

PROPERTY = settings(derandomize=True, deadline=None, max_examples=100)

NOW = 1_800_000_000
KEY = b"k" * 32
OTHER = b"o" * 32
SCHEMES = ("simple", "kerberos")
CODEC = CookieCodec(KeyRing([KEY]), schemes=SCHEMES)
B64URL = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"

# Header bytes that are not UTF-8 reach the gateway as these (surrogateescape).
surrogates = st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF, categories=["Cs"])
any_text = st.text(st.one_of(st.characters(), surrogates))
# Text that looks like a signed value: the alphabet, dots and quotes.
tokenish = st.text(st.sampled_from(B64URL + '."='), max_size=120)

tokens = st.builds(
    SessionToken,
    user=st.text(),
    principal=st.text(),
    scheme=st.sampled_from(SCHEMES),
    issued_at=st.integers(),
    expires_at=st.integers(min_value=NOW + 1),
)


def decodes_to_nothing_or_token(value: str, codec: CookieCodec = CODEC) -> SessionToken | None:
    result = codec.decode(value, now=NOW)
    assert result is None or isinstance(result, SessionToken)
    return result


@PROPERTY
@given(st.one_of(any_text, tokenish))
@example("")
@example('"')
@example('""')
@example("\udcff")
@example('"\udcff"')
@example(".")
@example("..")
@example("." * 1000)
@example("A" * 100_000)
@example('"' + "é" * 100_000 + '"')
def test_any_text_decodes_to_none(value: str) -> None:
    # Nothing unsigned verifies, and nothing at all raises.
    assert decodes_to_nothing_or_token(value) is None


def _signed_by_key(payload: Any) -> str:
    # What a holder of the key could sign: a payload of any JSON shape.  The
    # salt is the codec's own, so only the payload differs from a real cookie.
    serializer = URLSafeSerializer(KEY, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})
    value = serializer.dumps(payload)
    assert isinstance(value, str)
    return value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(), children, max_size=6),
    max_leaves=12,
)
# Five fields of every type, so that the shape check is what decides.
near_payloads = st.lists(
    st.one_of(st.text(), st.sampled_from(SCHEMES), st.integers(), st.booleans(), st.floats(), st.none()),
    min_size=4,
    max_size=6,
)


@PROPERTY
@given(st.one_of(json_values, near_payloads))
@example(["bob", "bob", "simple", 0, NOW + 1])
@example(["bob", "bob", "simple", True, NOW + 1])
@example(["bob", "bob", "simple", 0, float(NOW + 1)])
@example(["bob", "bob", "other", 0, NOW + 1])
@example(["bob", "bob", "simple", 0, NOW])
@example({"user": "bob", "principal": "bob", "scheme": "simple", "issued_at": 0, "expires_at": NOW + 1})
@example("abcde")
@example(["a" * 5000, "b", "simple", 0, NOW + 1])  # long enough for the compressed form
def test_signed_payload_of_any_shape(payload: Any) -> None:
    result = decodes_to_nothing_or_token(_signed_by_key(payload))
    well_formed = (
        isinstance(payload, list)
        and len(payload) == 5
        and all(isinstance(field, str) for field in payload[:3])
        and all(type(field) is int for field in payload[3:])
        and payload[2] in SCHEMES
        and payload[4] > NOW
    )
    if well_formed:
        assert result == SessionToken(*payload)
    else:
        assert result is None


@PROPERTY
@given(tokens)
@example(SessionToken("", "", "simple", 0, NOW + 1))
@example(SessionToken('"', '"', "kerberos", -(2**70), 2**70))
@example(SessionToken("b\u00f6b", "\U0001f600@EXAMPLE.COM", "kerberos", NOW, NOW + 1))
def test_round_trip(token: SessionToken) -> None:
    value = CODEC.encode(token)
    assert all(c in B64URL + "." for c in value)  # safe in a cookie unquoted
    assert CODEC.decode(value, now=NOW) == token
    assert CODEC.decode(f'"{value}"', now=NOW) == token


@PROPERTY
@given(tokens, st.one_of(st.integers(-3, 3), st.floats(-2, 2, allow_nan=False)))
def test_expiry_boundary(token: SessionToken, offset: float) -> None:
    now = token.expires_at + offset
    decoded = CODEC.decode(CODEC.encode(token), now=now)
    assert decoded == (None if token.expires_at <= now else token)


def test_expiry_boundary_examples() -> None:
    token = SessionToken("bob", "bob", "simple", NOW - 10, NOW)
    value = CODEC.encode(token)
    assert CODEC.decode(value, now=NOW) is None
    assert CODEC.decode(value, now=NOW - 0.001) == token
    assert CODEC.decode(value, now=NOW + 1) is None


@PROPERTY
@given(tokens)
def test_only_keys_of_the_ring_verify(token: SessionToken) -> None:
    foreign = CookieCodec(KeyRing([OTHER]), schemes=SCHEMES).encode(token)
    assert CODEC.decode(foreign, now=NOW) is None
    rotated = CookieCodec(KeyRing([OTHER, KEY]), schemes=SCHEMES)
    assert rotated.decode(foreign, now=NOW) == token
    assert rotated.decode(CODEC.encode(token), now=NOW) == token
    assert CODEC.decode(rotated.encode(token), now=NOW) is None


@PROPERTY
@given(tokens, st.text(min_size=1), st.frozensets(st.text(), max_size=3))
def test_unconfigured_scheme_decodes_to_none(token: SessionToken, scheme: str, configured: frozenset[str]) -> None:
    minted = SessionToken(token.user, token.principal, scheme, token.issued_at, token.expires_at)
    value = CookieCodec(KeyRing([KEY]), schemes={scheme}).encode(minted)
    assert CookieCodec(KeyRing([KEY]), schemes=configured - {scheme}).decode(value, now=NOW) is None


@PROPERTY
@given(tokens, st.data())
def test_truncated_value_decodes_to_none(token: SessionToken, data: st.DataObject) -> None:
    value = CODEC.encode(token)
    cut = data.draw(st.integers(0, len(value) - 1), label="cut")
    assert decodes_to_nothing_or_token(value[:cut]) is None
    assert decodes_to_nothing_or_token(f'"{value[:cut]}"') is None


replacements = st.one_of(st.sampled_from(B64URL + '.="= \t;,'), st.characters(), surrogates)


@PROPERTY
@given(tokens, st.data())
def test_changed_character_decodes_to_none(token: SessionToken, data: st.DataObject) -> None:
    # Every position but the last; the last one is the subject of the next test.
    value = CODEC.encode(token)
    at = data.draw(st.integers(0, len(value) - 2), label="at")
    new = data.draw(replacements.filter(lambda c: c != value[at]), label="new")
    assert decodes_to_nothing_or_token(value[:at] + new + value[at + 1 :]) is None


@settings(PROPERTY, max_examples=20)
@given(tokens)
@example(SessionToken("bob", "bob", "simple", 0, NOW + 600))
def test_changed_last_character_decodes_to_none(token: SessionToken) -> None:
    value = CODEC.encode(token)
    flipped = B64URL[B64URL.index(value[-1]) ^ 1]  # same top 4 bits, other unused bits
    assert decodes_to_nothing_or_token(value[:-1] + flipped) is None
