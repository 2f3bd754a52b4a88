"""No CORS grant leaves the gateway, whatever its backend answers (gateway.proxy, gateway.csrf).

The backend stands in for HttpFS or a NameNode with Hadoop's CrossOriginFilter
on (hadoop.http.cross-origin.enabled): it grants every origin every header,
the CSRF one included.  A page of another origin must still not be able to
send that header with the user's credentials, nor read the answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.gwsetup import Setup, mint, start_gateway

ServerFactory = Callable[..., Awaitable[TestServer]]
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
GRANTS = {
    "Access-Control-Allow-Origin": "https://evil.example",
    "Access-Control-Allow-Credentials": "true",
    "Access-Control-Allow-Headers": "X-Requested-With,Content-Type,Accept,Origin,X-XSRF-HEADER",
    "Access-Control-Allow-Methods": "GET,POST,PUT,DELETE,OPTIONS",
    "Access-Control-Allow-Private-Network": "true",
    "Access-Control-Expose-Headers": "Location",
    "Access-Control-Max-Age": "1800",
}


async def cors_everywhere(request: web.Request) -> web.StreamResponse:
    return web.json_response({"boolean": True}, headers=GRANTS)


@pytest.fixture
async def gw(tmp_path: Path, aiohttp_server: ServerFactory) -> Setup:
    backend_app = web.Application()
    backend_app.router.add_route("*", "/{tail:.*}", cors_everywhere)
    backend = await aiohttp_server(backend_app)
    # Anonymous allowed: a preflight, which carries no credentials, then reaches the backend.
    return await start_gateway(aiohttp_server, tmp_path, str(backend.make_url("")).rstrip("/"),
                               extra="[auth.simple]\nanonymous_allowed = true\n", backend='dialect = "webhdfs"')


async def test_a_preflight_that_reaches_a_cors_granting_backend_grants_nothing(gw: Setup) -> None:
    resp, _ = await gw.request("OPTIONS", "/webhdfs/v1/user/alice/f?op=TRUNCATE&newlength=0", headers={
        "User-Agent": CHROME, "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-xsrf-header"})
    assert resp.status == 200  # the backend answered
    assert [h for h in resp.headers if h.lower().startswith("access-control-")] == []


async def test_no_answer_lets_another_origin_read_it(gw: Setup) -> None:
    for method, headers in (("GET", {}), ("POST", {"X-XSRF-HEADER": ""})):
        resp, _ = await gw.request(method, "/webhdfs/v1/user/alice/f?op=GETFILESTATUS", headers={
            "User-Agent": CHROME, "Origin": "https://evil.example", "Cookie": f"hadoop.auth={mint('alice')}",
            **headers})
        assert resp.status == 200
        assert [h for h in resp.headers if h.lower().startswith("access-control-")] == []
