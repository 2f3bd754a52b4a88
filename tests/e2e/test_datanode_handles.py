"""DataNode redirect handles across real gateways: two ``authgateway serve`` processes (two workers
each) read one keys file; a handle one hands out opens on every worker of the other, for the request
it was made for only, and shows nothing behind the gateways."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from tests.conftest import GatewayProcess, free_port
from tests.e2e.test_keys import keys_command

pytestmark = pytest.mark.timeout(120)

Start = Callable[..., GatewayProcess]


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[str, str]]:
    """A NameNode that redirects every data step to its DataNode, and that DataNode; their URLs."""

    async def datanode(request: web.Request) -> web.Response:
        return web.json_response({"backend": "datanode", "method": request.method, "raw_path": request.raw_path})

    dn_runner, dn = await _serve(_app(datanode))

    async def namenode(request: web.Request) -> web.Response:
        user = request.query.get("user.name", "")
        raise web.HTTPTemporaryRedirect(
            f"{dn}{request.path}?op={request.query.get('op')}&namenoderpcaddress=nn.internal:8020"
            f"&user.name={user}&delegation=NN-TOKEN"
        )

    nn_runner, nn = await _serve(_app(namenode))
    yield nn, dn
    await nn_runner.cleanup()
    await dn_runner.cleanup()


def _app(handler: Callable[[web.Request], object]) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)  # type: ignore[arg-type]
    return app


async def test_a_handle_from_one_gateway_opens_on_every_worker_of_another(
    gateway: Start, cluster: tuple[str, str], tmp_path: Path
) -> None:
    nn, dn = cluster
    keys = tmp_path / "keys.json"
    keys_command("new", str(keys))
    route = {"prefix": "/webhdfs/v1/", "backend": nn, "dialect": "webhdfs", "datanodes": ["127.0.0.1:*"]}
    settings = {"cookie": {"keys_file": str(keys)}, "server": {"workers": 2}, "routes": [route]}
    first, second = gateway(**settings), gateway(**settings)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as client:
        async with client.get(f"{first.url}/webhdfs/v1/f?op=OPEN&user.name=bob", allow_redirects=False) as resp:
            assert resp.status == 307
            location = resp.headers["Location"]
        for secret in ("NN-TOKEN", "delegation", "nn.internal", "namenoderpcaddress", dn.rpartition(":")[2]):
            assert secret not in location
        step = URL(location, encoded=True).raw_path_qs
        assert step.startswith("/webhdfs/v1/f?op=OPEN&user.name=bob&authgateway.handle=")
        for _ in range(8):  # new connections: both workers of the other gateway take some
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as fresh:
                async with fresh.get(URL(second.url + step, encoded=True), allow_redirects=False) as resp:
                    assert resp.status == 200, await resp.text()
                    doc = await resp.json()
            assert doc == {"backend": "datanode", "method": "GET", "raw_path":
                           "/webhdfs/v1/f?op=OPEN&namenoderpcaddress=nn.internal:8020&user.name=bob&delegation=NN-TOKEN"}
        for method in ("PUT", "DELETE"):
            async with client.request(method, URL(second.url + step, encoded=True), data=b"x") as resp:
                assert resp.status == 403
        async with client.get(URL(second.url + step.replace("user.name=bob", "user.name=eve"), encoded=True)) as resp:
            assert resp.status == 403
