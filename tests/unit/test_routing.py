"""The longest-prefix router, and the conformance every dialect shares."""

from __future__ import annotations

import json
import posixpath
import re
import urllib.parse

import pytest
import yarl
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.dialects import DIALECTS, SCRUBBED_PARAMS, DataNodeRedirects, Dialect
from gateway.dialects._rewrite import OriginReplacer
from gateway.identity import IdentitySigner
from gateway.routing import AmbiguousPath, Route, Router
from gateway.wire import WireFormat


def dialect(name: str = "hoop", backend_url: str = "http://backend:14000") -> Dialect:
    return DIALECTS[name](backend_url=backend_url, identity_header="X-Forwarded-User", signer=None)


def router(*prefixes: str) -> Router:
    return Router(Route(p, f"http://b{i}", dialect()) for i, p in enumerate(prefixes))


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("/", "/"),
        ("/a", "/"),
        ("/webhdfs/v1/", "/webhdfs/v1/"),
        ("/webhdfs/v1/a/b", "/webhdfs/v1/"),
        ("/webhdfs/v1", "/webhdfs/v1/"),
        ("/webhdfs/v1x", "/webhdfs/"),
        ("/webhdfs/v2/a", "/webhdfs/"),
        ("/webhdfs", "/webhdfs/"),
        ("/WEBHDFS/v1/a", "/"),
        ("/api/v1/paths//a/exists", "/api/v1/"),
        ("/api/v1/streams/1/read", "/api/v1/streams/"),
        ("/webhdfs/v1/a%20b/../c", "/webhdfs/v1/"),
        ("/webhdfs/v1/a%2Fb", "/webhdfs/v1/"),
        ("/api/v1/paths//a//b/./exists", "/api/v1/"),
        ("/x/%2e%2e/y", "/"),
        ("//x", "/"),
        ("/webhdfs/v1/a;b/c", "/webhdfs/v1/"),  # a path parameter inside the route: Jetty's reading agrees
        ("/webhdfs/v1/a%3Bb", "/webhdfs/v1/"),  # an escaped ';' is part of the name, never a parameter
        ("/webhdfs%3B/v1/a", "/"),  # a directory "webhdfs;" to Jetty too
    ],
)
def test_the_longest_prefix_wins(path: str, prefix: str) -> None:
    r = router("/", "/webhdfs/v1/", "/webhdfs/", "/api/v1/", "/api/v1/streams/")
    assert r.resolve(path).prefix == prefix


@pytest.mark.parametrize(
    ("path", "decoded_route"),
    [
        ("/%77ebhdfs/v1/a", "/webhdfs/v1/"),
        ("/webhdfs%2Fv1/a", "/webhdfs/v1/"),
        ("/x/../webhdfs/v1/a", "/webhdfs/v1/"),
        ("/x/%2e%2e/api/v1/paths//a/exists", "/api/v1/"),
        ("//webhdfs/v1/a", "/webhdfs/v1/"),
        ("/webhdfs/v1/../../x", "/"),
        ("/webhdfs/v1/%2e%2e/x", "/webhdfs/"),
        ("/api/v1/streams/./../x", "/api/v1/"),
        # Jetty and Tomcat drop a segment's ";parameters" before they map a path.
        ("/webhdfs;/v1/a", "/webhdfs/v1/"),
        ("/api/v1;jsessionid=1/paths//a/exists", "/api/v1/"),
        ("/webhdfs/v1;x", "/webhdfs/v1/"),
        ("/x/..;/webhdfs/v1/a", "/webhdfs/v1/"),
        ("/;x/api/v1/paths//a", "/api/v1/"),
    ],
)
def test_a_path_that_decodes_into_another_route_is_ambiguous(path: str, decoded_route: str) -> None:
    """A backend decodes escapes and dot segments: the raw path must not pick a different route than that."""
    r = router("/", "/webhdfs/v1/", "/webhdfs/", "/api/v1/", "/api/v1/streams/")
    with pytest.raises(AmbiguousPath) as caught:
        r.resolve(path)
    assert str(caught.value) == decoded_route


