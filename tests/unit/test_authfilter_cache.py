"""The filter's cache of verified cookies still honours each cookie's expiry.

``AuthFilter._from_cookie`` is called directly with an injected ``now``, far
from the real clock, so a check that fell back to ``time.time()`` or skipped
expiry for a cached value would be caught here rather than only by the
Kerberos end-to-end test that waits for a cookie to run out.
"""

from __future__ import annotations

from aiohttp import web

from authplugins.simple import SimpleOptions, SimpleScheme
from gateway import authfilter
from gateway.authfilter import AuthFilter
from gateway.config import CookieConfig
from gateway.cookie import CookieCodec, KeyRing, SessionToken

KEY = b"c" * 40
NOW = 1_000_000_000  # 2001: every cookie here expired long ago by the real clock
TOKEN = SessionToken("bob", "bob", "simple", NOW, NOW + 60)


def _error(request: web.Request, status: int, message: str, **_: object) -> web.Response:
    return web.Response(status=status, text=message)


class CountingCodec(CookieCodec):
    """Counts the values it verifies."""

    __slots__ = ("verified",)

    def __init__(self) -> None:
        super().__init__(KeyRing([KEY]), schemes=("simple",))
        self.verified = 0

    def decode(self, value: str, now: float | None = None) -> SessionToken | None:
        self.verified += 1
        return super().decode(value, now)


def make_filter() -> tuple[AuthFilter, CountingCodec]:
    codec = CountingCodec()
    scheme = SimpleScheme.from_options(SimpleOptions())
    return AuthFilter(schemes=[scheme], codec=codec, cookie=CookieConfig(), error_response=_error), codec


def test_a_valid_cookie_is_accepted_at_the_injected_time() -> None:
    filt, codec = make_filter()
    assert filt._from_cookie(codec.encode(TOKEN), NOW) == TOKEN


def test_a_cookie_is_verified_once_per_session() -> None:
    filt, codec = make_filter()
    value = codec.encode(TOKEN)
    for now in (NOW, NOW + 1, NOW + 59):
        assert filt._from_cookie(value, now) == TOKEN
    assert codec.verified == 1


def test_a_cached_cookie_is_refused_once_expired() -> None:
    filt, codec = make_filter()
    value = codec.encode(TOKEN)
    assert filt._from_cookie(value, NOW) == TOKEN  # verified and cached
    assert filt._from_cookie(value, NOW + 59.5) == TOKEN  # from the cache
    assert filt._from_cookie(value, NOW + 60) is None  # expires_at itself is too late
    assert filt._from_cookie(value, NOW + 61) is None


def test_an_expired_cookie_is_refused_before_it_is_cached() -> None:
    filt, codec = make_filter()
    value = codec.encode(TOKEN)
    assert filt._from_cookie(value, NOW + 60) is None
    assert filt._from_cookie(value, NOW + 61) is None
    assert filt._from_cookie(value, NOW) == TOKEN


def test_a_bad_cookie_is_refused_every_time() -> None:
    filt, codec = make_filter()
    value = codec.encode(TOKEN)[:-1]
    assert filt._from_cookie(value, NOW) is None
    assert filt._from_cookie(value, NOW) is None


def test_the_cache_is_bounded() -> None:
    filt, codec = make_filter()
    for i in range(authfilter._CACHE_SIZE + 1):
        token = SessionToken(f"u{i}", f"u{i}", "simple", NOW, NOW + 60)
        assert filt._from_cookie(codec.encode(token), NOW) == token
        assert len(filt._cache) <= authfilter._CACHE_SIZE


def test_the_cache_forgets_what_a_retired_key_verified() -> None:
    from gateway.cookie import Key, LiveKeys

    old, new = Key("0000000a", b"a" * 32, NOW, NOW), Key("0000000b", b"b" * 32, NOW, NOW)
    live = LiveKeys(KeyRing(named=[old, new]))
    codec = CookieCodec(live, schemes=("simple",))
    filt = AuthFilter(
        schemes=[SimpleScheme.from_options(SimpleOptions())], codec=codec, cookie=CookieConfig(), error_response=_error
    )
    signed_by_old = CookieCodec(KeyRing(named=[old]), schemes=("simple",)).encode(TOKEN, now=NOW)
    assert filt._from_cookie(signed_by_old, NOW) == TOKEN
    live.replace(KeyRing(named=[new]))  # the old key retired
    assert filt._from_cookie(signed_by_old, NOW) is None
