"""The user-name grammar every scheme applies to the names it lets in.

Below the schemes, so ``kerberos`` (for a principal's short name) and
``simple`` (for ``user.name``) apply one rule without importing each other.
"""

from __future__ import annotations

import re

__all__ = ("MAX_USER_NAME", "check_user_name")

MAX_USER_NAME = 64
# HttpFS's default user pattern (dfs.webhdfs.user.provider.user.pattern).
_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*\$?")


def check_user_name(name: str) -> str | None:
    """Return why ``name`` is not an acceptable user name, or ``None``."""
    if not name:
        return "user.name is empty"
    if len(name) > MAX_USER_NAME:
        return f"user.name is longer than {MAX_USER_NAME} characters"
    if not _USER_NAME.fullmatch(name):
        return (
            "user.name must start with a letter or '_' and contain only letters, digits, "
            "'.', '_' and '-' (optionally ending in '$')"
        )
    return None
