"""Trusted proxies: reading X-Forwarded-* and RFC 7239 Forwarded only from configured peers."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.forwarded import (
    ClientView, ForwardedElement, TrustedProxies, client_view, parse_forwarded, parse_node, trusted_entry_problem,
)

LB = "127.0.0.1"  # the peer in most cases: a load balancer on this machine
TRUSTED = ("10.0.0.0/8", "127.0.0.1", "2001:db8:ffff::/48")


def request(peer: str | None, *headers: tuple[str, str], host: str = "gw.internal:14000") -> web.Request:
    made = make_mocked_request("GET", "/x", headers=CIMultiDict([("Host", host), *headers]))
    return made.clone(remote=peer) if peer is not None else made


def view(peer: str | None, *headers: tuple[str, str], family: str = "x-forwarded") -> ClientView:
    return TrustedProxies(TRUSTED, family).view(request(peer, *headers))  # type: ignore[arg-type]


def own(address: str) -> ClientView:
    return ClientView(address, "http", "gw.internal:14000", (address,))


# -- X-Forwarded-For, walked from the right ---------------------------------------------


@pytest.mark.parametrize(
    ("peer", "xff", "address", "chain"),
    [
        # An untrusted peer's claims are ignored entirely.
        ("203.0.113.9", "10.0.0.1", "203.0.113.9", ("203.0.113.9",)),
        ("203.0.113.9", "", "203.0.113.9", ("203.0.113.9",)),
        # A trusted peer without the header is the client itself.
        (LB, None, LB, (LB,)),
        (LB, "198.51.100.7", "198.51.100.7", ("198.51.100.7", LB)),
        # Many hops: walk past trusted ones; the first untrusted is the client, what is left of it is dropped.
        (LB, "1.1.1.1, 2.2.2.2, 10.0.0.2, 10.0.0.3", "2.2.2.2", ("2.2.2.2", "10.0.0.2", "10.0.0.3", LB)),
        (LB, "10.0.0.5, 10.0.0.6", "10.0.0.5", ("10.0.0.5", "10.0.0.6", LB)),  # all trusted: the leftmost
        # Not an address: nothing beyond it can be vouched for.
        (LB, "1.1.1.1, garbage", "unknown", ("unknown", LB)),
        (LB, "1.1.1.1, unknown", "unknown", ("unknown", LB)),
        (LB, "1.1.1.1, _hidden, 10.0.0.2", "unknown", ("unknown", "10.0.0.2", LB)),
        (LB, "1.1.1.1,,10.0.0.2", "unknown", ("unknown", "10.0.0.2", LB)),
        (LB, "1.1.1.1, 10.0.0.2,", "unknown", ("unknown", LB)),
        (LB, "300.1.1.1", "unknown", ("unknown", LB)),
        (LB, "1.1.1.1:8080:1", "unknown", ("unknown", LB)),
        (LB, "1.1.1.1\t", "1.1.1.1", ("1.1.1.1", LB)),
        # Ports and IPv6 spellings.
        (LB, "198.51.100.7:50123", "198.51.100.7", ("198.51.100.7", LB)),
        (LB, "2001:db8::7", "2001:db8::7", ("2001:db8::7", LB)),
        (LB, "[2001:DB8::7]:50123", "2001:db8::7", ("2001:db8::7", LB)),
        (LB, "[2001:db8::7]", "2001:db8::7", ("2001:db8::7", LB)),
        (LB, "[198.51.100.7]", "unknown", ("unknown", LB)),  # brackets hold IPv6 only
        (LB, "[2001:db8::7", "unknown", ("unknown", LB)),
        (LB, "fe80::7%eth0", "fe80::7", ("fe80::7", LB)),
        (LB, "fe80::7%eth0%1", "fe80::7", ("fe80::7", LB)),  # a zone is dropped, whatever it holds
        (LB, "::ffff:198.51.100.7", "198.51.100.7", ("198.51.100.7", LB)),
        (LB, "1.1.1.1, 2001:db8:ffff::1", "1.1.1.1", ("1.1.1.1", "2001:db8:ffff::1", LB)),
        # The peer itself on a dual-stack socket.
        ("::ffff:127.0.0.1", "198.51.100.7", "198.51.100.7", ("198.51.100.7", LB)),
        ("2001:db8:ffff::9", "198.51.100.7", "198.51.100.7", ("198.51.100.7", "2001:db8:ffff::9")),
    ],
)
def test_x_forwarded_for_is_walked_from_the_right(
    peer: str, xff: str | None, address: str, chain: tuple[str, ...]
) -> None:
    headers = () if xff is None else (("X-Forwarded-For", xff),)
    got = view(peer, *headers)
    assert (got.address, got.chain) == (address, chain)


def test_several_x_forwarded_for_lines_are_one_list() -> None:
    got = view(LB, ("X-Forwarded-For", "1.1.1.1, 2.2.2.2"), ("X-Forwarded-For", "10.0.0.9"))
    assert got.chain == ("2.2.2.2", "10.0.0.9", LB)


def test_a_peer_without_an_address_is_unknown_and_untrusted() -> None:
    made = make_mocked_request("GET", "/x", headers={"Host": "gw", "X-Forwarded-For": "1.2.3.4"})
    assert made.remote is None
    assert TrustedProxies(["0.0.0.0/0", "::/0"]).view(made) == ClientView("unknown", "http", "gw", ("unknown",))


def test_without_trusted_proxies_nothing_is_believed() -> None:
    got = TrustedProxies(()).view(request(LB, ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https")))
    assert got == own(LB)


@pytest.mark.parametrize(
    ("headers", "scheme", "host"),
    [
        ((("X-Forwarded-Proto", "https"),), "https", "gw.internal:14000"),
        ((("X-Forwarded-Proto", "HTTPS"),), "https", "gw.internal:14000"),
        ((("X-Forwarded-Proto", "ftp"),), "http", "gw.internal:14000"),
        ((("X-Forwarded-Proto", "https, http"),), "http", "gw.internal:14000"),  # the peer's own: the last
        ((("X-Forwarded-Proto", "http, http, https"),), "https", "gw.internal:14000"),  # of three proxies, too
        ((("X-Forwarded-Host", "files.example.com"),), "http", "files.example.com"),
        ((("X-Forwarded-Host", "evil.example, files.example.com:8443"),), "http", "files.example.com:8443"),
        ((("X-Forwarded-Host", "evil.example, lb2.example, files.example.com"),), "http", "files.example.com"),
        ((("X-Forwarded-Host", "[2001:db8::1]:8443"),), "http", "[2001:db8::1]:8443"),
        ((("X-Forwarded-Host", "evil.example/path"),), "http", "gw.internal:14000"),
        ((("X-Forwarded-Host", "a@b"),), "http", "gw.internal:14000"),
        ((("X-Forwarded-Host", ""),), "http", "gw.internal:14000"),
        # A port no TCP port can be: the header is not believed.
        ((("X-Forwarded-Host", "files.example.com:65536"),), "http", "gw.internal:14000"),
        ((("X-Forwarded-Host", "files.example.com:0"),), "http", "gw.internal:14000"),
        ((("X-Forwarded-Host", "[2001:db8::1]:99999"),), "http", "gw.internal:14000"),
        ((("X-Forwarded-Host", "files.example.com:65535"),), "http", "files.example.com:65535"),
        ((("X-Forwarded-Host", "files.example.com:1"),), "http", "files.example.com:1"),
        ((("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "f.example"), ("X-Forwarded-Port", "8443")),
         "https", "f.example:8443"),
        ((("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "f.example:80"), ("X-Forwarded-Port", "443")),
         "https", "f.example"),
        ((("X-Forwarded-Port", "99999"),), "http", "gw.internal:14000"),
        ((("X-Forwarded-Port", "8080"),), "http", "gw.internal:8080"),
        # Ports 1 to 65535; anything else (other digits than ASCII ones among it) is ignored.
        ((("X-Forwarded-Port", "0"),), "http", "gw.internal:14000"),
        ((("X-Forwarded-Port", "1"),), "http", "gw.internal:1"),
        ((("X-Forwarded-Port", "65535"),), "http", "gw.internal:65535"),
        ((("X-Forwarded-Port", "65536"),), "http", "gw.internal:14000"),
        ((("X-Forwarded-Port", "\u00b2"),), "http", "gw.internal:14000"),  # "²".isdigit(), but int() refuses it
        ((("X-Forwarded-Port", "\u0664\u0664\u0663"),), "http", "gw.internal:14000"),  # Arabic-Indic 443
        # An IPv6 host keeps its brackets and address when its port is replaced, or added.
        ((("X-Forwarded-Host", "[2001:db8::1]"), ("X-Forwarded-Port", "8443")), "http", "[2001:db8::1]:8443"),
        ((("X-Forwarded-Host", "[2001:db8::1]:80"), ("X-Forwarded-Port", "8443")), "http", "[2001:db8::1]:8443"),
        ((("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "[2001:db8::1]:8443"), ("X-Forwarded-Port", "443")),
         "https", "[2001:db8::1]"),
    ],
)
def test_scheme_and_host_from_a_trusted_peer(headers: tuple[tuple[str, str], ...], scheme: str, host: str) -> None:
    got = view(LB, *headers)
    assert (got.scheme, got.host) == (scheme, host)
    assert view("203.0.113.9", *headers) == own("203.0.113.9")


# -- RFC 7239 Forwarded -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("for=192.0.2.60;proto=https;by=203.0.113.43",
         ClientView("192.0.2.60", "https", "gw.internal:14000", ("192.0.2.60", LB))),
        ('for=192.0.2.60;proto=https;host="files.example.com:8443", for=10.0.0.2',
         ClientView("192.0.2.60", "https", "files.example.com:8443", ("192.0.2.60", "10.0.0.2", LB))),
        ('For="[2001:db8:cafe::17]:4711"', ClientView("2001:db8:cafe::17", "http", "gw.internal:14000",
                                                       ("2001:db8:cafe::17", LB))),
        ("for=_hidden;proto=https", ClientView("unknown", "https", "gw.internal:14000", ("unknown", LB))),
        ("for=unknown", ClientView("unknown", "http", "gw.internal:14000", ("unknown", LB))),
        ("proto=https", ClientView("unknown", "https", "gw.internal:14000", ("unknown", LB))),  # no for=
        # The attacker's element on the left is never reached.
        ("for=10.0.0.1;host=evil.example, for=198.51.100.1;host=files.example",
         ClientView("198.51.100.1", "http", "files.example", ("198.51.100.1", LB))),
        ("garbage;;=,, for=198.51.100.1", ClientView("198.51.100.1", "http", "gw.internal:14000", ("198.51.100.1", LB))),
        # An element that cannot be read ends the walk, as a hop that is no address does.
        ("for=198.51.100.1, for=10.0.0.3;for=10.0.0.4",
         ClientView("unknown", "http", "gw.internal:14000", ("unknown", LB))),
        ('for="198.51.100.1, for=10.0.0.3"', ClientView("unknown", "http", "gw.internal:14000", ("unknown", LB))),
        ("for=10.0.0.3;proto=gopher", ClientView("10.0.0.3", "http", "gw.internal:14000", ("10.0.0.3", LB))),
    ],
)
def test_forwarded_elements_are_walked_from_the_right(forwarded: str, expected: ClientView) -> None:
    # A trusted proxy vouches for the scheme and host, even where it only sent them as Host.
    assert view(LB, ("Forwarded", forwarded), family="forwarded") == dataclasses.replace(expected, vouched=True)
    assert view("203.0.113.9", ("Forwarded", forwarded), family="forwarded") == own("203.0.113.9")


def test_only_the_configured_family_is_believed() -> None:
    both = (("Forwarded", "for=198.51.100.1;proto=https"), ("X-Forwarded-For", "198.51.100.2"),
            ("X-Forwarded-Proto", "https"))
    assert view(LB, *both) == ClientView("198.51.100.2", "https", "gw.internal:14000", ("198.51.100.2", LB), True)
    assert view(LB, *both, family="forwarded") == ClientView(
        "198.51.100.1", "https", "gw.internal:14000", ("198.51.100.1", LB), True)
    assert view(LB, both[1], both[2], family="forwarded") == dataclasses.replace(own(LB), vouched=True)


@pytest.mark.parametrize(
    ("lines", "elements"),
    [
        (["for=a"], [ForwardedElement("a")]),
        (['for="_x";PROTO=https;Host="h\\"x"'], [ForwardedElement("_x", "https", 'h"x')]),
        (["for=a, for=b", "for=c"], [ForwardedElement("a"), ForwardedElement("b"), ForwardedElement("c")]),
        ([" , for=a ,"], [ForwardedElement("a")]),
        (["for=a;for=b"], [ForwardedElement(valid=False)]),
        (["for"], [ForwardedElement(valid=False)]),
        (['for="unterminated'], [ForwardedElement(valid=False)]),
        (["by=x"], [ForwardedElement()]),
        # Separators inside a quoted value are the value's; an escaped quote does not end it.
        (['for=a;host="b;c,d"'], [ForwardedElement("a", host="b;c,d")]),
        (['host="a\\"b", for=c'], [ForwardedElement(host='a"b'), ForwardedElement("c")]),
        (['host="a\\\\";for=c'], [ForwardedElement("c", host="a\\")]),  # an escaped backslash escapes nothing after it
        # A pair may be left out anywhere in an element (RFC 7239 4: [ forwarded-pair ]).
        (["for=a;;proto=https;"], [ForwardedElement("a", "https")]),
        ([";for=a"], [ForwardedElement("a")]),
    ],
)
def test_parse_forwarded(lines: list[str], elements: list[ForwardedElement]) -> None:
    assert parse_forwarded(lines) == elements


@pytest.mark.parametrize(
    ("text", "node"),
    [
        ("192.0.2.1", ipaddress.ip_address("192.0.2.1")),
        (" 192.0.2.1:80 ", ipaddress.ip_address("192.0.2.1")),
        ("192.0.2.1:_port", ipaddress.ip_address("192.0.2.1")),
        ("192.0.2.1:port", "unknown"),
        ("[::1]:_p", ipaddress.ip_address("::1")),
        ("[::1]x", "unknown"),
        ("[2001:db8::1]/64", "unknown"),  # after the bracket, only ":" and a port
        ("[fe80::1%1]]", "unknown"),  # one closing bracket
        ("_obf.a-b_c", "_obf.a-b_c"),
        ("_", "unknown"),
        ("UNKNOWN", "unknown"),
        ("example.com", "unknown"),
        ("", "unknown"),
    ],
)
def test_parse_node(text: str, node: object) -> None:
    assert parse_node(text) == node


@pytest.mark.parametrize(
    ("entry", "problem"),
    [("10.0.0.0/8", None), ("127.0.0.1", None), ("::1", None), ("fd00::/8", None), ("10.0.0.1/8", None),
     ("lb.example.com", "'lb.example.com' is neither an IP address nor a CIDR range (names are not accepted)"),
     ("*", "'*' is neither an IP address nor a CIDR range (names are not accepted)"),
     ("", "an empty entry matches nothing"), (" ", "an empty entry matches nothing"),
     ("10.0.0.0/33", "'10.0.0.0/33' is neither an IP address nor a CIDR range (names are not accepted)")],
)
def test_trusted_entries_are_addresses_and_ranges_only(entry: str, problem: str | None) -> None:
    assert trusted_entry_problem(entry) == problem


@pytest.mark.parametrize(
    ("entries", "trusted", "untrusted"),
    [
        # What check-config accepts is what is trusted: a range written with host bits set is its network.
        (["10.1.2.3/8"], ["10.0.0.0", "10.200.0.1", "10.255.255.255"], ["11.0.0.1", "9.255.255.255"]),
        # A two-address range (a point-to-point link) is both of its addresses.
        (["192.0.2.8/31", "2001:db8::/127"], ["192.0.2.8", "192.0.2.9", "2001:db8::", "2001:db8::1"],
         ["192.0.2.7", "192.0.2.10", "2001:db8::2"]),
        # An IPv4-mapped entry is the IPv4 address, as a peer on a dual-stack socket is read.
        (["::ffff:192.0.2.9"], ["192.0.2.9", "::ffff:192.0.2.9"], ["192.0.2.8"]),
        # So is an IPv4-mapped range, host bits and all; ::ffff:0:0/96 is every IPv4 address.
        (["::ffff:10.1.2.3/104"], ["10.0.0.1", "::ffff:10.255.0.1"], ["11.0.0.1", "::ffff:11.0.0.1", "2001:db8::1"]),
        (["::ffff:0.0.0.0/96"], ["192.0.2.1", "::ffff:203.0.113.5"], ["2001:db8::1"]),
        # Text that is no address is never trusted, even where every address is.
        (["0.0.0.0/0", "::/0"], ["203.0.113.9", "2001:db8::9"], ["unknown", "_hidden", "", "garbage", None]),
    ],
)
def test_what_is_trusted(entries: list[str], trusted: list[str], untrusted: list[str | None]) -> None:
    proxies = TrustedProxies(entries)
    assert [a for a in trusted if not proxies.trusts(a)] == []
    assert [a for a in untrusted if proxies.trusts(a)] == []


@pytest.mark.parametrize("entries", [["127.0.0.1"], ["127.0.0.0/8"], ["::ffff:127.0.0.1"], ["::1", "127.0.0.1/32"]])
@pytest.mark.parametrize("family", ["x-forwarded", "forwarded"])
def test_one_trusted_address_or_one_range_is_enough(entries: list[str], family: str) -> None:
    headers = (("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-Proto", "https"),
               ("Forwarded", "for=198.51.100.7;proto=https"))
    got = TrustedProxies(entries, family).view(request(LB, *headers))  # type: ignore[arg-type]
    assert got == ClientView("198.51.100.7", "https", "gw.internal:14000", ("198.51.100.7", LB), True)


def test_client_view_without_the_middleware_is_the_peer() -> None:
    assert client_view(request("::ffff:198.51.100.7")) == own("198.51.100.7")


@pytest.mark.parametrize("peer", [None, "garbage"])  # no peer address (a mocked or unix-socket request), or none readable
def test_client_view_of_a_peer_without_an_address_is_unknown(peer: str | None) -> None:
    made = make_mocked_request("GET", "/x", headers=CIMultiDict([("Host", "gw.internal:14000")])).clone(remote=peer)
    assert client_view(made) == own("unknown")


# -- properties ---------------------------------------------------------------------------

_ipv4 = st.ip_addresses(v=4).map(str)
_hop = st.one_of(_ipv4, st.ip_addresses(v=6).map(str), st.sampled_from(["unknown", "_x", "junk", "", "[::1]:1"]))


@given(hops=st.lists(_hop, max_size=8), peer=_ipv4.filter(lambda a: not ipaddress.ip_address(a).is_private))
def test_an_untrusted_peer_changes_nothing(hops: list[str], peer: str) -> None:
    headers = (("X-Forwarded-For", ", ".join(hops)), ("X-Forwarded-Host", "evil.example"),
               ("X-Forwarded-Proto", "https"), ("Forwarded", ", ".join(f'for="{h}"' for h in hops)))
    for family in ("x-forwarded", "forwarded"):
        assert view(peer, *headers, family=family) == own(peer)


@given(prefix=st.lists(_hop, max_size=5), client=_ipv4, trusted_hops=st.lists(
    st.ip_addresses(network="10.0.0.0/8").map(str), max_size=4))
def test_what_lies_left_of_the_client_never_matters(prefix: list[str], client: str, trusted_hops: list[str]) -> None:
    # A client may write anything into the headers it sends; the trusted hops append after it.
    trusted = TrustedProxies(TRUSTED)
    if trusted.trusts(client):
        return
    with_prefix = view(LB, ("X-Forwarded-For", ", ".join([*prefix, client, *trusted_hops])))
    without = view(LB, ("X-Forwarded-For", ", ".join([client, *trusted_hops])))
    assert with_prefix == without == ClientView(client, "http", "gw.internal:14000", (client, *trusted_hops, LB), True)


@given(st.text(max_size=80))
def test_any_forwarded_header_is_read_without_error(text: str) -> None:
    elements = parse_forwarded([text])
    assert all(isinstance(e, ForwardedElement) for e in elements)
    got = view(LB, ("Forwarded", text.replace("\r", "").replace("\n", "")), family="forwarded")
    assert got.chain[-1] == LB and all(TrustedProxies(TRUSTED).trusts(hop) for hop in got.chain[1:])


@given(st.text(max_size=40))
def test_any_node_is_an_address_or_an_identifier(text: str) -> None:
    node = parse_node(text)
    assert isinstance(node, (ipaddress.IPv4Address, ipaddress.IPv6Address)) or node == "unknown" or node.startswith("_")
