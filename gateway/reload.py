"""Reloading the configuration on SIGHUP: which settings change live, which need a restart.

Live, applied by every worker at once:

* ``log.level``;
* the keys: ``cookie.keys_file`` and ``cookie.secret_files`` (and the keys
  they hold, reread on every SIGHUP whether the settings changed or not);
* who may do what: ``[groups]``, ``[[proxy_users]]``, and the ``users`` and
  ``groups`` of ``[[routes]]`` when nothing else about the routes changed.

Everything else needs a restart: the listeners, TLS and trusted proxies
(bound or compiled before the workers start), the schemes (a keytab is
opened once), the backends, failover, routes and dialects (connection pools,
breakers and rewriters are built once), the embedded
backend and the cookie's name and attributes (clients hold cookies under
them).  A reload that changes such a setting keeps running with the old
value and names every such key in one log line; a configuration that does
not load is reported with its problems and the running one kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gateway.config import Config

__all__ = ("Plan", "changed_keys", "plan")

_ROUTE_ACCESS = ("users", "groups")


@dataclass(frozen=True, slots=True)
class Plan:
    """What a reload does: the configuration to run with, and what changed."""

    config: Config  # the running one with the new live settings
    applied: tuple[str, ...]  # changed keys now in force
    restart: tuple[str, ...]  # changed keys that need a restart (their old values stay in force)


def _fields(prefix: str, old: Any, new: Any) -> list[str]:
    return [
        f"{prefix}{f.name}"
        for f in dataclasses.fields(old)
        if getattr(old, f.name) != getattr(new, f.name)
    ]


def changed_keys(old: Config, new: Config) -> list[str]:
    """Every key whose value differs between ``old`` and ``new``, as a dotted path.

    Every field of :class:`~gateway.config.Config` is compared, so a section
    added later is reported (as needing a restart) without a change here.
    """
    changed: list[str] = []
    for f in dataclasses.fields(old):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if f.name == "source" or a == b:
            continue
        if dataclasses.is_dataclass(a):
            changed += _fields(f"{f.name}.", a, b)
        elif f.name == "scheme_options":
            old_schemes, new_schemes = dict(a), dict(b)  # a scheme added or dropped shows in auth.schemes
            for scheme in sorted(old_schemes.keys() & new_schemes.keys()):
                changed += _fields(f"auth.{scheme}.", old_schemes[scheme], new_schemes[scheme])
        elif f.name == "route_tables" and len(a) == len(b):
            for i, (ra, rb) in enumerate(zip(a, b)):
                changed += _fields(f"routes[{i}].", ra, rb)
        else:
            changed.append("routes" if f.name == "route_tables" else f.name)
    return changed


def _live(key: str, routes_live: bool) -> bool:
    if key in ("log.level", "cookie.keys_file", "cookie.secret_files", "proxy_users") or key.startswith("groups."):
        return True
    return routes_live and key.startswith("routes[") and key.rpartition(".")[2] in _ROUTE_ACCESS


def plan(old: Config, new: Config) -> Plan:
    """How to go from the running ``old`` to the freshly loaded ``new``."""
    changed = changed_keys(old, new)
    # Route users and groups are live only when the routes are otherwise the same.
    routes_live = all(not k.startswith("routes") or k.rpartition(".")[2] in _ROUTE_ACCESS for k in changed)
    applied = tuple(k for k in changed if _live(k, routes_live))
    restart = tuple(k for k in changed if not _live(k, routes_live))
    config = dataclasses.replace(
        old,
        log=new.log,
        cookie=dataclasses.replace(old.cookie, keys_file=new.cookie.keys_file, secret_files=new.cookie.secret_files),
        groups=new.groups,
        proxy_users=new.proxy_users,
        route_tables=new.route_tables if routes_live else old.route_tables,
    )
    return Plan(config, applied, restart)