@given(st.text(alphabet="/.%2efwebhdsv1api;3B=", max_size=24))
def test_a_path_resolves_as_a_backend_would_read_it_or_not_at_all(tail: str) -> None:
    """What an aiohttp backend sees (escapes decoded), that with its dot segments resolved,
    and what Jetty sees (each segment's ``;parameters`` dropped, then decoded and resolved)
    all lead to the route the gateway chose."""
    r = router("/", "/webhdfs/v1/", "/webhdfs/", "/api/v1/", "/api/v1/streams/")
    path = "/" + tail
    try:
        route = r.resolve(path)
    except AmbiguousPath:
        return
    seen = yarl.URL.build(path=path, encoded=True).path
    assert r.resolve(seen) is route
    normal = posixpath.normpath("/" + seen.lstrip("/")) + ("/" if seen.endswith("/") else "")
    assert r.resolve(normal.replace("//", "/")) is route
    jetty = urllib.parse.unquote(re.sub(r";[^/]*", "", path))
    jetty = posixpath.normpath("/" + jetty.lstrip("/")) + ("/" if jetty.endswith("/") else "")
    assert r.resolve(jetty.replace("//", "/")) is route


def test_order_of_declaration_does_not_matter() -> None:
    assert router("/api/", "/", "/api/v1/").resolve("/api/v1/x").prefix == "/api/v1/"
    assert router("/api/v1/", "/api/", "/").resolve("/api/v2").prefix == "/api/"
    assert router("/", "/api/").default.prefix == "/"


@pytest.mark.parametrize(
    ("prefixes", "message"),
    [
        (("/", "api/"), "must start and end with '/'"),
        (("/", "/api"), "must start and end with '/'"),
        (("/", "/a?b/"), "without '?' or '#'"),
        (("/", "/api/", "/api/"), "given twice"),
        (("/api/",), "a route for '/' is required"),
    ],
)
def test_bad_route_sets_are_refused(prefixes: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        router(*prefixes)


# -- every dialect -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_every_dialect_scrubs_identity_parameters_in_every_spelling(name: str) -> None:
    d = dialect(name)
    target = d.target("/a?op=x&USER.NAME=root&doAs=root;Delegation=t&user%2Ename=r&d%6Fas=r&keep=1", "bob")
    path, _, query = target.partition("?")
    assert path == "/a"
    names = [pair.partition("=")[0].lower() for pair in query.replace(";", "&").split("&")]
    assert names[:2] == ["op", "keep"]
    assert set(names[2:]) <= {"user.name"}
    assert "root" not in target and "delegation" not in target.lower()


@pytest.mark.parametrize(
    ("name", "query", "fmt"),
    [
        ("hoop", "user.name=bob", WireFormat.HOOP),
        ("webhdfs", "user.name=bob", WireFormat.WEBHDFS),
        ("alluxio", "", WireFormat.ALLUXIO),
        ("generic", "", WireFormat.HOOP),
    ],
)
def test_each_dialects_identity_and_format(name: str, query: str, fmt: WireFormat) -> None:
    d = dialect(name)
    assert d.wire_format is fmt
    assert d.target("/a?user.name=root", "bob") == ("/a?" + query if query else "/a")
    assert d.target("/a", "bob") == ("/a?" + query if query else "/a")


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_every_dialect_sends_the_identity_header_signed(name: str) -> None:
    signer = IdentitySigner(b"s" * 32)
    d = DIALECTS[name](backend_url="http://backend:1", identity_header="X-User", signer=signer)
    request = make_mocked_request("GET", "/a?doas=root")
    forward = d.forward(request, "/a?doas=root", "bob")
    headers = dict(forward.headers)
    assert headers["X-User"] == "bob"
    assert signer.verify(headers["X-Authgateway-Signature"], "bob", "GET", forward.target)
    assert set(d.reserved_headers) == {"X-User", "X-Authgateway-Signature"}


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_every_dialect_rewrites_backend_locations(name: str) -> None:
    d = dialect(name, "http://127.0.0.1:9870")
    request = make_mocked_request("GET", "/a", headers={"Host": "gw.example:14000"})
    headers = CIMultiDict(
        {"Location": "http://localhost:9870/webhdfs/v1/a?op=OPEN", "Content-Location": "http://elsewhere:9870/x"}
    )
    d.rewrite_response_headers(headers, request)
    assert headers["Location"] == "http://gw.example:14000/webhdfs/v1/a?op=OPEN"
    assert headers["Content-Location"] == "http://elsewhere:9870/x"


@pytest.mark.parametrize("name", sorted(DIALECTS))
@pytest.mark.parametrize("status", [400, 401, 403, 413, 417, 502, 503, 504])
def test_every_dialect_answers_the_gateways_own_statuses_as_json(name: str, status: int) -> None:
    response = dialect(name).error_response(status, "why", headers=CIMultiDict({"Retry-After": "1"}))
    assert response.content_type == "application/json"
    assert response.headers["Retry-After"] == "1"
    assert response.text is not None and "why" in json.dumps(json.loads(response.text))


def test_scrubbed_params() -> None:
    assert SCRUBBED_PARAMS == {"user.name", "doas", "delegation"}


def test_a_dialect_must_name_its_format_and_identity() -> None:
    class Incomplete(Dialect):
        name = "incomplete"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete(backend_url="", identity_header="X-User", signer=None)  # type: ignore[abstract]


# -- the backend's origin in JSON bodies -------------------------------------------

BACKEND = "http://10.0.0.7:14000"
GATEWAY = "https://gw.example"


def replace_in_pieces(data: bytes, cuts: list[int]) -> bytes:
    replacer = OriginReplacer(BACKEND, GATEWAY)
    out, last = [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        out.append(replacer.feed(data[last:cut]))
        last = cut
    out.append(replacer.feed(data[last:]))
    return b"".join(out) + replacer.finish()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"homeDir":"http:\\/\\/10.0.0.7:14000\\/user\\/bob"}', b'{"homeDir":"https:\\/\\/gw.example\\/user\\/bob"}'),
        (b'{"Location":"http://10.0.0.7:14000/webhdfs/v1/a?op=CREATE"}',
         b'{"Location":"https://gw.example/webhdfs/v1/a?op=CREATE"}'),
        (b'"HTTP://10.0.0.7:14000/x"', b'"https://gw.example/x"'),
        (b'"http://10.0.0.7:140001/x" "http://10.0.0.7:14000.evil/x"', b'"http://10.0.0.7:140001/x" "http://10.0.0.7:14000.evil/x"'),
        (b'"http://10.0.0.7:14000"', b'"https://gw.example"'),
        (b"", b""),
    ],
)
def test_the_backend_origin_is_replaced(body: bytes, expected: bytes) -> None:
    assert replace_in_pieces(body, []) == expected
    for cut in range(len(body) + 1):
        assert replace_in_pieces(body, [cut]) == expected


