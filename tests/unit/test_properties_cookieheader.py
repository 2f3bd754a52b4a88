"""Properties of the ``Cookie`` header reader and scrubber (``gateway/cookieheader.py``).

Reading and scrubbing agree: a pair the reader would take for one of the
dropped names never survives scrubbing, whatever the spelling; everything
else goes through byte for byte, in order; nothing raises.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.cookieheader import cookie_values, iter_cookies, strip_cookies

PROPERTY = settings(derandomize=True, deadline=None, max_examples=100)

NAME = "hadoop.auth"
SEPARATORS = ";,"
BLANK = " \t"

surrogates = st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF, categories=["Cs"])
any_char = st.one_of(st.characters(), surrogates)
any_text = st.text(any_char)

names = st.one_of(
    st.sampled_from(
        [
            NAME,
            "HADOOP.AUTH",
            "Hadoop.Auth",
            " hadoop.auth",
            "\thadoop.auth ",
            "hadoop.auth\t",
            "hadoop.authx",
            "xhadoop.auth",
            "hadoop. auth",
            '"hadoop.auth"',
            "hadoop",
            "JSESSIONID",
            "a",
            "",
            " ",
            "h\u00e4doop.auth",
            "hadoop.auth\udcff",
            "\udcff",
        ]
    ),
    st.text(st.one_of(st.sampled_from("aA. \t\"'\\"), any_char).filter(lambda c: c not in ";,="), max_size=8),
)
values = st.one_of(
    st.sampled_from(['', '"', '""', '"abc"', '"a;b"', '"a,b"', "x=y", "=", " v ", "\tv\t", "\u00e4", "\udcff", "a b"]),
    any_text.map(lambda t: t[:12]),
)
pairs = st.builds(lambda n, eq, v: n + eq + v, names, st.sampled_from(["=", "=", " = ", "=\t", ""]), values)
separators = st.sampled_from([";", "; ", ",", ", ", ";;", " ; ", "\t;", ";\t", ", ;", "; ,", " "])
structured = st.builds(
    lambda lead, body: lead + "".join(p + s for p, s in body),
    st.sampled_from(["", " ", ";", " ;\t", ","]),
    st.lists(st.tuples(pairs, separators), max_size=8),
)
# Few characters, many separators, our name in several spellings.
soup = st.lists(
    st.sampled_from([NAME, "HADOOP.AUTH", "a", "=", ";", ",", " ", "\t", '"', "\u00e4", "\udcff"]), max_size=24
).map("".join)
headers = st.one_of(structured, soup, any_text)

# strip_cookies wants lower-case names (its documented precondition).
name_sets = st.frozensets(
    st.one_of(st.just(NAME), st.sampled_from(["jsessionid", "a", ""]), names.map(str.lower)), max_size=4
)


def _pieces(header: str) -> list[str]:
    return re.split(f"[{SEPARATORS}]", header)


def _dropped(piece: str, dropped: frozenset[str]) -> bool:
    name, sep, _ = piece.partition("=")
    return bool(sep) and name.strip(BLANK).lower() in dropped


def _substance(pieces: list[str]) -> list[str]:
    """The pairs as written, ignoring blank pieces and white space at the two ends of the header."""
    kept = [p for p in pieces if p.strip(BLANK)]
    if kept:
        kept[0] = kept[0].lstrip(BLANK)
        kept[-1] = kept[-1].rstrip(BLANK)
    return kept


def _is_trimmed(header: str, result: str) -> bool:
    """``result`` is ``header`` less only separators and white space at its two ends."""
    end = len(result)
    return any(
        header[i : i + end] == result and _EDGE.fullmatch(header[:i]) and _EDGE.fullmatch(header[i + end :])
        for i in range(len(header) - end + 1)
    )


_EDGE = re.compile(r"[\s;,]*")  # separators and white space of any kind


@PROPERTY
@given(headers, name_sets)
@example("hadoop.auth=x", frozenset({NAME}))
@example(' HADOOP.AUTH = "x" ;a=1', frozenset({NAME}))
@example('a="x;hadoop.auth=y";b=2', frozenset({NAME}))
@example("a=1,hadoop.auth=2", frozenset({NAME}))
@example("\udcff=1; hadoop.auth\udcff=2", frozenset({NAME, "\udcff"}))
@example("hadoop.auth=" + "x" * 100_000, frozenset({NAME}))
def test_no_dropped_name_survives(header: str, dropped: frozenset[str]) -> None:
    result = strip_cookies(header, dropped)
    assert isinstance(result, str)
    assert [n for n, _ in iter_cookies(result) if n.lower() in dropped] == []


@PROPERTY
@given(st.lists(headers, max_size=3))
def test_every_value_read_for_our_name_is_scrubbed(cookie_lines: list[str]) -> None:
    found = cookie_values(cookie_lines, NAME)
    assert all(isinstance(v, str) for v in found)
    scrubbed = [strip_cookies(line, frozenset({NAME})) for line in cookie_lines]
    assert cookie_values(scrubbed, NAME) == []
    left = {(n.lower(), v) for line in scrubbed for n, v in iter_cookies(line)}
    assert not any((NAME, v) in left for v in found)


@PROPERTY
@given(headers, name_sets)
@example(" a=1 ;hadoop.auth=x; b = 2 ,c", frozenset({NAME}))
@example("hadoop.auth=x;\t;, a=1", frozenset({NAME}))
def test_kept_pairs_are_byte_for_byte_in_order(header: str, dropped: frozenset[str]) -> None:
    expected = [p for p in _pieces(header) if not _dropped(p, dropped)]
    assert _substance(_pieces(strip_cookies(header, dropped))) == _substance(expected)


@PROPERTY
@given(headers, name_sets)
def test_stripping_is_idempotent(header: str, dropped: frozenset[str]) -> None:
    once = strip_cookies(header, dropped)
    assert strip_cookies(once, dropped) == once


@PROPERTY
@given(headers, name_sets)
@example(" ;a=1; b=2 ;\t", frozenset({NAME}))
@example("hadoop.authx=1", frozenset({NAME}))
@example("hadoop.auth", frozenset({NAME}))  # no "=": not a pair
def test_header_without_such_pair_is_kept(header: str, dropped: frozenset[str]) -> None:
    present = {n.lower() for n, _ in iter_cookies(header)}
    untouched = dropped - present
    assert _is_trimmed(header, strip_cookies(header, untouched))


@pytest.mark.parametrize("space", ["\x0b", "\x0c", "\xa0", "\r", "\u2003"])
def test_any_white_space_around_a_name_is_read_and_scrubbed(space: str) -> None:
    # Python's http.cookies and aiohttp read "\x0bhadoop.auth" as hadoop.auth.
    header = f"x=1;{space}hadoop.auth{space}={space}tok{space};y=2"
    assert cookie_values([header], "hadoop.auth") == ["tok"]
    assert strip_cookies(header, {"hadoop.auth"}) == "x=1;y=2"
    assert strip_cookies(f"{space}hadoop.auth=tok;{space}y=2{space}", {"hadoop.auth"}) == "y=2"
