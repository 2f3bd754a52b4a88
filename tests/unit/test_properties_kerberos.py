"""Properties of the ``Authorization: Negotiate`` reader (``authplugins/kerberos.py``).

For any ``Authorization`` headers the reader answers ``None`` (nothing for
this scheme), the decoded token, or :class:`AuthenticationError` with the
documented 401; a token sent as strict base64 under any spelling of the
scheme comes back unchanged.
"""

from __future__ import annotations

import base64
import binascii
from random import Random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from authplugins import AuthenticationError
from tests.unit.test_properties_simple import parsed_request, request_with

pytest.importorskip("gssapi")  # authplugins.kerberos needs it to import

from authplugins.kerberos import _negotiate_token

PROPERTY = settings(derandomize=True, deadline=None, max_examples=100)

NTLMSSP = b"NTLMSSP\x00"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

surrogates = st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF, categories=["Cs"])
any_char = st.one_of(st.characters(), surrogates)
any_text = st.text(any_char)


def _any_case(word: str) -> st.SearchStrategy[str]:
    flips = st.lists(st.booleans(), min_size=len(word), max_size=len(word))
    return flips.map(lambda up: "".join(c.upper() if u else c for c, u in zip(word, up)))


negotiate = _any_case("negotiate")
spaces = st.sampled_from([" ", "  ", "   "])
ows = st.sampled_from(["", " ", "\t", " \t "])  # around a field value; the HTTP parser drops it
tokens = st.binary(min_size=1, max_size=512).filter(lambda t: not t.startswith(NTLMSSP))
# Authorization values that are not for this scheme, by name.
others = st.sampled_from(
    [
        "Basic dXNlcjpwYXNz",
        "Bearer abc.def",
        'Digest username="bob", realm="x"',
        "NegotiateX YWJj",
        "Negotiat YWJj",
        "Kerberos YWJj",
        "negotiate\tYWJj",  # only SP separates a scheme from its credentials
        "NTLMv2 YWJj",
        "PseudoAuth",
        "",
    ]
)


def _head(values: list[str]) -> bytes:
    fields = "".join(f"Authorization: {v}\r\n" for v in values)
    return f"GET /webhdfs/v1/ HTTP/1.1\r\nHost: gateway\r\n{fields}\r\n".encode("ascii")


def _outcome(values: list[str] | None = None, *, head: bytes | None = None) -> bytes | None | AuthenticationError:
    if head is not None:
        request = parsed_request(head)
    else:
        request = request_with(headers=[("Authorization", v) for v in values or []])
    try:
        token = _negotiate_token(request)
    except AuthenticationError as exc:
        assert exc.status == 401, exc.status
        return exc
    assert token is None or (isinstance(token, bytes) and token and not token.startswith(NTLMSSP))
    return token


@PROPERTY
@given(tokens, negotiate, spaces, ows, ows, st.lists(others, max_size=3), st.integers(0, 3))
@example(b"\x60\x82", "Negotiate", " ", "", "", [], 0)
@example(b"\xa1" * 40_000, "NEGOTIATE", " ", " ", " ", ["Basic dXNlcjpwYXNz"], 1)
def test_token_round_trips(
    token: bytes, scheme: str, gap: str, lead: str, trail: str, rest: list[str], at: int
) -> None:
    value = f"{lead}{scheme}{gap}{base64.b64encode(token).decode('ascii')}{trail}"
    assert _outcome(head=_head([*rest[:at], value, *rest[at:]])) == token


@PROPERTY
@given(st.lists(others, max_size=4), st.lists(st.tuples(negotiate, tokens), max_size=3), st.booleans(), st.randoms())
def test_several_headers(rest: list[str], offered: list[tuple[str, bytes]], ntlm: bool, random: Random) -> None:
    values = rest + [f"{s} {base64.b64encode(t).decode('ascii')}" for s, t in offered]
    if ntlm:
        values.append("NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==")
    random.shuffle(values)
    result = _outcome(head=_head(values))
    if ntlm or len(offered) > 1:
        assert isinstance(result, AuthenticationError)
    elif offered:
        assert result == offered[0][1]
    else:
        assert result is None


