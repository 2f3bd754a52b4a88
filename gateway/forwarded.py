"""Who the client is, as far as the gateway can vouch for it: trusted proxies.

A client's TCP peer may be a proxy (a load balancer, nginx) that says in
``X-Forwarded-For``/``-Proto``/``-Host``/``-Port`` or in RFC 7239
``Forwarded`` whom it forwards for.  Those headers are believed only when
the peer is one of ``server.trusted_proxies``, and only the one family
``server.forwarded_headers`` names; from anyone else they are ignored (and,
as every ``X-Forwarded-*``, ``Forwarded`` and ``X-Real-IP`` header, never
passed to a backend: the proxy sends its own).

The client address is found as nginx's ``real_ip_recursive`` finds it:
walking the list of hops from the right (the hop our peer added) past every
address that is itself a trusted proxy; the first one that is not is the
client.  A hop that is no address (``unknown``, an obfuscated ``_name``, or
garbage) ends the walk: the client is then ``unknown``, an address no
``hosts`` rule but ``*`` admits.

The result is one :class:`ClientView` per request, set by the route
middleware before anything else reads it (:data:`CLIENT`; read it with
:func:`client_view`): the address for logs and proxy-user ``hosts`` rules,
the scheme and host for the URLs the gateway writes, and the chain of
verified hops for the ``X-Forwarded-For`` the backend gets.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from aiohttp import hdrs, web

__all__ = (
    "CLIENT",
    "ClientView",
    "ForwardedElement",
    "TrustedProxies",
    "client_view",
    "ip_address_of",
    "ip_network_of",
    "parse_forwarded",
    "parse_node",
    "trusted_entry_problem",
)

HeaderFamily = Literal["x-forwarded", "forwarded"]
UNKNOWN: Final = "unknown"  # RFC 7239's name for a hop that cannot be named

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# A host as a URL may carry it: a name or IPv4 address, or a bracketed IPv6 one, with an optional port.
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")  # RFC 7239 6.3 obfnode
_PORT = re.compile(r"[0-9]{1,5}|_[A-Za-z0-9._-]+")  # RFC 7239 6.1 node-port, possibly obfuscated
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class ClientView:
    """The client of one request as verified.

    ``address`` is an IP address (the TCP peer's as the socket gave it when
    no proxy is trusted, else in its normal form), or ``unknown``;
    ``scheme`` and ``host`` are how the client addressed the gateway (for
    the URLs it writes); ``chain`` the verified hops, the client first and
    the TCP peer last, as the gateway's ``X-Forwarded-For`` lists them.
    ``vouched``: a trusted proxy gave ``scheme`` and ``host`` (its headers,
    or the ``Host`` it sent); else they are the client's own word, fit to
    write into a URL for that client but never to decide what is the
    gateway's.
    """

    address: str
    scheme: str
    host: str
    chain: tuple[str, ...]
    vouched: bool = False


CLIENT = web.RequestKey("client", ClientView)
"""The request's :class:`ClientView`, set before authentication."""


def client_view(request: web.Request) -> ClientView:
    """The request's :class:`ClientView`: the one the gateway set, else its TCP peer's own view
    (a request that never reached the gateway's middleware, say one aiohttp refused itself)."""
    view = request.get(CLIENT)
    if view is None:
        peer = _normal(request.remote)
        view = ClientView(peer, request.scheme, request.host, (peer,))
    return view


def ip_address_of(text: str) -> _Address | None:
    """``text`` as an IP address (without a zone; an IPv4-mapped IPv6 one as IPv4), or ``None``.

    The one reading of an address for every rule that compares them (trusted
    proxies here, proxy users' hosts), so both see a peer alike.
    """
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def ip_network_of(text: str) -> _Network:
    """``text`` as a CIDR range (host bits may be set); an IPv4-mapped IPv6 range as the IPv4 one.

    Peers are compared as IPv4 when they come IPv4-mapped (:func:`ip_address_of`),
    so a range written ``::ffff:10.0.0.0/104`` must be ``10.0.0.0/8`` to
    match them.  Raises ``ValueError`` for what is no range.
    """
    network = ipaddress.ip_network(text, strict=False)
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((int(mapped), network.prefixlen - 96))
    return network


