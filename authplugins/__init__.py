"""Authentication schemes for the gateway, and the one contract they share.

A scheme is built once from its validated options (the ``[auth.<type_name>]``
table of the configuration), started once, asked to authenticate any number of
requests concurrently, and stopped once.  It keeps no per-request state on
``self``: everything one handshake needs lives in local variables.

``authenticate`` answers with exactly one of:

* :class:`Authenticated`: the request carried valid credentials of this scheme;
* :class:`Challenge`: it carried none (or none this scheme understands), or a
  multi-leg handshake goes on; the challenge is offered to the client in a
  ``WWW-Authenticate`` header next to those of the other schemes;
* raising :class:`AuthenticationError`: it carried credentials of this scheme
  that are malformed (400), wrong (401) or not allowed in (403).  The filter
  stops there; no other scheme is tried.  A 401 offers every scheme's
  :attr:`AuthScheme.challenge` again.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

__all__ = (
    "AuthScheme",
    "Authenticated",
    "AuthenticationError",
    "Challenge",
    "ConfigError",
    "SCHEME_TYPES",
    "scheme_class",
)


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A verified identity.

    ``user`` is the short name the backend sees; ``principal`` the full name
    the scheme verified (equal to ``user`` for pseudo authentication).
    ``expires_at`` (epoch seconds) caps the session cookie, e.g. at the end of
    a Kerberos ticket; ``None`` means the configured validity alone applies.
    ``headers`` are added to the response that carries the new cookie, e.g.
    the SPNEGO mutual-authentication token.
    """

    user: str
    principal: str
    scheme: str
    expires_at: float | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Challenge:
    """No usable credentials for this scheme: offer ``www_authenticate``."""

    www_authenticate: str


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` holds one line per problem.

    Defined with the contract so a scheme can report a problem found when it
    starts (an unreadable keytab) without importing the gateway;
    ``gateway.config`` raises the same class.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in self.problems))


class AuthenticationError(Exception):
    """Credentials of a scheme were presented and refused.

    ``status`` is 400 (malformed), 401 (not valid: the client is challenged
    again) or 403 (valid, but this principal is not let in).  ``message`` is
    shown to the client, so it must never contain a token or a secret.
    """

    def __init__(self, message: str, *, status: int = 401, headers: tuple[tuple[str, str], ...] = ()) -> None:
        if status not in (400, 401, 403):
            raise ValueError(f"status must be 400, 401 or 403, not {status}")
        super().__init__(message)
        self.message = message
        self.status = status
        # Sent with the refusal: e.g. the mutual-authentication token of a
        # handshake that succeeded before the principal was turned away.
        self.headers = headers


class AuthScheme(abc.ABC):
    """The contract every authentication scheme implements.

    Subclasses set ``type_name`` (which doubles as the configuration table
    name) and ``options_type``: a frozen dataclass whose annotated fields,
    defaults and ``metadata["help"]`` declare the scheme's options.  The
    configuration loader type-checks the table against it and rejects
    unknown keys; ``check_options`` adds the rules types cannot express.
    """

    type_name: ClassVar[str]
    options_type: ClassVar[type[Any]]

    @classmethod
    def check_options(cls, options: Any) -> list[str]:
        """Return one line per problem with ``options`` (``"key: why"``).

        Runs when the configuration is loaded, before anything starts, so
        that every problem of every section is reported at once.  It may read
        files (a keytab) but must change nothing.
        """
        return []

    @classmethod
    @abc.abstractmethod
    def from_options(cls, options: Any) -> AuthScheme:
        """Build the scheme from options that passed ``check_options``."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Acquire what the scheme holds for its lifetime (credentials...)."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Release what ``start`` acquired."""

    @property
    @abc.abstractmethod
    def challenge(self) -> Challenge:
        """What a client without credentials is offered (e.g. ``Negotiate``)."""

    @abc.abstractmethod
    async def authenticate(self, request: web.Request) -> Authenticated | Challenge:
        """Authenticate ``request``; see the module docstring for the answers."""


# Scheme modules are imported only when configured, so that a gateway without
# Kerberos never needs gssapi installed.
SCHEME_TYPES: Mapping[str, str] = {
    "simple": "authplugins.simple:SimpleScheme",
    "kerberos": "authplugins.kerberos:KerberosScheme",
}


def scheme_class(type_name: str) -> type[AuthScheme]:
    """Import and return the scheme class registered under ``type_name``."""
    module_name, _, attr = SCHEME_TYPES[type_name].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, AuthScheme)):
        raise TypeError(f"{SCHEME_TYPES[type_name]} is not an AuthScheme")
    return cls
