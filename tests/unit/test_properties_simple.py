"""Properties of pseudo authentication (``authplugins/simple.py``).

``check_user_name`` accepts exactly the documented grammar.  ``SimpleScheme``
reads ``user.name`` as the gateway's query reader does, on requests made by
aiohttp's own HTTP parser: one distinct value authenticates as that value
when it is acceptable, several distinct values or an unacceptable one are a
400, none is a challenge; nothing else is ever raised.
"""

from __future__ import annotations

import asyncio
import string
from unittest import mock

from aiohttp import web
from aiohttp.http_parser import HttpRequestParser, RawRequestMessage
from aiohttp.streams import StreamReader
from hypothesis import example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from authplugins import Authenticated, AuthenticationError, Challenge
from authplugins.query import param_values
from authplugins.simple import (
    ANONYMOUS,
    MAX_USER_NAME,
    SimpleOptions,
    SimpleScheme,
    check_user_name,
)

PROPERTY = settings(derandomize=True, deadline=None, max_examples=100)

surrogates = st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF, categories=["Cs"])
any_char = st.one_of(st.characters(), surrogates)
any_text = st.text(any_char)

# --- requests as the server builds them -------------------------------------

MAX_FIELD = 2**16  # the gateway accepts 64 KiB header fields, as Hadoop's servers do


def _parse(head: bytes) -> tuple[RawRequestMessage, StreamReader]:
    parser = HttpRequestParser(mock.Mock(), mock.Mock(), MAX_FIELD, max_line_size=MAX_FIELD, max_field_size=MAX_FIELD)
    messages, _, _ = parser.feed_data(head)
    ((message, payload),) = messages
    return message, payload


def _request(message: RawRequestMessage, payload: StreamReader) -> web.Request:
    protocol = mock.Mock(ssl_context=None, peername=("127.0.0.1", 40000), sockname=("127.0.0.1", 14000))
    return web.Request(message, payload, protocol, mock.Mock(), mock.Mock(), mock.Mock())


def parsed_request(head: bytes) -> web.Request:
    """The request aiohttp's server makes of the request head ``head``, with its own parser."""
    return _request(*_parse(head))


def request_with(*, query: str | None = None, headers: list[tuple[str, str]] | None = None) -> web.Request:
    """A parsed request whose raw query string or headers are then replaced by any text.

    The server's parser hands over only what it accepts (printable ASCII in
    the target, no control characters in header values); this reaches past
    it, e.g. to text its pure-Python fallback or a later version could pass.
    """
    message, payload = _parse(b"GET /webhdfs/v1/ HTTP/1.1\r\nHost: gateway\r\n\r\n")
    if query is not None:
        message = message._replace(url=URL.build(path="/webhdfs/v1/", query_string=query, encoded=True))
    if headers is not None:
        message = message._replace(headers=CIMultiDictProxy(CIMultiDict(headers)))
    return _request(message, payload)


# --- the user-name grammar ---------------------------------------------------

_FIRST = set(string.ascii_letters + "_")
_REST = _FIRST | set(string.digits + ".-")


def _in_grammar(name: str) -> bool:
    """``[A-Za-z_][A-Za-z0-9._-]*\\$?``, at most 64 characters, written without a regex."""
    body = name.removesuffix("$")
    return 0 < len(name) <= MAX_USER_NAME and body[:1] in _FIRST and all(c in _REST for c in body[1:])


valid_users = st.from_regex(r"[A-Za-z_][A-Za-z0-9._-]{0,62}\$?", fullmatch=True)
# Characters that look like they might belong: non-ASCII letters and digits,
# case-folding oddities, separators, line ends, surrogates.
lookalikes = st.sampled_from(
    ["$", "$$", "\n", " ", "\t", "/", "@", "%", "+", "\x00", "\udcff"]
    + ["\u00e9", "\u0663", "\u01c5", "\u212a", "\u0130", "\uff41"]  # é, ٣, ǅ, KELVIN SIGN, İ, ａ
)


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    name = draw(valid_users)
    at = draw(st.integers(0, len(name)))
    cut = draw(st.integers(0, 1))
    return name[:at] + draw(lookalikes) + name[at + cut :]


lengths = st.integers(MAX_USER_NAME - 2, MAX_USER_NAME + 2).map(lambda n: "a" * n)


@PROPERTY
@given(st.one_of(valid_users, near_misses(), lengths, any_text))
@example("")
@example("$")
@example("a$")
@example("a$$")
@example("1bob")
@example("bob\n")
@example("\u212aelvin")  # KELVIN SIGN: a letter only under IGNORECASE
@example("b\u0663")  # an Arabic-Indic digit
@example("x" * MAX_USER_NAME)
@example("x" * (MAX_USER_NAME - 1) + "$")
@example("x" * MAX_USER_NAME + "$")
@example("x" * 100_000)
def test_check_user_name_is_the_grammar(name: str) -> None:
    problem = check_user_name(name)
    if _in_grammar(name):
        assert problem is None
    else:
        assert isinstance(problem, str) and problem


