"""Pseudo authentication, hadoop-auth's ``simple`` scheme.

The client names itself in the ``user.name`` query parameter and is believed.
That is all this scheme proves, so deployments that need more enable
``kerberos`` in front of it or instead of it.  The name must match a strict
grammar so that it is safe in a cookie, a header, a log line and a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from authplugins import Authenticated, AuthenticationError, AuthScheme, Challenge
from authplugins._username import MAX_USER_NAME, check_user_name
from authplugins.query import param_values

__all__ = ("MAX_USER_NAME", "SimpleOptions", "SimpleScheme", "USER_NAME_PARAM", "check_user_name")

USER_NAME_PARAM = "user.name"
ANONYMOUS = "anonymous"
# hadoop-auth's PseudoAuthenticationHandler offers this challenge.
_CHALLENGE = Challenge("PseudoAuth")


@dataclass(frozen=True, slots=True)
class SimpleOptions:
    anonymous_allowed: bool = field(
        default=False,
        metadata={"help": f"let requests without user.name in as {ANONYMOUS!r}"},
    )


class SimpleScheme(AuthScheme):
    type_name = "simple"
    options_type = SimpleOptions

    def __init__(self, options: SimpleOptions) -> None:
        self._anonymous_allowed = options.anonymous_allowed

    @classmethod
    def from_options(cls, options: SimpleOptions) -> SimpleScheme:
        return cls(options)

    @property
    def challenge(self) -> Challenge:
        return _CHALLENGE

    async def authenticate(self, request: web.Request) -> Authenticated | Challenge:
        names = param_values(request.rel_url.raw_query_string, USER_NAME_PARAM)
        if not names:
            if self._anonymous_allowed:
                return Authenticated(ANONYMOUS, ANONYMOUS, self.type_name)
            return _CHALLENGE
        if len(set(names)) > 1:
            raise AuthenticationError("user.name is given more than once with different values", status=400)
        problem = check_user_name(names[0])
        if problem:
            raise AuthenticationError(problem, status=400)
        return Authenticated(names[0], names[0], self.type_name)
