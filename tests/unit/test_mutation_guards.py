"""Near misses of the session cookie code that scripts/mutate found unguarded.

Each test pins one boundary a slightly wrong implementation would move.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cookie import CookieCodec, KeyRing, SessionToken

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