# --- SimpleScheme on parsed requests -----------------------------------------


def _outcome(scheme: SimpleScheme, request: web.Request) -> Authenticated | Challenge | AuthenticationError:
    try:
        return asyncio.run(scheme.authenticate(request))
    except AuthenticationError as exc:
        return exc


# Spellings that the gateway's reader folds to user.name, and ones it does not.
user_param = st.sampled_from(
    ["user.name", "USER.NAME", "User.Name", "user%2Ename", "user%2eNAME", "%75ser.name", "%55SER%2ENAME"]
    + ["user.name%20", "%20user.name", "+user.name", "user.name+"]
)
other_param = st.sampled_from(
    ["op", "doas", "user.name2", "username", "user+name", "user_name", "user%2Fname", "%zz", "", "u"]
)
# (as written in the target, as decoded)
spelled_values = st.one_of(
    st.sampled_from(
        [
            ("bob", "bob"),
            ("b%6Fb", "bob"),
            ("BOB", "BOB"),
            ("alice", "alice"),
            ("svc%24", "svc$"),
            ("host$", "host$"),
            ("x+y", "x y"),
            ("a%2Bb", "a+b"),
            ("%C3%A9", "\u00e9"),
            ("", ""),
            ("%zz", "%zz"),
            ("%FF", "\udcff"),
            ("bob%0A", "bob\n"),
            ("1bob", "1bob"),
            ("a" * 65, "a" * 65),
        ]
    ),
    valid_users.map(lambda u: (u, u)),
)


@st.composite
def user_queries(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A query string the HTTP parser accepts, and the user.name values in it, decoded."""
    pieces: list[str] = []
    decoded: list[str] = []
    for is_user in draw(st.lists(st.booleans(), max_size=6)):
        name = draw(user_param if is_user else other_param)
        raw, value = draw(spelled_values)
        bare = raw == "" and draw(st.booleans())  # "user.name" alone reads as an empty value
        pieces.append(name if bare else f"{name}={raw}")
        if is_user:
            decoded.append(value)
    separators = draw(st.lists(st.sampled_from(["&", ";", "&&"]), min_size=len(pieces), max_size=len(pieces)))
    query = "".join(s + p for s, p in zip(separators, pieces))[1:]
    return query, decoded


@PROPERTY
@given(user_queries(), st.booleans())
@example(("user.name=bob", ["bob"]), False)
@example(("user.name=bob&USER.NAME=b%6Fb", ["bob", "bob"]), False)
@example(("user.name=bob&user%2Ename=alice", ["bob", "alice"]), False)
@example(("op=list;user.name=bob&user.name=root", ["bob", "root"]), False)
@example(("user.name=bob&user.name=Bob", ["bob", "Bob"]), False)
@example(("user.name", [""]), True)
@example(("op=list", []), True)
def test_scheme_reads_one_user_or_refuses(case: tuple[str, list[str]], anonymous: bool) -> None:
    query, values = case
    request = parsed_request(f"GET /webhdfs/v1/?{query} HTTP/1.1\r\nHost: gateway\r\n\r\n".encode("ascii"))
    assert request.rel_url.raw_query_string == query
    result = _outcome(SimpleScheme(SimpleOptions(anonymous_allowed=anonymous)), request)
    if not values:
        assert result == (Authenticated(ANONYMOUS, ANONYMOUS, "simple") if anonymous else Challenge("PseudoAuth"))
    elif len(set(values)) > 1 or check_user_name(values[0]) is not None:
        assert isinstance(result, AuthenticationError) and result.status == 400
    else:
        assert result == Authenticated(values[0], values[0], "simple")


queries = st.one_of(
    st.lists(
        st.sampled_from(
            ["user.name", "USER%2ENAME", "=", "bob", "alice", "&", ";", "+", "%", "%FF", "\u00e9", "\udcff", "$"]
        ),
        max_size=16,
    ).map("".join),
    any_text,
)


@PROPERTY
@given(queries)
@example("user.name=bob&user.name=%62ob")
@example("user.name=\udcff")
@example("user.name=" + "a" * 100_000)
def test_scheme_never_raises_anything_else(query: str) -> None:
    result = _outcome(SimpleScheme(SimpleOptions()), request_with(query=query))
    values = set(param_values(query, "user.name"))
    if isinstance(result, AuthenticationError):
        assert result.status == 400
        assert len(values) > 1 or check_user_name(values.pop()) is not None
    elif isinstance(result, Challenge):
        assert not values
    else:
        assert values == {result.user} and result.principal == result.user and check_user_name(result.user) is None
