"""Proxy-user rules (Hadoop's hadoop.proxyuser.*) and the group sources they read."""

from __future__ import annotations

import grp
import ipaddress
import os
import pwd

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.groups import OsGroups, StaticGroups, parse_groups
from gateway.proxyusers import HostList, ProxyUserRule, ProxyUsers, host_entry_problem

GROUPS = StaticGroups.from_entries(["analysts:carol,dave", "ops:erin"])


def fake_dns(name: str) -> list[str]:
    table = {"gw1.example.com": ["10.1.2.3", "fd00::3"], "gw2.example.com": ["10.1.2.4"]}
    if name not in table:
        raise OSError(f"{name}: Name or service not known")
    return table[name]


def rules(*given: ProxyUserRule) -> ProxyUsers:
    return ProxyUsers(given, GROUPS, resolve=fake_dns)


KNOX = ProxyUserRule("knox", users=("bob",), groups=("analysts",), hosts=("10.0.0.0/8", "192.168.1.7"))


@pytest.mark.parametrize(
    ("effective", "remote", "why"),
    [
        ("bob", "10.9.9.9", None),  # named in users
        ("carol", "10.0.0.1", None),  # in a named group
        ("dave", "192.168.1.7", None),
        ("dave", "::ffff:192.168.1.7", None),  # an IPv4 client on a dual-stack socket
        ("erin", "10.0.0.1", "User: knox is not allowed to impersonate erin"),  # ops is not named
        ("mallory", "10.0.0.1", "User: knox is not allowed to impersonate mallory"),
        ("bob", "192.168.1.8", "Unauthorized connection for super-user: knox from IP 192.168.1.8"),
        ("bob", "11.0.0.1", "Unauthorized connection for super-user: knox from IP 11.0.0.1"),
        ("bob", None, "Unauthorized connection for super-user: knox from IP unknown"),
        ("bob", "not an address", "Unauthorized connection for super-user: knox from IP not an address"),
        ("knox", "1.2.3.4", None),  # acting as oneself is no impersonation
    ],
)
def test_a_rule_allows_its_users_and_groups_from_its_hosts(effective: str, remote: str | None, why: str | None) -> None:
    assert rules(KNOX).refusal("knox", effective, remote) == why


def test_without_a_rule_nobody_may_be_impersonated() -> None:
    assert rules(KNOX).refusal("alice", "bob", "10.0.0.1") == "User: alice is not allowed to impersonate bob"
    assert rules().refusal("alice", "alice", "10.0.0.1") is None


def test_a_rule_without_hosts_admits_no_address() -> None:
    no_hosts = rules(ProxyUserRule("knox", users=("*",)))
    assert no_hosts.refusal("knox", "bob", "127.0.0.1") == "Unauthorized connection for super-user: knox from IP 127.0.0.1"


def test_a_rule_without_users_or_groups_allows_nobody() -> None:
    hosts_only = rules(ProxyUserRule("knox", hosts=("*",)))
    assert hosts_only.refusal("knox", "bob", "127.0.0.1") == "User: knox is not allowed to impersonate bob"


@pytest.mark.parametrize("wildcard", [{"users": ("*",)}, {"groups": ("*",)}])
def test_a_wildcard_in_users_or_groups_allows_anyone(wildcard: dict[str, tuple[str, ...]]) -> None:
    rule = ProxyUserRule("knox", hosts=("*",), **wildcard)
    assert rules(rule).refusal("knox", "somebody-unknown", "203.0.113.5") is None


def test_host_names_are_resolved_when_the_rules_are_built() -> None:
    hosts = HostList(["gw1.example.com", "gw2.example.com"], resolve=fake_dns)
    assert [hosts.includes(a) for a in ("10.1.2.3", "fd00::3", "10.1.2.4", "10.1.2.5")] == [True, True, True, False]
    with pytest.raises(OSError, match="not known"):
        HostList(["nowhere.example.com"], resolve=fake_dns)


def test_two_rules_for_one_user_are_refused() -> None:
    with pytest.raises(ValueError, match="two proxy-user rules for 'knox'"):
        rules(KNOX, ProxyUserRule("knox", users=("*",), hosts=("*",)))


@pytest.mark.parametrize(
    ("entry", "problem"),
    [("10.0.0.0/8", None), ("10.0.0.1", None), ("gw.example.com", None), ("*", None), ("fd00::/8", None),
     ("10.0.0.0/33", "'10.0.0.0/33' is not a CIDR range"), ("", "an empty entry matches nothing"),
     ("a/b", "'a/b' is not a CIDR range")],
)
def test_host_entries_are_checked(entry: str, problem: str | None) -> None:
    assert host_entry_problem(entry) == problem


ipv4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))