def _normal(peer: str | None) -> str:
    address = ip_address_of(peer) if peer else None
    return UNKNOWN if address is None else str(address)


def parse_node(text: str) -> _Address | str:
    """One hop as a proxy writes it: an address, or the identifier that stands for one.

    Accepts ``192.0.2.1``, ``192.0.2.1:8080``, ``2001:db8::1``,
    ``[2001:db8::1]``, ``[2001:db8::1]:8080`` (ports are dropped),
    ``unknown`` and an obfuscated ``_name`` (returned as text); anything
    else is :data:`UNKNOWN`.
    """
    text = text.strip()
    if text.startswith("["):
        inside, sep, rest = text[1:].partition("]")
        if not sep or (rest and not (rest[0] == ":" and _PORT.fullmatch(rest[1:]))):
            return UNKNOWN
        address = ip_address_of(inside) if ":" in inside else None  # brackets hold IPv6 only
        return UNKNOWN if address is None else address
    if text.count(":") == 1:  # IPv4 with a port (a bare IPv6 address has at least two colons)
        host, port = text.split(":")
        if not _PORT.fullmatch(port):
            return UNKNOWN
        text = host
    address = ip_address_of(text)
    if address is not None:
        return address
    if text.lower() == UNKNOWN:
        return UNKNOWN
    if _OBFUSCATED.fullmatch(text):
        return text
    return UNKNOWN


@dataclass(frozen=True, slots=True)
class ForwardedElement:
    """One element of an RFC 7239 ``Forwarded`` header (what one proxy said); ``None``: not given.

    ``valid`` is false when the element could not be read; nothing else in it is then meaningful.
    """

    for_: str | None = None
    proto: str | None = None
    host: str | None = None
    valid: bool = True


_BAD_ELEMENT = ForwardedElement(valid=False)
_PAIR = re.compile(
    r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,"\s]*)\s*'
)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def parse_forwarded(lines: Iterable[str]) -> list[ForwardedElement]:
    """The elements of every ``Forwarded`` line, in order (RFC 7239 4).

    Elements are read one by one, so one that cannot be read (returned with
    ``valid`` false) leaves the others readable.  Parameter names are
    compared in any case; a parameter given twice makes its element invalid;
    quoted values are unquoted.
    """
    elements: list[ForwardedElement] = []
    for line in lines:
        for raw in _split_outside_quotes(line, ","):
            if not raw.strip():
                continue  # empty list elements are allowed (RFC 9110 5.6.1)
            pairs: dict[str, str] = {}
            valid = True
            for part in _split_outside_quotes(raw, ";"):
                if not part.strip():
                    continue
                match = _PAIR.fullmatch(part)
                if match is None:
                    valid = False
                    break
                name, value = match.group(1).lower(), match.group(2)
                if value.startswith('"'):
                    value = re.sub(r"\\(.)", r"\1", value[1:-1])
                if name in pairs:
                    valid = False
                    break
                pairs[name] = value
            elements.append(
                ForwardedElement(pairs.get("for"), pairs.get("proto"), pairs.get("host")) if valid else _BAD_ELEMENT
            )
    return elements


def trusted_entry_problem(entry: str) -> str | None:
    """Why ``entry`` cannot be in ``server.trusted_proxies``, or ``None``."""
    text = entry.strip()
    if not text:
        return "an empty entry matches nothing"
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return f"{entry!r} is neither an IP address nor a CIDR range (names are not accepted)"
    return None


