"""The gateway in front of a recording backend, over real loopback sockets.

The backend here is a test double of *someone else's* server: it records
exactly what reached it, so we can assert what the gateway forwards.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from gateway.app import build_gateway_app
from gateway.cookie import CookieCodec, KeyRing
from gateway.identity import SIGNATURE_HEADER, IdentitySigner
from tests.integration.gwsetup import IDENTITY_KEY, KEY, OLD_KEY, Setup, cookie_from, make_config, mint, start_gateway

ServerFactory = Callable[..., Awaitable[TestServer]]


async def recorder(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    path = request.path
    if path == "/redirect":
        port = request.url.port
        raise web.HTTPTemporaryRedirect(f"http://127.0.0.1:{port}/elsewhere?x=1")
    if path == "/gzip":
        return web.Response(body=gzip.compress(b"hello" * 100), headers={"Content-Encoding": "gzip"})
    if path == "/slow":
        await asyncio.sleep(5)
    if path == "/big":
        size = int(request.query["size"])
        resp = web.StreamResponse()
        resp.content_length = size
        await resp.prepare(request)
        block = b"x" * 65536
        sent = 0
        while sent < size:
            n = min(len(block), size - sent)
            await resp.write(block[:n])
            sent += n
        await resp.write_eof()
        return resp
    return web.json_response(
        {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": [[k, v] for k, v in request.headers.items()],
            "sha256": hashlib.sha256(body).hexdigest(),
            "length": len(body),
        },
        headers={
            "Set-Cookie": "hadoop.auth=backend-token; Path=/",
            "WWW-Authenticate": "Negotiate",
            "X-Backend": "yes",
            "Connection": "X-Backend-Private",
            "X-Backend-Private": "hop",
        },
    )


@pytest.fixture
async def setup(tmp_path: Path, aiohttp_server: ServerFactory) -> Callable[..., Awaitable[Setup]]:
    async def make(extra: str = "", keys: tuple[bytes, ...] = (KEY,), backend_app: web.Application | None = None) -> Setup:
        if backend_app is None:
            backend_app = web.Application()
            backend_app.router.add_route("*", "/{tail:.*}", recorder)
        backend = await aiohttp_server(backend_app)
        backend_url = str(backend.make_url("")).rstrip("/")
        return await start_gateway(aiohttp_server, tmp_path, backend_url, extra, keys)

    return make


async def test_no_credentials_gets_a_challenge_in_hoop_json(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup()
    resp, body = await s.get("/a?op=list")
    assert resp.status == 401
    assert resp.headers.getall("WWW-Authenticate") == ["PseudoAuth"]
    assert resp.content_type == "application/json"
    assert json.loads(body) == {
        "statusCode": 401, "reason": "Unauthorized", "message": "Authentication required",
        "exception": "AuthenticationException",
    }
    assert "Set-Cookie" not in resp.headers


async def test_pseudo_login_sets_the_cookie_and_forwards_identity(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup()
    resp, body = await s.get("/a?op=homedir&user.name=bob")
    assert resp.status == 200
    set_cookie = resp.headers.getall("Set-Cookie")
    assert len(set_cookie) == 1, "the backend's hadoop.auth cookie must not pass"
    attrs = [a.strip() for a in set_cookie[0].split(";")]
    assert attrs[0].startswith("hadoop.auth=")
    assert "HttpOnly" in attrs and "Path=/" in attrs and "SameSite=Lax" in attrs
    assert "Secure" not in attrs
    max_age = int(next(a for a in attrs if a.startswith("Max-Age="))[8:])
    assert 3590 <= max_age <= 3600
    seen = json.loads(body)
    headers = {k.lower(): v for k, v in seen["headers"]}
    assert headers["x-forwarded-user"] == "bob"
    assert seen["raw_path"] == "/a?op=homedir&user.name=bob"
    assert IdentitySigner(IDENTITY_KEY).verify(headers[SIGNATURE_HEADER.lower()], "bob", "GET", seen["raw_path"])
    assert "www-authenticate" not in {k.lower() for k in resp.headers}
    assert resp.headers["X-Backend"] == "yes"
    assert "X-Backend-Private" not in resp.headers, "headers named in Connection are hop-by-hop"

    cookie = cookie_from(resp)
    resp2, body2 = await s.get("/b?op=status", headers={"Cookie": f"hadoop.auth={cookie}"})
    assert resp2.status == 200
    assert "Set-Cookie" not in resp2.headers, "a valid cookie is not re-issued"
    assert json.loads(body2)["raw_path"] == "/b?op=status&user.name=bob"


async def test_raw_target_is_forwarded_byte_for_byte(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup()
    cookie = mint("bob")
    target = "//api//v1/paths//py-test%2Fdir%20x/?op=list&filter=a%2A%3F&x=1+2;y"
    resp, body = await s.get(target, headers={"Cookie": f"hadoop.auth={cookie}"})
    assert resp.status == 200
    assert json.loads(body)["raw_path"] == "//api//v1/paths//py-test%2Fdir%20x/?op=list&filter=a%2A%3F&x=1+2;y&user.name=bob"


async def test_spoofing_is_scrubbed(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup()
    cookie = mint("bob")
    resp, body = await s.get(
        # A doas naming the user itself asks for nothing (another user's is refused: test_routes).
        "/a?op=list&user.name=root&USER.NAME=root;user%2Ename=root&doas=bob&DOAS=bob",
        headers=[
            ("Cookie", f"theme=dark; hadoop.auth={cookie}; other=1"),
            ("X-Forwarded-User", "root"),
            ("x-forwarded-user", "root2"),
            ("X_Forwarded_User", "root3"),
            ("X-Authgateway-Signature", "1:" + "0" * 64),
            ("Authorization", "Basic cm9vdDpyb290"),
            ("Proxy-Authorization", "Basic cm9vdDpyb290"),
            ("X-Forwarded-For", "10.9.9.9"),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Port", "443"),
            ("X_Forwarded_Server", "evil.example"),
            ("Forwarded", "for=10.9.9.9;proto=https;host=evil.example"),
            ("X-Real-IP", "10.9.9.9"),
        ],
    )
    assert resp.status == 200
    seen = json.loads(body)
    names = [k.lower() for k, _ in seen["headers"]]
    headers = {k.lower(): v for k, v in seen["headers"]}
    assert seen["raw_path"] == "/a?op=list&user.name=bob"
    assert names.count("x-forwarded-user") == 1 and headers["x-forwarded-user"] == "bob"
    assert "x_forwarded_user" not in names
    assert names.count("x-authgateway-signature") == 1
    assert "authorization" not in names and "proxy-authorization" not in names
    assert headers["cookie"] == "theme=dark; other=1"
    # The client's claims about hops are dropped (its peer is no trusted proxy): only the gateway's own.
    assert [n for n in names if n.startswith("x-forwarded-") and n != "x-forwarded-user"] == [
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]
    assert "forwarded" not in names and "x-real-ip" not in names
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-host"] == s.url.split("//")[1]
    assert headers["x-forwarded-proto"] == "http"


async def test_a_cookie_line_of_only_our_cookie_is_dropped_and_the_rest_kept(
    setup: Callable[..., Awaitable[Setup]],
) -> None:
    s = await setup()
    resp, body = await s.get(
        "/a", headers=[("Cookie", f"hadoop.auth={mint('bob')}"), ("X-After", "1"), ("Cookie", "theme=dark")]
    )
    assert resp.status == 200
    seen = [(k.lower(), v) for k, v in json.loads(body)["headers"]]
    assert ("x-after", "1") in seen
    assert [v for k, v in seen if k == "cookie"] == ["theme=dark"]
    # No X-Forwarded-For from the client: the gateway's is the peer alone.
    assert [v for k, v in seen if k == "x-forwarded-for"] == ["127.0.0.1"]


async def test_cookie_wins_over_user_name(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup()
    resp, body = await s.get("/a?user.name=root", headers={"Cookie": f"hadoop.auth={mint('bob')}"})
    assert resp.status == 200
    assert json.loads(body)["raw_path"] == "/a?user.name=bob"


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(lambda: mint("root", keys=(b"f" * 48,)), id="foreign-key"),
        pytest.param(lambda: mint("root", expires_in=-1), id="expired"),
        pytest.param(lambda: mint("root")[:-2] + "xx", id="tampered"),
        pytest.param(lambda: mint("root", scheme="kerberos"), id="wrong-scheme"),
        pytest.param(lambda: "u=root&p=root&t=simple&e=99999999999999&s=AAAA", id="hadoop-format-forgery"),
    ],
)
async def test_bad_cookies_are_ignored_and_cleared(setup: Callable[..., Awaitable[Setup]], cookie: Callable[[], str]) -> None:
    s = await setup()
    resp, body = await s.get("/a?op=list", headers={"Cookie": f"hadoop.auth={cookie()}"})
    assert resp.status == 401
    assert resp.headers.getall("WWW-Authenticate") == ["PseudoAuth"]
    (cleared,) = resp.headers.getall("Set-Cookie")
    assert cleared.startswith("hadoop.auth=;")
    assert "Max-Age=0" in cleared and "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in cleared
    # ... and the client re-authenticates with the same request plus user.name.
    resp2, body2 = await s.get("/a?op=list&user.name=bob", headers={"Cookie": f"hadoop.auth={cookie()}"})
    assert resp2.status == 200
    assert json.loads(body2)["raw_path"] == "/a?op=list&user.name=bob"


async def test_rotated_keys_keep_sessions(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup(keys=(KEY, OLD_KEY))
    resp, body = await s.get("/a", headers={"Cookie": f"hadoop.auth={mint('bob', keys=(OLD_KEY,))}"})
    assert resp.status == 200 and json.loads(body)["raw_path"] == "/a?user.name=bob"
    resp, _ = await s.get("/a?user.name=carol")
    fresh = cookie_from(resp)
    assert CookieCodec(KeyRing([KEY]), schemes=["simple"]).decode(fresh) is not None
    assert CookieCodec(KeyRing([OLD_KEY]), schemes=["simple"]).decode(fresh) is None


@pytest.mark.parametrize("name", ["bob%20smith", "..%2Froot", "a" * 65, "1x", "bob%0Aroot"])
async def test_bad_user_names_get_400(setup: Callable[..., Awaitable[Setup]], name: str) -> None:
    s = await setup()
    resp, body = await s.get(f"/a?user.name={name}")
    assert resp.status == 400
    doc = json.loads(body)
    assert doc["statusCode"] == 400 and doc["exception"] == "IllegalArgumentException"
    assert "user.name" in doc["message"]


async def test_anonymous_allowed(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup("[auth.simple]\nanonymous_allowed = true\n")
    resp, body = await s.get("/a")
    assert resp.status == 200 and json.loads(body)["raw_path"] == "/a?user.name=anonymous"


async def test_cookie_attributes_follow_config(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup('name = "gw.session"\ndomain = "example.test"\nsamesite = "Strict"\nsecure = true\npath = "/webhdfs"\n')
    resp, _ = await s.get("/a?user.name=bob")
    (header,) = resp.headers.getall("Set-Cookie")
    attrs = [a.strip() for a in header.split(";")]
    assert attrs[0].startswith("gw.session=")
    for attr in ("Domain=example.test", "SameSite=Strict", "Secure", "Path=/webhdfs", "HttpOnly"):
        assert attr in attrs
    # The backend never sees our cookie under its configured name either.
    cookie = attrs[0].split("=", 1)[1]
    resp2, body2 = await s.get("/a", headers={"Cookie": f"gw.session={cookie}; keep=1"})
    assert {k.lower(): v for k, v in json.loads(body2)["headers"]}["cookie"] == "keep=1"


async def test_redirects_are_not_followed_and_point_at_the_gateway(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup()
    resp, _ = await s.get("/redirect?user.name=bob")
    assert resp.status == 307
    assert resp.headers["Location"] == f"{s.url}/elsewhere?x=1"


async def test_bodies_are_not_decompressed(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup()
    resp, body = await s.get("/gzip?user.name=bob")
    assert resp.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == b"hello" * 100


async def test_upload_is_streamed_with_its_length(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup()
    data = bytes(range(256)) * 4096
    resp, body = await s.request("POST", "/f?op=create&user.name=bob", data=data,
                                 headers={"Content-Type": "application/octet-stream"})
    seen = json.loads(body)
    assert seen["length"] == len(data) and seen["sha256"] == hashlib.sha256(data).hexdigest()
    assert {k.lower(): v for k, v in seen["headers"]}["content-length"] == str(len(data))

    async def gen() -> Any:
        for _ in range(16):
            yield b"z" * 65536

    resp, body = await s.request("PUT", "/f?op=append&user.name=bob", data=gen())
    seen = json.loads(body)
    assert seen["length"] == 16 * 65536
    assert {k.lower(): v for k, v in seen["headers"]}.get("transfer-encoding") == "chunked"


async def test_large_download_streams(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup()
    resp, body = await s.get(f"/big?size={20 * 2**20 + 7}&user.name=bob")
    assert resp.status == 200 and len(body) == 20 * 2**20 + 7
    assert resp.headers["Content-Length"] == str(20 * 2**20 + 7)


async def test_backend_timeout_is_504(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup()
    resp, body = await s.get("/slow?user.name=bob")
    assert resp.status == 504
    doc = json.loads(body)
    assert doc["statusCode"] == 504
    assert "127.0.0.1" not in body.decode()


async def test_backend_down_is_502_without_its_address(setup: Callable[..., Awaitable[Setup]], tmp_path: Path, aiohttp_server: ServerFactory) -> None:
    from tests.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    config = make_config(tmp_path, dead)
    app = build_gateway_app(config, keyring=KeyRing([KEY]), backend_url=dead, identity_key=None)
    gateway = await aiohttp_server(app)
    async with aiohttp.ClientSession() as client:
        async with client.get(gateway.make_url("/a?user.name=bob")) as resp:
            body = await resp.text()
    assert resp.status == 502
    doc = json.loads(body)
    assert doc == {"statusCode": 502, "reason": "Bad Gateway", "message": "the backend is unreachable",
                   "exception": "BackendUnavailableException"}
    assert dead.split(":")[-1] not in body


async def _raw_exchange(url: str, head: bytes, body_part: bytes, read_first: int = 0) -> None:
    """Send ``head`` and part of a body over a raw socket, then hang up."""
    u = URL(url)
    reader, writer = await asyncio.open_connection(u.host, u.port)
    writer.write(head + body_part)
    await writer.drain()
    if read_first:
        await reader.readexactly(read_first)
    writer.transport.abort()


async def test_client_disconnect_cancels_the_upload_upstream(setup: Callable[..., Awaitable[Setup]]) -> None:
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def sink(request: web.Request) -> web.Response:
        total = 0
        try:
            async for chunk in request.content.iter_any():
                total += len(chunk)
        except BaseException as exc:  # the point of the test: what the backend saw (cancelled, too)
            outcome.set_result(f"broken after {total}: {type(exc).__name__}")
            raise
        outcome.set_result(f"complete {total}")
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", sink)
    s = await setup(backend_app=app)
    host = s.url.split("//")[1]
    head = (
        f"PUT /f?op=append&user.name=bob HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Length: {64 * 2**20}\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    await _raw_exchange(s.url, head, b"a" * 2**20)
    result = await asyncio.wait_for(outcome, 10)
    assert result.startswith("broken"), result


async def test_client_disconnect_cancels_the_download_upstream(setup: Callable[..., Awaitable[Setup]]) -> None:
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        sent = 0
        try:
            while sent < 2**34:
                await resp.write(b"d" * 65536)
                sent += 65536
        except BaseException as exc:
            outcome.set_result(f"stopped after {sent}: {type(exc).__name__}")
            raise
        outcome.set_result("sent everything")
        return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", endless)
    s = await setup(backend_app=app)
    host = s.url.split("//")[1]
    head = f"GET /f?user.name=bob HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    await _raw_exchange(s.url, head, b"", read_first=2**20)
    result = await asyncio.wait_for(outcome, 10)
    assert result.startswith("stopped"), result


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


async def test_100_continue_only_after_authentication(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup()
    u = URL(s.url)
    head = (
        "POST /f?op=create{query} HTTP/1.1\r\nHost: {host}\r\nExpect: 100-continue\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\n"
    )
    # Without credentials: refused at once, no invitation to send the body.
    reader, writer = await asyncio.open_connection(u.host, u.port)
    writer.write(head.format(query="", host=u.raw_authority).encode())
    first = await _read_head(reader)
    assert first.startswith(b"HTTP/1.1 401 "), first
    writer.close()

    # Authenticated: 100 Continue first, then the body goes through.
    reader, writer = await asyncio.open_connection(u.host, u.port)
    writer.write(head.format(query="&user.name=bob", host=u.raw_authority).encode())
    assert await _read_head(reader) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"hello")
    final = await _read_head(reader)
    assert final.startswith(b"HTTP/1.1 200 "), final
    length = int(next(line.split(b":")[1] for line in final.split(b"\r\n") if line.lower().startswith(b"content-length")))
    seen = json.loads(await reader.readexactly(length))
    assert seen["length"] == 5
    assert "expect" not in {k.lower() for k, _ in seen["headers"]}
    writer.close()


async def test_unknown_expectation_is_417(setup: Callable[..., Awaitable[Setup]]) -> None:
    s = await setup()
    resp, body = await s.request("PUT", "/f?user.name=bob", headers={"Expect": "teapot"}, data=b"x")
    assert resp.status == 417
    assert json.loads(body)["statusCode"] == 417


@pytest.mark.parametrize(
    ("request_line", "status", "forwarded"),
    [
        ("GET http://evil.example:9/x//y?op=list HTTP/1.1", 200, "/x//y?op=list&user.name=bob"),
        ("GET http://127.0.0.1:1@evil.example/?op=list HTTP/1.1", 200, "/?op=list&user.name=bob"),
        ("OPTIONS * HTTP/1.1", 400, None),
        ("CONNECT evil.example:443 HTTP/1.1", 400, None),
    ],
)
async def test_request_targets_other_than_a_path(
    setup: Callable[..., Awaitable[Setup]], request_line: str, status: int, forwarded: str | None
) -> None:
    s = await setup()
    u = URL(s.url)
    reader, writer = await asyncio.open_connection(u.host, u.port)
    writer.write(f"{request_line}\r\nHost: {u.raw_authority}\r\nCookie: hadoop.auth={mint('bob')}\r\n"
                 "Connection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    doc = json.loads(body)
    if forwarded is None:
        assert doc["statusCode"] == status
    else:
        assert doc["raw_path"] == forwarded