@given(ipv4, st.integers(0, 32), ipv4)
def test_a_cidr_range_admits_exactly_its_addresses(base: ipaddress.IPv4Address, bits: int, remote: ipaddress.IPv4Address) -> None:
    network = ipaddress.ip_network(f"{base}/{bits}", strict=False)
    hosts = HostList([str(network)], resolve=fake_dns)
    assert hosts.includes(str(remote)) == (remote in network)
    assert hosts.includes(f"::ffff:{remote}") == (remote in network)


names = st.sampled_from(["alice", "bob", "carol", "dave", "erin", "knox"])


@given(names, names, st.sets(names), st.sets(st.sampled_from(["analysts", "ops", "*"])), st.booleans())
def test_an_allowed_doas_is_always_justified_by_the_rule(
    real: str, effective: str, users: set[str], groups: set[str], from_allowed_host: bool
) -> None:
    rule = ProxyUserRule(real, users=tuple(users), groups=tuple(groups), hosts=("10.0.0.0/8",))
    why = rules(rule).refusal(real, effective, "10.1.1.1" if from_allowed_host else "11.1.1.1")
    justified = effective == real or (
        from_allowed_host and ("*" in users or "*" in groups or effective in users
                               or bool(groups & GROUPS.groups_of(effective)))
    )
    assert (why is None) == justified


# -- group sources -------------------------------------------------------------------


def test_static_groups_are_exactly_the_configured_ones() -> None:
    assert GROUPS.groups_of("carol") == {"analysts"}
    assert GROUPS.groups_of("analysts") == frozenset()  # no group is implied by a name
    assert parse_groups(["g:a, b", "g:c"]) == {"g": ("a", "b", "c")}


async def test_os_groups_come_from_the_system_and_are_cached_for_their_time() -> None:
    me = pwd.getpwuid(os.getuid())
    expected = {grp.getgrgid(g).gr_name for g in os.getgrouplist(me.pw_name, me.pw_gid)}
    assert OsGroups().groups_of(me.pw_name) == expected
    assert OsGroups().groups_of("no-such-user-here") == frozenset()

    asked: list[str] = []
    now = [1000.0]

    def lookup(user: str) -> frozenset[str]:
        asked.append(user)
        return frozenset({f"g{len(asked)}"})

    cached = OsGroups(60.0, lookup=lookup, clock=lambda: now[0])
    pending = cached.prefetch("bob")
    assert pending is not None
    await pending
    assert cached.groups_of("bob") == {"g1"}
    now[0] += 59.0
    assert cached.prefetch("bob") is None
    assert cached.groups_of("bob") == {"g1"} and asked == ["bob"]
    now[0] += 1.0
    assert cached.groups_of("bob") == {"g1"}  # still what is known: only prefetch asks again
    pending = cached.prefetch("bob")
    assert pending is not None
    await pending
    assert cached.groups_of("bob") == {"g2"} and asked == ["bob", "bob"]  # expired: asked again


def test_a_range_may_be_written_with_host_bits_set_as_hadoop_accepts_it() -> None:
    assert host_entry_problem("10.1.2.3/8") is None
    hosts = HostList(["10.1.2.3/8"], resolve=fake_dns)
    assert hosts.includes("10.200.0.1") and not hosts.includes("11.0.0.1")


def test_an_ipv4_mapped_range_admits_its_ipv4_peers() -> None:
    # Peers are compared as IPv4 when they come mapped; the range must be read alike.
    hosts = HostList(["::ffff:10.0.0.0/104"], resolve=fake_dns)
    assert hosts.includes("10.9.8.7") and hosts.includes("::ffff:10.9.8.7")
    assert not hosts.includes("11.0.0.1") and not hosts.includes("::ffff:11.0.0.1")


def test_an_ipv6_peer_with_a_zone_matches_its_address() -> None:
    hosts = HostList(["fe80::1", "fd00::/8"], resolve=fake_dns)
    assert hosts.includes("fe80::1%eth0") and hosts.includes("fd00::7%2")
    assert not hosts.includes("fe80::2%eth0")


def test_the_default_resolver_resolves_names_of_this_machine() -> None:
    hosts = HostList(["localhost"])  # /etc/hosts: no network needed
    assert hosts.includes("127.0.0.1")
    assert not hosts.includes("127.0.0.2")


def test_rules_resolve_their_host_names_with_the_resolver_given() -> None:
    rule = ProxyUserRule("knox", users=("bob",), hosts=("gw1.example.com",))
    assert rules(rule).refusal("knox", "bob", "10.1.2.3") is None
    assert rules(rule).refusal("knox", "bob", "10.1.2.4") == "Unauthorized connection for super-user: knox from IP 10.1.2.4"
