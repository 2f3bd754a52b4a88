"""Routes over real loopback sockets: each prefix's backend gets its requests,
the gateway's own answers come in the route's error format (a 401 challenge
too, since the route is resolved before authentication), and identity
spoofing is scrubbed on every route."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.cookie import CookieCodec, KeyRing
from tests.integration.gwsetup import KEY, Setup, cookie_from, mint, start_gateway

ServerFactory = Callable[..., Awaitable[TestServer]]


def echo(name: str) -> web.Application:
    """A backend that says who it is and what reached it."""

    async def handle(request: web.Request) -> web.Response:
        return web.json_response(
            {"backend": name, "raw_path": request.raw_path, "headers": [[k, v] for k, v in request.headers.items()]}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
async def routed(tmp_path: Path, aiohttp_server: ServerFactory) -> Setup:
    """``/`` -> backend ``main`` (hoop, via [backend]); three more routes, two of them to backend ``other``."""
    main = str((await aiohttp_server(echo("main"))).make_url("")).rstrip("/")
    other = str((await aiohttp_server(echo("other"))).make_url("")).rstrip("/")
    routes = f"""
[[routes]]
prefix = "/webhdfs/v1/"
backend = "{other}"
dialect = "webhdfs"
[[routes]]
prefix = "/api/v1/"
backend = "{other}"
dialect = "alluxio"
[[routes]]
prefix = "/plain/"
backend = "{main}"
dialect = "generic"
"""
    return await start_gateway(aiohttp_server, tmp_path, main, routes)


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/webhdfs/v1/tmp?op=LISTSTATUS", {"RemoteException": {
            "exception": "SecurityException", "javaClassName": "java.lang.SecurityException",
            "message": "Authentication required"}}),
        ("/webhdfs/v1?op=GETHOMEDIRECTORY", {"RemoteException": {
            "exception": "SecurityException", "javaClassName": "java.lang.SecurityException",
            "message": "Authentication required"}}),
        ("/api/v1/paths//tmp/get-status", {"statusCode": "UNAUTHENTICATED", "message": "Authentication required"}),
        ("/tmp?op=list", {"statusCode": 401, "reason": "Unauthorized", "message": "Authentication required",
                          "exception": "AuthenticationException"}),
        ("/webhdfs/v2/x", {"statusCode": 401, "reason": "Unauthorized", "message": "Authentication required",
                           "exception": "AuthenticationException"}),
        ("/plain/x", {"statusCode": 401, "reason": "Unauthorized", "message": "Authentication required",
                      "exception": "AuthenticationException"}),
    ],
)
async def test_a_challenge_comes_in_the_routes_format(routed: Setup, target: str, body: object) -> None:
    resp, raw = await routed.get(target)
    assert resp.status == 401
    assert resp.headers.getall("WWW-Authenticate") == ["PseudoAuth"]
    assert resp.content_type == "application/json"
    assert json.loads(raw) == body


async def test_a_refusal_comes_in_the_routes_format(routed: Setup) -> None:
    resp, raw = await routed.get("/webhdfs/v1/x?op=OPEN&user.name=a%20b")
    assert resp.status == 400
    assert json.loads(raw)["RemoteException"]["exception"] == "IllegalArgumentException"
    resp, raw = await routed.get("/api/v1/paths//x/exists?user.name=a%20b")
    assert resp.status == 400  # the client's fault: never counted as a server error
    assert json.loads(raw)["statusCode"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("target", "backend", "forwarded"),
    [
        ("/webhdfs/v1/a?op=OPEN", "other", "/webhdfs/v1/a?op=OPEN&user.name=bob"),
        ("/webhdfs/v1?op=GETHOMEDIRECTORY", "other", "/webhdfs/v1?op=GETHOMEDIRECTORY&user.name=bob"),
        ("/api/v1/paths//a/get-status", "other", "/api/v1/paths//a/get-status"),
        ("/plain/a?x=1", "main", "/plain/a?x=1"),
        ("/a?op=list", "main", "/a?op=list&user.name=bob"),
        ("/api/v1x", "main", "/api/v1x?user.name=bob"),
    ],
)
async def test_each_prefix_reaches_its_backend(routed: Setup, target: str, backend: str, forwarded: str) -> None:
    sep = "&" if "?" in target else "?"
    resp, raw = await routed.get(f"{target}{sep}user.name=bob")
    assert resp.status == 200, raw
    doc = json.loads(raw)
    assert doc["backend"] == backend
    assert doc["raw_path"] == forwarded
    assert ["X-Forwarded-User", "bob"] in doc["headers"]


# A doas naming the authenticated user itself is no request to act for another: it is only scrubbed.
SPOOFS = "user.name=root&User.Name=root&doas=bob&DoAs=bob&delegation=tok&DELEGATION=tok&user%2Ename=root;d%6Fas=bob"


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        ("/webhdfs/v1/a", "?op=x&user.name=bob"),
        ("/api/v1/paths//a/exists", "?op=x"),
        ("/plain/a", "?op=x"),
        ("/a", "?op=x&user.name=bob"),
    ],
)
async def test_spoofing_is_scrubbed_on_every_route(routed: Setup, path: str, identity: str) -> None:
    resp, raw = await routed.get(
        f"{path}?op=x&{SPOOFS}",
        headers=[
            ("Cookie", f"hadoop.auth={mint('bob')}"),
            ("X-Forwarded-User", "root"),
            ("X_Forwarded_User", "root"),
            ("X-Authgateway-Signature", "1:" + "0" * 64),
        ],
    )
    assert resp.status == 200, raw
    doc = json.loads(raw)
    assert doc["raw_path"] == path + identity
    names = [k.lower() for k, _ in doc["headers"]]
    headers = {k.lower(): v for k, v in doc["headers"]}
    assert names.count("x-forwarded-user") == 1 and headers["x-forwarded-user"] == "bob"
    assert "x_forwarded_user" not in names
    assert names.count("x-authgateway-signature") == 1 and headers["x-authgateway-signature"] != "1:" + "0" * 64


@pytest.mark.parametrize(
    ("target", "key"),
    [
        ("/%77ebhdfs/v1/a?op=LISTSTATUS", "exception"),  # "/" route: Hoop's format
        ("/x/../api/v1/paths//a/exists", "exception"),
        ("/webhdfs%2Fv1/a?op=OPEN", "exception"),
        ("/webhdfs/v1/../../a?op=list", "RemoteException"),  # the raw path's route answers
        ("/api/v1/paths/%2e%2e/%2e%2e/%2e%2e/plain/x", "statusCode"),
    ],
)
async def test_a_path_that_decodes_into_another_route_is_refused(routed: Setup, target: str, key: str) -> None:
    """Escapes and dot segments cannot steer a request past its route's dialect (and its identity)."""
    resp, raw = await routed.get(target + ("&" if "?" in target else "?") + "user.name=bob")
    assert resp.status == 400, raw
    doc = json.loads(raw)
    assert key in doc and "decoded" in json.dumps(doc), doc
    resp, raw = await routed.get(target, headers={"Cookie": f"hadoop.auth={mint('bob')}"})
    assert resp.status == 400 and "backend" not in json.loads(raw)