def _scheme(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    return value if value in _DEFAULT_PORTS else None


def _host(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not _HOST.fullmatch(value):
        return None
    _, colon, port = value.rpartition(":")
    if colon and not value.endswith("]") and not 0 < int(port) < 65536:  # the pattern allows 5 digits
        return None
    return value


def _last(request: web.Request, name: str) -> str | None:
    """The last value of a comma-separated header: what our peer itself wrote."""
    lines = request.headers.getall(name, ())
    return lines[-1].rsplit(",", 1)[-1].strip() if lines else None


def _with_port(host: str, port: str | None, scheme: str) -> str:
    """``host`` with its port replaced by ``port`` (left out when the scheme's default)."""
    # ASCII only: str.isdigit() also holds for "²" (which int() refuses) and for other scripts' digits.
    if port is None or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        return host
    name = host.rsplit(":", 1)[0] if not host.endswith("]") and ":" in host else host
    return name if int(port) == _DEFAULT_PORTS[scheme] else f"{name}:{int(port)}"


class TrustedProxies:
    """The configured trusted proxies, compiled once; :meth:`view` reads one request."""

    __slots__ = ("_addresses", "_family", "_networks")

    def __init__(self, entries: Iterable[str], family: HeaderFamily = "x-forwarded") -> None:
        addresses: set[_Address] = set()
        networks: list[_Network] = []
        for entry in entries:
            network = ip_network_of(entry.strip())  # ValueError: check-config said so
            if network.num_addresses == 1:
                address = ip_address_of(str(network.network_address))
                assert address is not None
                addresses.add(address)
            else:
                networks.append(network)
        self._addresses = frozenset(addresses)
        self._networks = tuple(networks)
        self._family = family

    def trusts(self, address: _Address | str | None) -> bool:
        """Whether ``address`` (an address, or its text) is a trusted proxy."""
        if isinstance(address, str):
            address = ip_address_of(address)
        if address is None:
            return False
        return address in self._addresses or any(address in network for network in self._networks)

    def view(self, request: web.Request) -> ClientView:
        """Who ``request``'s client is, believing forwarded headers only from a trusted peer."""
        if not (self._addresses or self._networks):  # the default: nothing to parse on the hot path
            text = request.remote or UNKNOWN
            return ClientView(text, request.scheme, request.host, (text,))
        peer = ip_address_of(request.remote) if request.remote else None
        if peer is None or not self.trusts(peer):
            text = UNKNOWN if peer is None else str(peer)
            return ClientView(text, request.scheme, request.host, (text,))
        if self._family == "forwarded":
            return self._from_forwarded(request, peer)
        return self._from_x_forwarded(request, peer)

    def _walk(self, hops: list[_Address | str]) -> tuple[str, int]:
        """The client among ``hops`` (nearest last) and its index, walking past trusted addresses."""
        for index in range(len(hops) - 1, -1, -1):
            hop = hops[index]
            if isinstance(hop, str):
                return UNKNOWN, index  # no address: nothing left of it can be vouched for
            if not self.trusts(hop) or index == 0:
                return str(hop), index
        raise AssertionError("unreachable: called with at least one hop")

    def _from_x_forwarded(self, request: web.Request, peer: _Address) -> ClientView:
        items = [item for line in request.headers.getall(hdrs.X_FORWARDED_FOR, ()) for item in line.split(",")]
        hops: list[_Address | str] = [parse_node(item) if item.strip() else UNKNOWN for item in items]
        chain: tuple[str, ...] = (str(peer),)
        address = str(peer)
        if hops:
            address, start = self._walk(hops)
            chain = (address, *(str(h) for h in hops[start + 1 :]), str(peer))
        scheme = _scheme(_last(request, hdrs.X_FORWARDED_PROTO)) or request.scheme
        host = _host(_last(request, hdrs.X_FORWARDED_HOST)) or request.host
        return ClientView(address, scheme, _with_port(host, _last(request, "X-Forwarded-Port"), scheme), chain, True)

    def _from_forwarded(self, request: web.Request, peer: _Address) -> ClientView:
        elements = parse_forwarded(request.headers.getall(hdrs.FORWARDED, ()))
        if not elements:
            return ClientView(str(peer), request.scheme, request.host, (str(peer),), True)
        hops: list[_Address | str] = [
            parse_node(e.for_) if e.valid and e.for_ is not None else UNKNOWN for e in elements
        ]
        address, start = self._walk(hops)
        # What the proxy that met the client said about how it was addressed.
        said = elements[start]
        scheme = (_scheme(said.proto) if said.valid else None) or request.scheme
        host = (_host(said.host) if said.valid else None) or request.host
        chain = (address, *(str(h) for h in hops[start + 1 :]), str(peer))
        return ClientView(address, scheme, host, chain, True)
