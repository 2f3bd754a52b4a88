"""Properties of reading the backend's ``Set-Cookie`` (``gateway/backendauth.py``).

What the gateway keeps it later writes into a request header, so whatever a
backend sends, a kept cookie is one ``hadoop.auth="..."`` pair with no line
break, quote or separator inside, ending after ``now``; and nothing raises.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.backendauth import KeptCookie, parse_set_cookie

PROPERTY = settings(derandomize=True, deadline=None, max_examples=300)
NOW = 1_800_000_000.0

surrogates = st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF, categories=["Cs"])
any_text = st.text(st.one_of(st.characters(), surrogates))
attributes = st.lists(
    st.one_of(
        st.builds(lambda n: f"Max-Age={n}", st.integers(-10**12, 10**12)),
        st.builds(lambda t: f"Expires={t}", any_text),
        st.sampled_from(["Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Expires=Thu, 01 Jan 1970 00:00:00 GMT"]),
        any_text,
    ),
    max_size=4,
)
values = st.one_of(
    any_text,
    st.builds(lambda e, rest: f"u=HTTP&p=HTTP/gw@R&t=kerberos&e={e}&s={rest}", st.integers(-10**15, 10**16), any_text),
)


@PROPERTY
@given(value=values, attrs=attributes, quoted=st.booleans())
@example(value="a\r\nX-Injected: 1", attrs=[], quoted=False)
@example(value='a";b', attrs=[], quoted=True)
def test_a_kept_cookie_is_one_safe_pair_that_has_not_ended(value: str, attrs: list[str], quoted: bool) -> None:
    shown = f'"{value}"' if quoted else value
    found = parse_set_cookie("; ".join([f"hadoop.auth={shown}", *attrs]), "hadoop.auth", now=NOW)
    assert found is None or found is False or isinstance(found, KeptCookie)
    if isinstance(found, KeptCookie):
        name, _, rest = found.pair.partition("=")
        assert name == "hadoop.auth" and rest.startswith('"') and rest.endswith('"') and len(rest) > 2
        inner = rest[1:-1]
        assert not any(c in inner for c in '";\r\n') and inner.isprintable()
        assert found.expires_at > NOW


@PROPERTY
@given(line=any_text)
def test_any_line_reads_without_raising(line: str) -> None:
    parse_set_cookie(line, "hadoop.auth", now=NOW)