@pytest.mark.parametrize(
    ("path", "key", "status"),
    [
        ("/webhdfs/v1/a?op=LISTSTATUS", "RemoteException", 403),
        ("/api/v1/paths//a/exists", "statusCode", 500),  # the Alluxio proxy answers its failures with 500
        ("/a?op=list", "exception", 403),
    ],
)
@pytest.mark.parametrize("doas", ["doas=root", "DoAs=root", "d%6Fas=root"])
async def test_a_doas_no_rule_allows_is_refused_in_the_routes_format(
    routed: Setup, path: str, key: str, status: int, doas: str
) -> None:
    sep = "&" if "?" in path else "?"
    resp, raw = await routed.get(f"{path}{sep}{doas}", headers={"Cookie": f"hadoop.auth={mint('bob')}"})
    assert resp.status == status, raw
    doc = json.loads(raw)
    assert key in doc and "User: bob is not allowed to impersonate root" in raw.decode()
    assert "backend" not in doc


async def test_two_different_doas_are_a_bad_request(routed: Setup) -> None:
    resp, raw = await routed.get("/a?op=list&doas=carol&DOAS=dave", headers={"Cookie": f"hadoop.auth={mint('bob')}"})
    assert resp.status == 400 and json.loads(raw)["message"] == "doas is given more than once"


async def test_a_cookie_from_one_route_serves_every_route(routed: Setup) -> None:
    resp, _ = await routed.get("/a?user.name=bob")
    cookie = resp.headers["Set-Cookie"].split(";", 1)[0]
    resp, raw = await routed.get("/api/v1/paths//a/exists", headers={"Cookie": cookie})
    assert resp.status == 200
    assert json.loads(raw)["backend"] == "other"


