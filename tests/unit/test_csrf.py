"""Which requests the CSRF check refuses (gateway.csrf); tests/e2e/test_csrf.py sends them for real."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.csrf import CsrfGuard


@pytest.mark.parametrize(
    ("patterns", "agent", "browser"),
    [
        (["^Mozilla.*", "^Opera.*"], "Mozilla/5.0 (X11)", True),
        (["^Mozilla.*", "^Opera.*"], "Opera/9.80", True),
        (["^Mozilla.*", "^Opera.*"], "curl/8.5.0 Mozilla", False),  # matched whole, from the start
        (["Mozilla"], "Mozilla/5.0", False),  # whole: as Java's Matcher.matches() in Hadoop
        (["(?i)^mozilla.*", "^Opera.*"], "MOZILLA/5.0", True),  # a global flag: matched one by one
        (["^(Moz)illa.*", r"^(x)\1$"], "xx", True),  # groups: one by one, their numbers kept
        (["^(Moz)illa.*", r"^(x)\1$"], "xMoz", False),
    ],
)
def test_a_browser_is_a_user_agent_one_pattern_matches_whole(patterns: list[str], agent: str, browser: bool) -> None:
    guard = CsrfGuard(header="X-XSRF-HEADER", methods_to_ignore=["GET"], browser_patterns=patterns)
    headers = CIMultiDictProxy(CIMultiDict({"User-Agent": agent}))
    assert (guard.refusal("POST", headers) is not None) == browser
    assert guard.refusal("GET", headers) is None
    assert guard.refusal("POST", CIMultiDictProxy(CIMultiDict({"User-Agent": agent, "x-xsrf-header": ""}))) is None
