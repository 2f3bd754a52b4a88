"""Cross-site request forgery: what a browser may not do without a custom header.

A browser answers a Negotiate challenge (and sends the session cookie) on its
own, whatever page started the request, so any page a Kerberos user opens
could make it ``<form method=POST>`` to the gateway.  A page cannot add a
custom header to such a request: a cross-origin request with one needs a
CORS preflight, and the gateway answers no ``Access-Control-Allow-*`` (a
preflight carries no credentials and gets the 401 challenge).  So, as
Hadoop's ``RestCsrfPreventionFilter`` (HDFS-9711, ``dfs.webhdfs.rest-csrf.*``)
does, a request is refused when all three hold:

- its method is not one of ``methods_to_ignore`` (``GET, OPTIONS, HEAD,
  TRACE``: a page can make those anyway, and they change nothing);
- its (first) ``User-Agent`` matches one of ``browser_useragents_regex``
  whole (``^Mozilla.*``, ``^Opera.*``): command-line clients and libraries
  (curl, python-requests, Java's ``HttpURLConnection``, Go) are not
  browsers, and nothing changes for them;
- it has no ``custom_header`` (``X-XSRF-HEADER``) line, whatever its value
  (Hadoop's ``WebHdfsFileSystem`` sends it empty when
  ``dfs.webhdfs.rest-csrf.enabled`` is set).

The refusal is Hadoop's: 400, "Missing Required Header for CSRF
Vulnerability Protection", here in the route's error format.  The gateway
checks before authentication, so a forged request costs no Kerberos
handshake, sets no cookie and never reaches a backend.

The embedded backend checks too where callers reach it directly with SPNEGO
(``embedded.auth = "kerberos"``); its signed mode trusts only the gateway.

Every pattern and set is built once (:meth:`CsrfGuard.from_config`); per
request, a method that is ignored costs one set lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from aiohttp import hdrs
from multidict import CIMultiDictProxy

if TYPE_CHECKING:
    from gateway.config import CsrfConfig

__all__ = ("CSRF_MESSAGE", "CsrfGuard")

CSRF_MESSAGE = "Missing Required Header for CSRF Vulnerability Protection"  # Hadoop's words, which its users search for


def _any_fullmatch(patterns: list[re.Pattern[str]]) -> Callable[[str], object]:
    """A function not ``None`` for a string one of ``patterns`` matches whole: one alternation, matched
    once, where the patterns combine (inline global flags do not, and groups would renumber)."""
    if not patterns:
        return lambda agent: None
    if all(p.groups == 0 for p in patterns):
        try:
            return re.compile("|".join(f"(?:{p.pattern})" for p in patterns)).fullmatch
        except re.error:
            pass
    return lambda agent: next((m for p in patterns if (m := p.fullmatch(agent)) is not None), None)


class CsrfGuard:
    """One configuration of the check; :meth:`refusal` decides one request."""

    __slots__ = ("_browser", "_header", "_message", "ignored")

    def __init__(self, *, header: str, methods_to_ignore: Iterable[str], browser_patterns: Iterable[str]) -> None:
        """``browser_patterns``: regular expressions (Python's syntax), one of which must match a
        browser's whole ``User-Agent``; raises ``re.error`` for one that does not compile."""
        self.ignored = frozenset(methods_to_ignore)
        self._header = header
        self._browser = _any_fullmatch([re.compile(p) for p in browser_patterns])
        self._message = f"{CSRF_MESSAGE}: a browser must send the {header} header with this method"

    @classmethod
    def from_config(cls, config: CsrfConfig) -> CsrfGuard | None:
        """The guard ``[csrf]`` describes, or ``None`` when it is off."""
        if not config.enabled:
            return None
        return cls(
            header=config.custom_header,
            methods_to_ignore=config.methods_to_ignore,
            browser_patterns=config.browser_useragents_regex,
        )

    def refusal(self, method: str, headers: CIMultiDictProxy[str]) -> str | None:
        """Why a request with ``method`` and ``headers`` may not go on (the message for a 400), or ``None``."""
        if method in self.ignored:
            return None
        agent = headers.get(hdrs.USER_AGENT)
        if agent is None or self._browser(agent) is None or self._header in headers:
            return None
        return self._message