async def test_a_dead_backend_answers_in_its_routes_format(tmp_path: Path, aiohttp_server: ServerFactory) -> None:
    from tests.conftest import free_port

    main = str((await aiohttp_server(echo("main"))).make_url("")).rstrip("/")
    dead = f"http://127.0.0.1:{free_port()}"
    routes = f'[[routes]]\nprefix = "/webhdfs/v1/"\nbackend = "{dead}"\ndialect = "webhdfs"\n'
    setup = await start_gateway(aiohttp_server, tmp_path, main, routes)
    resp, raw = await setup.get("/webhdfs/v1/a?op=OPEN&user.name=bob")
    assert resp.status == 502
    assert json.loads(raw) == {"RemoteException": {
        "exception": "IOException", "javaClassName": "java.io.IOException", "message": "the backend is unreachable"}}
    resp, raw = await setup.get("/a?user.name=bob")
    assert resp.status == 200 and json.loads(raw)["backend"] == "main"


async def test_the_embedded_default_routes(tmp_path: Path, aiohttp_server: ServerFactory) -> None:
    """Without [[routes]] or backend.url, /webhdfs/v1/ and /api/v1/ speak their own dialects to the embedded
    backend (an echo here, standing at the address the embedded backend would have)."""
    from gateway.app import build_gateway_app
    from gateway.config import load_config
    from gateway.cookie import KeyRing
    from tests.integration.gwsetup import IDENTITY_KEY, KEY

    config = load_config(None, env={"AUTHGATEWAY_EMBEDDED__ROOT": str(tmp_path / "data")})
    assert config.embedded_mode
    embedded = str((await aiohttp_server(echo("embedded"))).make_url("")).rstrip("/")
    app = build_gateway_app(config, keyring=KeyRing([KEY]), backend_url=embedded, identity_key=IDENTITY_KEY)
    setup = Setup(await aiohttp_server(app), config)
    expected = {
        "/webhdfs/v1/a?op=OPEN": ("RemoteException", "/webhdfs/v1/a?op=OPEN&user.name=bob"),
        "/api/v1/paths//a/exists": ("statusCode", "/api/v1/paths//a/exists"),
        "/a?op=open": ("exception", "/a?op=open&user.name=bob"),
    }
    for target, (key, forwarded) in expected.items():
        resp, raw = await setup.get(target)
        assert resp.status == 401 and key in json.loads(raw), (target, raw)
        resp, raw = await setup.get(target, headers={"Cookie": f"hadoop.auth={mint('bob')}"})
        doc = json.loads(raw)
        assert (doc["backend"], doc["raw_path"]) == ("embedded", forwarded)
        assert any(k == "X-Authgateway-Signature" for k, _ in doc["headers"])


