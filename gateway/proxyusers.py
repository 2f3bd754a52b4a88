"""Proxy users: who may act for whom, from where, with Hadoop's semantics.

A client that authenticated as ``real`` may ask (``doas``) to act as
``effective`` only where a rule for ``real`` allows it, as
``hadoop.proxyuser.<real>.users``, ``.groups`` and ``.hosts`` do in Hadoop:

* ``users``: short names ``effective`` may have, or ``*`` for anyone;
* ``groups``: groups ``effective`` may be in (any one of them), or ``*``;
* ``hosts``: addresses the request may come from: IPs, CIDR ranges, host
  names (resolved when the rules are built, not per request), or ``*``.

``effective`` must be allowed by ``users`` or ``groups``, and the client
address by ``hosts``; a user without a rule may impersonate nobody, and a
rule without ``hosts`` admits no address.  The refusals say what Hadoop
says: ``User: alice is not allowed to impersonate bob``, ``Unauthorized
connection for super-user: alice from IP 10.0.0.9``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from gateway.forwarded import ip_address_of, ip_network_of
from gateway.groups import GroupSource

__all__ = ("HostList", "ProxyUserRule", "ProxyUsers", "host_entry_problem")

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], Sequence[str]]


def _resolve(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def host_entry_problem(entry: str) -> str | None:
    """Why ``entry`` cannot be in a ``hosts`` list, or ``None`` (host names are checked by resolving them)."""
    entry = entry.strip()
    if not entry:
        return "an empty entry matches nothing"
    if "/" in entry:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return f"{entry!r} is not a CIDR range"
    return None


class HostList:
    """Hadoop's ``MachineList``: ``*``, IPs, CIDR ranges and host names."""

    __slots__ = ("_addresses", "_all", "_networks")

    def __init__(self, entries: Iterable[str], *, resolve: Resolver = _resolve) -> None:
        self._all = False
        addresses: set[_Address] = set()
        networks: list[_Network] = []
        for raw in entries:
            entry = raw.strip()
            if entry == "*":
                self._all = True
            elif "/" in entry:
                networks.append(ip_network_of(entry))
            elif (address := ip_address_of(entry)) is not None:
                addresses.add(address)
            elif entry:
                for text in resolve(entry):  # OSError for a name that does not resolve
                    if (resolved := ip_address_of(text)) is not None:
                        addresses.add(resolved)
        self._addresses = frozenset(addresses)
        self._networks = tuple(networks)

    def includes(self, remote: str | None) -> bool:
        if self._all:
            return True
        address = ip_address_of(remote) if remote else None
        if address is None:
            return False
        return address in self._addresses or any(address in network for network in self._networks)


@dataclass(frozen=True, slots=True)
class ProxyUserRule:
    """``user`` may act for ``users`` and members of ``groups``, from ``hosts``."""

    user: str
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()


class _Compiled:
    __slots__ = ("all_users", "groups", "hosts", "users")

    def __init__(self, rule: ProxyUserRule, resolve: Resolver) -> None:
        users = {u.strip() for u in rule.users if u.strip()}
        groups = {g.strip() for g in rule.groups if g.strip()}
        self.all_users = "*" in users or "*" in groups
        self.users = frozenset(users)
        self.groups = frozenset(groups)
        self.hosts = HostList(rule.hosts, resolve=resolve)


class ProxyUsers:
    """The proxy-user rules, compiled once; :meth:`refusal` decides one ``doas``."""

    __slots__ = ("_groups", "_rules")

    def __init__(self, rules: Iterable[ProxyUserRule], groups: GroupSource, *, resolve: Resolver = _resolve) -> None:
        compiled: dict[str, _Compiled] = {}
        for rule in rules:
            if rule.user in compiled:
                raise ValueError(f"two proxy-user rules for {rule.user!r}")
            compiled[rule.user] = _Compiled(rule, resolve)
        self._rules: Mapping[str, _Compiled] = compiled
        self._groups = groups

    def refusal(self, real: str, effective: str, remote: str | None) -> str | None:
        """Why ``real`` may not act as ``effective`` from ``remote``; ``None`` when it may.

        Acting as oneself needs no rule, as in Hadoop, where ``doas`` naming
        the authenticated user is no impersonation at all.
        """
        if effective == real:
            return None
        rule = self._rules.get(real)
        allowed = rule is not None and (
            rule.all_users or effective in rule.users or not rule.groups.isdisjoint(self._groups.groups_of(effective))
        )
        if not allowed:
            return f"User: {real} is not allowed to impersonate {effective}"
        assert rule is not None
        if not rule.hosts.includes(remote):
            return f"Unauthorized connection for super-user: {real} from IP {remote or 'unknown'}"
        return None