@given(
    st.lists(st.sampled_from([b"http://10.0.0.7:14000", b"http:\\/\\/10.0.0.7:14000", b"/", b"x", b"1", b'"', b"h"]),
             max_size=30),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
)
def test_any_split_gives_what_one_piece_gives(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    assert replace_in_pieces(data, cuts) == replace_in_pieces(data, [])


def test_every_origin_of_a_backend_list_is_replaced() -> None:
    # nn1 and nn10 begin alike: neither is taken for the other, in either order.
    for origins in (["http://nn1:9870", "http://nn10:9870"], ["http://nn10:9870", "http://nn1:9870"]):
        replacer = OriginReplacer(origins, GATEWAY)
        body = b'["http://nn1:9870/a", "http:\\/\\/nn10:9870\\/b", "http://nn1:98701/c", "http://nn2:9870/d"]'
        assert replacer.feed(body) + replacer.finish() == (
            b'["https://gw.example/a", "https:\\/\\/gw.example\\/b", "http://nn1:98701/c", "http://nn2:9870/d"]')


@given(
    st.lists(st.sampled_from([b"http://nn1:1", b"http://nn10:1", b"http:\\/\\/nn1:1", b"/", b"0", b"x"]), max_size=30),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
)
def test_several_origins_any_split_gives_what_one_piece_gives(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)

    def replaced(cuts: list[int]) -> bytes:
        replacer = OriginReplacer(["http://nn1:1", "http://nn10:1"], GATEWAY)
        out, last = [], 0
        for cut in sorted(c % (len(data) + 1) for c in cuts):
            out.append(replacer.feed(data[last:cut]))
            last = cut
        return b"".join(out) + replacer.feed(data[last:]) + replacer.finish()

    assert replaced(cuts) == replaced([])


# -- data-node redirects as opaque handles -------------------------------------------------

DN_TARGET = "/webhdfs/v1/a?op=OPEN&offset=3&namenoderpcaddress=nn.internal:8020&delegation=NN-TOKEN"


def _sealed(dn: DataNodeRedirects, node: str = "http://dn1.example:9864", target: str = DN_TARGET,
            client_query: str = "op=OPEN&user.name=knox&doas=bob&offset=3") -> str:
    return "/webhdfs/v1/a?" + dn.seal(user="knox", effective="bob", method="GET", path="/webhdfs/v1/a",
                                      client_query=client_query, scheme_node=node, target=target, now=1000)


def test_a_data_step_shows_nothing_behind_the_gateway() -> None:
    dn = DataNodeRedirects(b"k" * 32, ["dn*.example:9864"])
    step = _sealed(dn)
    # Only the client's own words in clear: the operation and its identity parameters.
    query = step.partition("?")[2]
    assert [p.partition("=")[0] for p in query.split("&")] == ["op", "user.name", "doas", "authgateway.handle"]
    assert query.startswith("op=OPEN&user.name=knox&doas=bob&authgateway.handle=")
    for secret in ("dn1", "9864", "nn.internal", "8020", "NN-TOKEN", "delegation", "offset"):
        assert secret not in step
    # Two handles for the same step differ (a fresh nonce each).
    assert _sealed(dn) != step


def test_a_data_step_opens_only_for_its_users_method_path_op_node_and_time() -> None:
    dn = DataNodeRedirects(b"k" * 32, ["dn*.example:9864"])
    step = _sealed(dn)

    def open_(raw: str = step, *, user: str = "knox", effective: str = "bob", method: str = "GET",
              now: float = 1200) -> tuple[str, str] | None:
        return dn.open(raw, user=user, effective=effective, method=method, now=now)

    assert open_() == ("http://dn1.example:9864", DN_TARGET)
    assert open_(step.replace("user.name=knox&doas=bob&", "")) is not None  # a cookie carries who it is
    assert open_(user="bob", effective="bob") is None
    assert open_(user="knox", effective="carol") is None
    assert open_(method="PUT") is None and open_(method="DELETE") is None and open_(method="POST") is None
    assert open_(step.replace("op=OPEN", "op=DELETE")) is None
    assert open_(step.replace("op=OPEN&", "")) is not None  # the op is sealed; the clear one is a courtesy
    assert open_(step.replace("/webhdfs/v1/a?", "/webhdfs/v1/b?")) is None
    assert open_(step + "&offset=0") is None  # nothing may be added to the sealed query
    assert open_(step + "&authgateway.handle=x") is None
    assert open_(now=1301) is None  # expired
    assert DataNodeRedirects(b"x" * 32, ["dn*.example:9864"]).open(
        step, user="knox", effective="bob", method="GET", now=1200) is None  # another key
    handle = step.rpartition("=")[2]
    flipped = handle[:-5] + ("A" if handle[-5] != "A" else "B") + handle[-4:]
    assert open_(step.replace(handle, flipped)) is None  # tampered
    other = _sealed(dn, node="http://evil.example:9864")
    assert open_(other) is None  # sealed, but no pattern allows the node


@pytest.mark.parametrize(
    ("target", "step"),
    [("/webhdfs/v1/a?authgateway.handle=x", True), ("/webhdfs/v1/a?AuthGateway.Sig=x", True),
     ("/webhdfs/v1/a?%61uthgateway.dn=x", True), ("/webhdfs/v1/a?op=OPEN", False),
     ("/webhdfs/v1/a?op=RENAME&destination=/authgateway", False), ("/webhdfs/v1/a%20b?op=OPEN&x=%20", False)],
)
def test_what_is_a_data_step(target: str, step: bool) -> None:
    assert DataNodeRedirects.is_data_step(target) is step



@pytest.mark.parametrize(
    ("node", "allowed"),
    [("dn1.example:9864", True), ("DN1.EXAMPLE:9864", True), ("dn1.example:9865", False), ("x.dn1.example:9864", False)],
)
def test_datanode_patterns(node: str, allowed: bool) -> None:
    assert DataNodeRedirects(b"k" * 32, ["dn*.example:9864"]).allowed(node) is allowed


# -- who may use a route ---------------------------------------------------------------


def test_a_route_without_users_or_groups_is_open_to_everyone_who_authenticated() -> None:
    asked: list[str] = []

    def groups_of(user: str) -> frozenset[str]:
        asked.append(user)
        return frozenset()

    assert Route("/", "http://b", dialect()).refusal("anyone", groups_of) is None
    assert asked == []  # no group lookup when nothing restricts the route


@pytest.mark.parametrize(
    ("user", "allowed"),
    [("alice", True), ("carol", True), ("dave", False), ("analysts", False)],
)
def test_a_route_admits_its_users_and_the_members_of_its_groups(user: str, allowed: bool) -> None:
    members = {"carol": frozenset({"analysts"}), "dave": frozenset({"ops"})}
    route = Route("/alluxio/", "http://b", dialect("alluxio"), users=frozenset({"alice"}),
                  groups=frozenset({"analysts"}))
    why = route.refusal(user, lambda u: members.get(u, frozenset()))
    assert (why is None) == allowed
    if not allowed:
        assert why == f"User {user} may not use /alluxio/"