def self_naming(name: str) -> web.Application:
    """A backend that puts its own address in JSON, as HttpFS (homeDir, path) and WebHDFS (noredirect) do."""

    async def handle(request: web.Request) -> web.StreamResponse:
        me = f"http://{request.host}"
        if request.path == "/chunked":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for piece in ('{"FileStatuses":[', *[f'{{"path":"{me}/f{i}"}},' for i in range(3000)], "{}]}"):
                await response.write(piece.replace("/", "\\/").encode())
            await response.write_eof()
            return response
        if request.path == "/data":
            return web.Response(body=f"{me}/not-json".encode(), content_type="application/octet-stream")
        if "noredirect" in request.query_string:
            return web.json_response({"Location": f"{me}/webhdfs/v1/a?op=CREATE&data=true"})
        return web.Response(text=json.dumps({"homeDir": f"{me}/user/bob"}).replace("/", "\\/"),
                            content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
async def naming(tmp_path: Path, aiohttp_server: ServerFactory) -> tuple[Setup, str]:
    backend = str((await aiohttp_server(self_naming("b"))).make_url("")).rstrip("/")
    routes = f'[[routes]]\nprefix = "/webhdfs/v1/"\nbackend = "{backend}"\ndialect = "webhdfs"\n'
    return await start_gateway(aiohttp_server, tmp_path, backend, routes), backend


async def test_backend_urls_in_json_point_at_the_gateway(naming: tuple[Setup, str]) -> None:
    setup, backend = naming
    cookie = {"Cookie": f"hadoop.auth={mint('bob')}"}
    resp, raw = await setup.get("/?op=homedir", headers=cookie)
    assert json.loads(raw) == {"homeDir": f"{setup.url}/user/bob"}
    assert resp.headers["Content-Length"] == str(len(raw))
    resp, raw = await setup.get("/webhdfs/v1/a?op=CREATE&noredirect=true", headers=cookie)
    assert json.loads(raw) == {"Location": f"{setup.url}/webhdfs/v1/a?op=CREATE&data=true"}
    resp, raw = await setup.get("/chunked", headers=cookie)
    paths = [s.get("path") for s in json.loads(raw)["FileStatuses"]]
    assert paths[:-1] == [f"{setup.url}/f{i}" for i in range(3000)]
    assert backend.encode() not in raw.replace(b"\\/", b"/")
    resp, raw = await setup.get("/data", headers=cookie)
    assert raw == f"{backend}/not-json".encode()  # file data is never touched


async def test_a_strange_host_makes_the_urls_paths(naming: tuple[Setup, str]) -> None:
    setup, backend = naming
    resp, raw = await setup.get("/?op=homedir", headers={"Cookie": f"hadoop.auth={mint('bob')}", "Host": 'a"b'})
    assert json.loads(raw) == {"homeDir": "/user/bob"}


# -- data-node redirects --------------------------------------------------------------


def namenode(datanode: str) -> web.Application:
    """Redirects data steps to ``datanode`` as a NameNode does (its token and its RPC address in the URL);
    a path ending in ``/far`` to a node no pattern allows, one ending in ``/self`` to the gateway as the
    ``X-Forwarded-*`` headers name it (as the embedded backend does), ``/forged`` to the node the
    client's ``Host`` names."""

    async def handle(request: web.Request) -> web.Response:
        user = request.query.get("user.name", "")
        op = request.query.get("op", "")
        node = datanode
        if request.path.endswith("/far"):
            node = "http://10.1.2.3:9864"
        elif request.path.endswith("/self"):
            node = f"{request.headers['X-Forwarded-Proto']}://{request.headers['X-Forwarded-Host']}"
        elif request.path.endswith("/forged"):
            node = f"http://{request.headers['X-Forwarded-Host']}"
        location = f"{node}{request.path}?op={op}&namenoderpcaddress=nn.internal:8020&user.name={user}&delegation=NN-TOKEN"
        if request.query.get("noredirect") == "true":
            return web.json_response({"Location": location})
        raise web.HTTPTemporaryRedirect(location)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def datanode() -> web.Application:
    """Echoes as :func:`echo` does, with the ``Location`` a DataNode's CREATE answers 201 with: the file in
    the NameNode's own terms (Hadoop's ``WebHdfsHandler``: ``hdfs://<namenoderpcaddress><path>``)."""

    async def handle(request: web.Request) -> web.Response:
        doc = {"backend": "datanode", "raw_path": request.raw_path,
               "headers": [[k, v] for k, v in request.headers.items()]}
        await request.read()
        return web.json_response(doc, status=201 if request.query.get("op") == "CREATE" else 200,
                                 headers={"Location": f"hdfs://nn.internal:8020{request.path}"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def datanode_gateway(
    tmp_path: Path, aiohttp_server: ServerFactory, server: str = "", datanodes: str = '["127.0.0.1:*"]'
) -> tuple[Setup, str]:
    """A gateway with a WebHDFS route to a :func:`namenode` whose DataNode a pattern allows; the DataNode's URL.
    ``server``: lines for ``[server]``; ``datanodes``: the route's patterns."""
    main = str((await aiohttp_server(echo("main"))).make_url("")).rstrip("/")
    dn = str((await aiohttp_server(datanode())).make_url("")).rstrip("/")
    nn = str((await aiohttp_server(namenode(dn))).make_url("")).rstrip("/")
    routes = f"""
[server]
{server}
[[routes]]
prefix = "/webhdfs/v1/"
backend = "{nn}"
dialect = "webhdfs"
datanodes = {datanodes}
"""
    return await start_gateway(aiohttp_server, tmp_path, main, routes), dn


@pytest.fixture
async def datanode_setup(tmp_path: Path, aiohttp_server: ServerFactory) -> tuple[Setup, str]:
    return await datanode_gateway(tmp_path, aiohttp_server)


BEHIND = ("delegation", "NN-TOKEN", "namenoderpcaddress", "nn.internal", "8020")


def assert_opaque(location: str, setup: Setup, dn: str) -> str:
    """``location`` is a gateway URL that shows nothing behind the gateway; its origin-form target."""
    assert location.startswith(f"{setup.url}/webhdfs/v1/"), location
    target = location[len(setup.url):]
    for secret in (*BEHIND, dn.rpartition(":")[2]):
        assert secret not in target, (secret, location)
    query = target.partition("?")[2]
    assert {p.partition("=")[0] for p in query.split("&")} <= {"op", "user.name", "doas", "authgateway.handle"}
    return target


async def test_a_datanode_redirect_goes_through_the_gateway_as_an_opaque_handle(
    datanode_setup: tuple[Setup, str],
) -> None:
    setup, dn = datanode_setup
    bob = {"Cookie": f"hadoop.auth={mint('bob')}"}
    resp, _ = await setup.request("PUT", "/webhdfs/v1/a?op=CREATE&user.name=root", headers=bob)
    assert resp.status == 307
    target = assert_opaque(resp.headers["Location"], setup, dn)
    assert target.startswith("/webhdfs/v1/a?op=CREATE&user.name=root&authgateway.handle=")
    resp, raw = await setup.request("PUT", target, headers=bob, data=b"data")
    assert resp.status == 201, raw
    # The DataNode names the file as hdfs://<namenoderpcaddress>/...: the client gets the gateway's URL of it.
    assert resp.headers["Location"] == f"{setup.url}/webhdfs/v1/a"
    doc = json.loads(raw)
    assert doc["backend"] == "datanode"
    # The NameNode's query, its token too, reaches the data node as the NameNode wrote it.
    assert doc["raw_path"] == (
        "/webhdfs/v1/a?op=CREATE&namenoderpcaddress=nn.internal:8020&user.name=bob&delegation=NN-TOKEN"
    )
    assert [v for k, v in doc["headers"] if k == "X-Forwarded-User"] == ["bob"]

    alice = {"Cookie": f"hadoop.auth={mint('alice')}"}
    resp, raw = await setup.request("PUT", target, headers=alice, data=b"data")
    assert resp.status == 403
    assert json.loads(raw)["RemoteException"]["exception"] == "AccessControlException"
    handle = target.rpartition("=")[2]
    for tampered in (target.replace("op=CREATE", "op=APPEND"), target.replace(handle, handle[:-2] + "AA"),
                     target + "&authgateway.handle=x", target + "&overwrite=true",
                     target.replace("/webhdfs/v1/a?", "/webhdfs/v1/b?")):
        resp, raw = await setup.request("PUT", tampered, headers=bob, data=b"data")
        assert resp.status == 403, tampered


async def test_a_cookieless_client_follows_the_handle_with_its_own_user_name(
    datanode_setup: tuple[Setup, str],
) -> None:
    setup, dn = datanode_setup
    resp, _ = await setup.request("PUT", "/webhdfs/v1/a?op=CREATE&user.name=bob")
    assert resp.status == 307
    target = assert_opaque(resp.headers["Location"], setup, dn)
    resp, raw = await setup.request("PUT", target, data=b"data")
    assert resp.status == 201, raw
    assert json.loads(raw)["backend"] == "datanode"


@pytest.mark.parametrize(("made_for", "used_as"), [("GET", "PUT"), ("GET", "DELETE"), ("GET", "POST"), ("PUT", "GET")])
async def test_a_handle_is_good_for_its_method_only(
    datanode_setup: tuple[Setup, str], aiohttp_server: ServerFactory, made_for: str, used_as: str
) -> None:
    setup, dn = datanode_setup
    bob = {"Cookie": f"hadoop.auth={mint('bob')}"}
    op = "OPEN" if made_for == "GET" else "CREATE"
    resp, _ = await setup.request(made_for, f"/webhdfs/v1/a?op={op}", headers=bob)
    target = assert_opaque(resp.headers["Location"], setup, dn)
    resp, raw = await setup.request(used_as, target, headers=bob, data=b"body")
    assert resp.status == 403, raw
    assert json.loads(raw)["RemoteException"]["exception"] == "AccessControlException"
    resp, raw = await setup.request(made_for, target, headers=bob)
    assert resp.status == (200 if made_for == "GET" else 201) and json.loads(raw)["backend"] == "datanode"
    assert resp.headers["Location"] == f"{setup.url}/webhdfs/v1/a"


async def test_a_redirect_to_a_node_no_pattern_allows_is_dropped(datanode_setup: tuple[Setup, str]) -> None:
    setup, _ = datanode_setup
    resp, raw = await setup.get("/webhdfs/v1/far?op=OPEN", headers={"Cookie": f"hadoop.auth={mint('bob')}"})
    assert resp.status == 307
    assert "Location" not in resp.headers
    assert b"10.1.2.3" not in raw


async def test_a_noredirect_location_is_an_opaque_handle_or_refused(datanode_setup: tuple[Setup, str]) -> None:
    setup, dn = datanode_setup
    bob = {"Cookie": f"hadoop.auth={mint('bob')}"}
    resp, raw = await setup.request("PUT", "/webhdfs/v1/a?op=CREATE&noredirect=true", headers=bob)
    assert resp.status == 200
    target = assert_opaque(json.loads(raw)["Location"], setup, dn)
    assert target.startswith("/webhdfs/v1/a?op=CREATE&authgateway.handle=")
    resp, raw = await setup.request("PUT", target, headers=bob, data=b"x")
    assert json.loads(raw)["raw_path"] == (
        "/webhdfs/v1/a?op=CREATE&namenoderpcaddress=nn.internal:8020&user.name=bob&delegation=NN-TOKEN"
    )
    resp, raw = await setup.request("PUT", "/webhdfs/v1/far?op=OPEN&noredirect=true", headers=bob)
    assert b"10.1.2.3" not in raw
    assert json.loads(raw)["RemoteException"]["exception"] == "AccessControlException"


@pytest.mark.parametrize("noredirect", [False, True])
@pytest.mark.parametrize("node", ["10.9.9.9:9864", "dn"])
async def test_a_forged_host_unmasks_no_datanode_redirect(
    datanode_setup: tuple[Setup, str], node: str, noredirect: bool
) -> None:
    """The client's ``Host`` naming the node (one no pattern allows, or the real one) makes its URL
    look like the gateway's own: the gateway must not believe it."""
    setup, dn = datanode_setup
    host = dn.partition("://")[2] if node == "dn" else node
    query = "op=OPEN&noredirect=true" if noredirect else "op=OPEN"
    resp, raw = await setup.get(f"/webhdfs/v1/forged?{query}",
                                headers={"Cookie": f"hadoop.auth={mint('bob')}", "Host": host})
    location = json.loads(raw).get("Location") if noredirect else resp.headers.get("Location")
    for secret in BEHIND:
        assert secret not in (location or ""), location
        assert secret.encode() not in raw
    if node == "dn":  # a node a pattern allows: through the gateway, as the client addressed it
        assert location is not None and location.startswith(f"http://{host}/webhdfs/v1/forged?op=OPEN&authgateway.handle=")
    else:
        assert location is None


async def test_only_a_trusted_proxy_vouches_for_the_gateways_own_urls(
    tmp_path: Path, aiohttp_server: ServerFactory
) -> None:
    """A backend that names the gateway as ``X-Forwarded-Host`` said (the embedded backend's upload
    redirect) keeps its URL when a trusted proxy gave that host; from a direct client, whose ``Host``
    is only its word, only when it names the port the client's connection reached."""
    setup, _ = await datanode_gateway(tmp_path, aiohttp_server, 'trusted_proxies = ["127.0.0.1"]')
    bob = {"Cookie": f"hadoop.auth={mint('bob')}"}
    resp, _ = await setup.get("/webhdfs/v1/self?op=OPEN",
                              headers={**bob, "X-Forwarded-Host": "gw.example", "X-Forwarded-Proto": "https"})
    assert resp.headers["Location"].startswith("https://gw.example/webhdfs/v1/self?op=OPEN&namenoderpc")
    (tmp_path / "direct").mkdir()
    direct, _ = await datanode_gateway(tmp_path / "direct", aiohttp_server)
    port = direct.url.rpartition(":")[2]
    for host in ("gw.example", f"localhost:{port}"):
        resp, _ = await direct.get("/webhdfs/v1/self?op=OPEN", headers={**bob, "Host": host})
        assert resp.status == 307 and "Location" not in resp.headers, host
    # Without data-node patterns (a backend like the embedded one, not a NameNode), from a direct
    # client, the gateway's own URL on the port its connection reached is believed; another is not.
    (tmp_path / "plain").mkdir()
    plain, _ = await datanode_gateway(tmp_path / "plain", aiohttp_server, datanodes="[]")
    port = plain.url.rpartition(":")[2]
    resp, _ = await plain.get("/webhdfs/v1/self?op=OPEN", headers={**bob, "Host": f"localhost:{port}"})
    assert resp.headers["Location"].startswith(f"http://localhost:{port}/webhdfs/v1/self?op=OPEN&namenoderpc")
    resp, _ = await plain.get("/webhdfs/v1/forged?op=OPEN", headers={**bob, "Host": "10.9.9.9:9864"})
    assert resp.status == 307 and "Location" not in resp.headers


async def test_without_datanode_patterns_no_redirect_leaves_the_gateway(
    tmp_path: Path, aiohttp_server: ServerFactory
) -> None:
    # A NameNode's redirects to its DataNodes are refused unless a pattern allows them:
    # the client is never sent to, nor told of, an address behind the gateway.
    main = str((await aiohttp_server(echo("main"))).make_url("")).rstrip("/")
    dn = str((await aiohttp_server(echo("datanode"))).make_url("")).rstrip("/")
    nn = str((await aiohttp_server(namenode(dn))).make_url("")).rstrip("/")
    routes = f'\n[[routes]]\nprefix = "/webhdfs/v1/"\nbackend = "{nn}"\ndialect = "webhdfs"\n'
    setup = await start_gateway(aiohttp_server, tmp_path, main, routes)
    bob = {"Cookie": f"hadoop.auth={mint('bob')}"}
    resp, raw = await setup.request("PUT", "/webhdfs/v1/a?op=CREATE", headers=bob)
    assert resp.status == 307
    assert "Location" not in resp.headers
    assert dn.split(":")[-1].encode() not in raw
    resp, raw = await setup.request("PUT", "/webhdfs/v1/a?op=CREATE&noredirect=true", headers=bob)
    assert json.loads(raw) == {"RemoteException": {
        "exception": "AccessControlException",
        "javaClassName": "org.apache.hadoop.security.AccessControlException",
        "message": "the data node is not one this gateway may forward to",
    }}


# -- acting for others, and who may use a route (in process, so mutation testing sees them) --


@pytest.fixture
async def guarded(tmp_path: Path, aiohttp_server: ServerFactory) -> Setup:
    """``/`` open to all; ``/api/v1/`` (alluxio) only for hdfs and analysts; knox may act for bob and analysts."""
    main = str((await aiohttp_server(echo("main"))).make_url("")).rstrip("/")
    extra = f"""
[groups]
static = ["analysts:carol"]
[[routes]]
prefix = "/api/v1/"
backend = "{main}"
dialect = "alluxio"
users = ["hdfs"]
groups = ["analysts"]
[[proxy_users]]
user = "knox"
users = ["bob"]
groups = ["analysts"]
hosts = ["127.0.0.0/8", "::1"]
"""
    return await start_gateway(aiohttp_server, tmp_path, main, extra)


@pytest.mark.parametrize("spelling", ["doas", "DoAs", "d%6Fas"])
@pytest.mark.parametrize("effective", ["bob", "carol"])
async def test_an_allowed_doas_reaches_the_backend_as_that_user(guarded: Setup, effective: str, spelling: str) -> None:
    resp, raw = await guarded.get(f"/a?op=list&{spelling}={effective}", headers={"Cookie": f"hadoop.auth={mint('knox')}"})
    assert resp.status == 200, raw
    doc = json.loads(raw)
    assert doc["raw_path"] == f"/a?op=list&user.name={effective}"
    assert ["X-Forwarded-User", effective] in doc["headers"]
    assert "Set-Cookie" not in resp.headers  # the session stays knox's; nothing new is issued


async def test_a_doas_after_a_handshake_keeps_the_new_cookie_the_authenticated_users(guarded: Setup) -> None:
    resp, raw = await guarded.get("/a?op=list&user.name=knox&doas=bob")
    assert resp.status == 200, raw
    assert json.loads(raw)["raw_path"] == "/a?op=list&user.name=bob"
    token = CookieCodec(KeyRing([KEY]), schemes=["simple"]).decode(cookie_from(resp), time.time())
    assert token is not None and token.user == "knox"


@pytest.mark.parametrize(
    ("real", "effective", "message"),
    [
        ("knox", "dave", "User: knox is not allowed to impersonate dave"),
        ("bob", "knox", "User: bob is not allowed to impersonate knox"),
    ],
)
async def test_a_doas_the_rules_refuse_is_403(
    guarded: Setup, real: str, effective: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="gateway.auth"):
        resp, raw = await guarded.get(f"/a?doas={effective}", headers={"Cookie": f"hadoop.auth={mint(real)}"})
    assert resp.status == 403
    assert json.loads(raw)["message"] == message
    assert [r.getMessage() for r in caplog.records if r.name == "gateway.auth"] == [
        f"impersonation refused user={real} doas={effective} remote=127.0.0.1 reason={message}"]


@pytest.mark.parametrize("doas", ["doas=bad/name", "doas=%20x"])
async def test_a_doas_that_is_no_user_name_is_400(guarded: Setup, doas: str) -> None:
    resp, raw = await guarded.get(f"/a?{doas}", headers={"Cookie": f"hadoop.auth={mint('knox')}"})
    assert resp.status == 400
    assert json.loads(raw)["message"].startswith("doas ")


@pytest.mark.parametrize(
    ("user", "doas", "allowed"),
    [("hdfs", "", True), ("carol", "", True), ("dave", "", False), ("knox", "carol", True), ("knox", "bob", False)],
)
async def test_a_route_admits_only_its_users_and_groups(
    guarded: Setup, user: str, doas: str, allowed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    query = f"?doas={doas}" if doas else ""
    with caplog.at_level("INFO", logger="gateway.auth"):
        resp, raw = await guarded.get(f"/api/v1/paths//a/exists{query}", headers={"Cookie": f"hadoop.auth={mint(user)}"})
    acting = doas or user
    if allowed:
        assert resp.status == 200, raw
        assert ["X-Forwarded-User", acting] in json.loads(raw)["headers"]
    else:
        assert (resp.status, json.loads(raw)) == (
            500, {"statusCode": "PERMISSION_DENIED", "message": f"User {acting} may not use /api/v1/"})
        assert [r.getMessage() for r in caplog.records if r.name == "gateway.auth"] == [
            f"authorization refused user={acting} authenticated={user} remote=127.0.0.1 "
            f"reason=User {acting} may not use /api/v1/"]
    # The open route admits everyone who authenticated.
    resp, _ = await guarded.get(f"/a{query}", headers={"Cookie": f"hadoop.auth={mint(user)}"})
    assert resp.status == 200


@pytest.mark.parametrize(
    "path",
    ["/api/v1;/paths//a/exists", "/api/v1;jsessionid=1/paths//a/exists", "/x/..;/api/v1/paths//a/exists",
     "/api;/v1/paths//a/exists"],
)
async def test_path_parameters_do_not_lead_around_a_routes_users(guarded: Setup, path: str) -> None:
    """Jetty and Tomcat (HttpFS, the NameNode) read ``/api/v1;x/...`` as ``/api/v1/...``: so must the routing,
    or the ``/`` route would carry dave to what ``/api/v1/`` keeps from him."""
    resp, raw = await guarded.get(path, headers={"Cookie": f"hadoop.auth={mint('dave')}"})
    assert resp.status == 400, raw
    assert json.loads(raw)["exception"] == "IllegalArgumentException"  # the "/" route's (Hoop's) format
    assert b"main" not in raw


async def test_path_parameters_inside_a_route_still_reach_it(guarded: Setup) -> None:
    # Within one route a ';' changes nothing about who may go where: passed on byte for byte.
    for path in ("/a;b/c?op=list", "/a%3Bb?op=list"):
        resp, raw = await guarded.get(path, headers={"Cookie": f"hadoop.auth={mint('dave')}"})
        assert resp.status == 200, raw
        assert json.loads(raw)["raw_path"] == f"{path}&user.name=dave"


async def test_hdfscli_writes_and_reads_through_the_handles(datanode_setup: tuple[Setup, str]) -> None:
    """A real WebHDFS client (HdfsCLI, no cookie jar across its calls: user.name on each) follows the
    opaque redirects for CREATE and OPEN as it followed the NameNode's own."""
    import hdfs

    setup, _ = datanode_setup
    client = hdfs.InsecureClient(setup.url, user="bob")

    def work() -> bytes:
        client.write("/a", data=b"hello", overwrite=True)
        with client.read("/a") as reader:
            return bytes(reader.read())

    doc = json.loads(await asyncio.to_thread(work))
    assert doc["backend"] == "datanode"
    assert doc["raw_path"] == "/webhdfs/v1/a?op=OPEN&namenoderpcaddress=nn.internal:8020&user.name=bob&delegation=NN-TOKEN"