def _strict_base64(credentials: str) -> bytes | None:
    """What the credentials carry as a token, by RFC 4648 alone; ``None`` when nothing usable."""
    try:
        token = base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return token if token and not token.startswith(NTLMSSP) else None


def _with_junk(token: bytes, junk: str, at: int) -> str:
    encoded = base64.b64encode(token).decode("ascii")
    return encoded[:at] + junk + encoded[at:]


credentials = st.one_of(
    st.text(st.sampled_from(B64 + "=-_ \t!,.\u00e9\udcff"), max_size=40),
    tokens.map(lambda t: base64.b64encode(t).decode("ascii")),
    st.builds(
        _with_junk,
        tokens,
        st.sampled_from(["!", "=", " ", ",", "-", "_", "\u00e9", "\udcff", "\x00", "\n"]),
        st.integers(0, 40),
    ),
    tokens.map(lambda t: base64.b64encode(NTLMSSP + t).decode("ascii")),
    any_text,
)


@PROPERTY
@given(negotiate, spaces, credentials)
@example("Negotiate", " ", "")
@example("Negotiate", " ", "YQ")  # padding missing
@example("Negotiate", " ", "YQ==YQ==")
@example("Negotiate", " ", "YW Jj")
@example("Negotiate", " ", "YWJj, Basic dXNlcjpwYXNz")
@example("Negotiate", " ", "YWJj\udcff")
@example("Negotiate", " ", "TlRMTVNTUAABAAAA")
@example("negotiate", " ", "-_-_")  # the URL-safe alphabet is not base64
@example("Negotiate", " ", "A" * 1_000_000)
def test_credentials_are_strict_base64(scheme: str, gap: str, text: str) -> None:
    expected = _strict_base64(text)
    result = _outcome([f"{scheme}{gap}{text}"])
    if expected is None:
        assert isinstance(result, AuthenticationError)
    else:
        assert result == expected


header_values = st.one_of(
    st.builds(lambda s, g, c: s + g + c, st.one_of(negotiate, _any_case("ntlm"), st.just("")), spaces, credentials),
    others,
    any_text,
)


@PROPERTY
@given(st.lists(header_values, max_size=3))
@example(["Negotiate YWJj", "Negotiate YWJj"])
@example(["Negotiate YWJj,Negotiate YWJj"])
@example(["\u00a0Negotiate YWJj\u00a0"])
@example(["N\u00e9gotiate YWJj"])
@example(["\udcffNegotiate YWJj"])
def test_any_headers_answer_as_documented(values: list[str]) -> None:
    result = _outcome(values)
    offers = [v.strip() for v in values if v.strip().lower().startswith(("negotiate", "ntlm"))]
    if result is None:
        assert not any(v.lower() == "negotiate" or v.lower().startswith("negotiate ") for v in offers)
    elif isinstance(result, bytes):
        assert [v for v in offers if v.lower().startswith("negotiate ")] != []


# Bytes the HTTP parser lets through in a field value: not UTF-8 arrives as surrogates.
field_bytes = st.binary(max_size=60).map(lambda b: bytes(c for c in b if c == 9 or 32 <= c != 127))


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from([b"", b"Negotiate ", b"negotiate  ", b"NTLM "]), field_bytes), max_size=3))
@example([(b"Negotiate ", b"\xff\xfe")])
@example([(b"Negotiate ", b"YWJj\xc3\xa9")])
def test_raw_header_bytes(fields: list[tuple[bytes, bytes]]) -> None:
    authorization = b"".join(b"Authorization: " + s + v + b"\r\n" for s, v in fields)
    head = b"GET / HTTP/1.1\r\nHost: gateway\r\n" + authorization + b"\r\n"
    _outcome(head=head)
