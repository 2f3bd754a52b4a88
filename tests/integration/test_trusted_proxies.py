"""Trusted proxies over real loopback sockets, in front of an external backend: what the backend
is told (X-Forwarded-*) and how its redirects and JSON URLs are rewritten for the client."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.gwsetup import Setup, mint, start_gateway

ServerFactory = Callable[..., Awaitable[TestServer]]
TRUST_LOOPBACK = '[server]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8"]\n'


def backend() -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        me = f"http://{request.host}"
        if request.path == "/redirect":
            raise web.HTTPTemporaryRedirect(f"{me}/elsewhere?x=1")
        return web.json_response({"headers": [[k, v] for k, v in request.headers.items()], "self": f"{me}/a"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
def setup(tmp_path: Path, aiohttp_server: ServerFactory) -> Callable[[str], Awaitable[Setup]]:
    async def make(extra: str = "") -> Setup:
        url = str((await aiohttp_server(backend())).make_url("")).rstrip("/")
        return await start_gateway(aiohttp_server, tmp_path, url, extra)

    return make


CLAIMS = [
    ("X-Forwarded-For", "198.51.100.7, 10.0.0.2"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "files.example.com"),
]


def forwarded_to_backend(body: bytes) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for name, value in json.loads(body)["headers"]:
        if name.lower().startswith(("x-forwarded-", "forwarded")) and name.lower() != "x-forwarded-user":
            seen.setdefault(name.lower(), []).append(value)
    return seen


@pytest.mark.parametrize("trusted", [False, True])
async def test_the_backend_is_told_only_what_was_verified(
    setup: Callable[[str], Awaitable[Setup]], trusted: bool
) -> None:
    s = await setup(TRUST_LOOPBACK if trusted else "")
    gateway_host = s.url.split("//")[1]
    resp, body = await s.get("/a", headers=[("Cookie", f"hadoop.auth={mint('bob')}"), *CLAIMS])
    assert resp.status == 200
    if trusted:
        assert forwarded_to_backend(body) == {
            "x-forwarded-for": ["198.51.100.7, 10.0.0.2, 127.0.0.1"],
            "x-forwarded-proto": ["https"],
            "x-forwarded-host": ["files.example.com"],
        }
        assert json.loads(body)["self"] == "https://files.example.com/a"  # a JSON URL of the backend, rewritten
    else:
        assert forwarded_to_backend(body) == {
            "x-forwarded-for": ["127.0.0.1"], "x-forwarded-proto": ["http"], "x-forwarded-host": [gateway_host]}
        assert json.loads(body)["self"] == f"{s.url}/a"


@pytest.mark.parametrize("trusted", [False, True])
async def test_a_redirect_uses_the_forwarded_scheme_and_host_only_when_trusted(
    setup: Callable[[str], Awaitable[Setup]], trusted: bool
) -> None:
    s = await setup(TRUST_LOOPBACK if trusted else "")
    resp, _ = await s.get("/redirect", headers=[("Cookie", f"hadoop.auth={mint('bob')}"), *CLAIMS])
    assert resp.status == 307
    expected = "https://files.example.com" if trusted else s.url
    assert resp.headers["Location"] == f"{expected}/elsewhere?x=1"


async def test_a_bad_forwarded_host_from_a_trusted_proxy_is_not_used(setup: Callable[[str], Awaitable[Setup]]) -> None:
    s = await setup(TRUST_LOOPBACK)
    resp, _ = await s.get("/redirect", headers=[("Cookie", f"hadoop.auth={mint('bob')}"),
                                                ("X-Forwarded-Host", "evil.example/@x"), ("X-Forwarded-Proto", "https")])
    assert resp.headers["Location"] == f"https://{s.url.split('//')[1]}/elsewhere?x=1"


@pytest.mark.parametrize("port", ["\u00b2", "\u0664\u0664\u0663"])  # a superscript two; Arabic-Indic 443
async def test_a_port_of_other_digits_from_a_trusted_proxy_is_not_used(
    setup: Callable[[str], Awaitable[Setup]], port: str
) -> None:
    # str.isdigit() holds for these, but a port is ASCII digits: the header is ignored, never a 500.
    s = await setup(TRUST_LOOPBACK)
    resp, body = await s.get("/a", headers=[("Cookie", f"hadoop.auth={mint('bob')}"), ("X-Forwarded-Port", port)])
    assert resp.status == 200, body
    assert forwarded_to_backend(body)["x-forwarded-host"] == [s.url.split("//")[1]]
