"""Near misses that scripts/mutate found unguarded: the session cookie, the
``Cookie`` header reader and scrubber, the query reader and rewriter.

Each test pins one boundary a slightly wrong implementation would move.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from authplugins.query import encode_param, param_values, rewrite_query
from gateway.cookie import CookieCodec, KeyRing, SessionToken
from gateway.cookieheader import iter_cookies, strip_cookies

NOW = 1_000_000_000


def test_keys_are_read_from_files_in_order(tmp_path: Path) -> None:
    newest, oldest = tmp_path / "newest.key", tmp_path / "oldest.key"
    newest.write_bytes(b"n" * 40 + b"\n")
    oldest.write_bytes(b"o" * 40 + b"\n")
    ring = KeyRing.from_files([str(newest), str(oldest)])
    assert ring.keys == (b"n" * 40, b"o" * 40)
    value = CookieCodec(ring, schemes=("simple",)).encode(SessionToken("bob", "bob", "simple", NOW, NOW + 60))
    assert CookieCodec(KeyRing([b"n" * 40]), schemes=("simple",)).decode(value, NOW) is not None


def test_an_empty_key_ring_says_why() -> None:
    with pytest.raises(ValueError, match=r"^a key ring needs at least one key$"):
        KeyRing([])


@pytest.mark.parametrize(("now", "left"), [(NOW, 60), (NOW + 59.5, 0), (NOW + 60, 0), (NOW + 3600, 0)])
def test_remaining_never_goes_below_zero_nor_rounds_up(now: float, left: int) -> None:
    # The Max-Age of the cookie issued for a ticket that has (almost) run out.
    assert SessionToken("bob", "bob", "simple", NOW, NOW + 60).remaining(now) == left


# -- gateway/cookieheader.py ------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ('a="v"', "v"),
        ('a= "v"\t', "v"),
        ('a=""', ""),
        ('a=""""', '""'),
        ('a="', '"'),
        ('a="v', '"v'),
        ('a=v"', 'v"'),
        ('a="vw"', "vw"),
    ],
)
def test_one_pair_of_surrounding_quotes_is_removed(header: str, value: str) -> None:
    assert list(iter_cookies(header)) == [("a", value)]


def test_names_and_values_keep_their_own_first_and_last_characters() -> None:
    assert list(iter_cookies(" Xa = XvX ;b=X")) == [("Xa", "XvX"), ("b", "X")]


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        ("lang=enX ; hadoop.auth=t", "lang=enX"),
        ("lang=enX\t;hadoop.auth=t", "lang=enX"),
        ("Xhadoop.auth=1; hadoop.auth=2", "Xhadoop.auth=1"),
        ("hadoop.authX=1, HADOOP.AUTH=2", "hadoop.authX=1"),
    ],
)
def test_scrubbing_drops_only_our_pair_and_the_blank_before_it(header: str, kept: str) -> None:
    assert strip_cookies(header, {"hadoop.auth"}) == kept


# -- authplugins/query.py --------------------------------------------------------------


def test_undecodable_bytes_stay_distinct() -> None:
    # With errors="replace" both would read as U+FFFD, one value for two.
    assert param_values("user.name=%FF&user.name=%FE", "user.name") == ["\udcff", "\udcfe"]


def test_encoded_names_and_values_escape_slashes_but_not_at() -> None:
    assert encode_param("a/b", "HTTP/host@EXAMPLE.COM") == "a%2Fb=HTTP%2Fhost@EXAMPLE.COM"


def test_a_dropped_first_pair_takes_no_semicolon_along() -> None:
    assert rewrite_query("user.name=x;op=list", {"user.name"}) == "op=list"


def test_appended_pairs_are_joined_by_ampersands() -> None:
    appended = [("user.name", "bob"), ("doas", "alice")]
    assert rewrite_query("op=list", {"user.name", "doas"}, appended) == "op=list&user.name=bob&doas=alice"
