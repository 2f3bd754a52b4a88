"""Building an in-process gateway in front of a test backend, for the integration tests.

The gateway runs on aiohttp's test server, which, like ``authgateway serve``,
cancels a handler whose client went away.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from yarl import URL

from gateway.app import build_gateway_app
from gateway.config import Config, load_config
from gateway.cookie import CookieCodec, KeyRing, SessionToken

KEY = b"k" * 48
OLD_KEY = b"o" * 48
IDENTITY_KEY = b"i" * 48

ServerFactory = Callable[..., Awaitable[TestServer]]


def make_config(
    tmp_path: Path, backend_url: str, extra: str = "", keys: tuple[bytes, ...] = (KEY,), backend: str = ""
) -> Config:
    """A configuration for ``backend_url``; ``backend`` adds lines to ``[backend]``, ``extra`` whole tables."""
    files = []
    for i, key in enumerate(keys):
        f = tmp_path / f"key{i}"
        f.write_bytes(key)
        files.append(str(f))
    ident = tmp_path / "identity"
    ident.write_bytes(IDENTITY_KEY)
    path = tmp_path / "gw.toml"
    path.write_text(
        f"""
[backend]
url = "{backend_url}"
identity_secret_file = "{ident}"
{backend if "read_timeout" in backend else "read_timeout = 1.0" + chr(10) + backend}
[cookie]
secret_files = {json.dumps(files)}
validity = 3600
{extra}
"""
    )
    return load_config(path, env={})


class Setup:
    def __init__(self, gateway: TestServer, config: Config) -> None:
        self.gateway, self.config = gateway, config
        self.url = str(gateway.make_url("")).rstrip("/")

    async def get(self, target: str, **kw: Any) -> tuple[aiohttp.ClientResponse, bytes]:
        return await self.request("GET", target, **kw)

    async def request(self, method: str, target: str, **kw: Any) -> tuple[aiohttp.ClientResponse, bytes]:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
            async with s.request(
                method, URL(self.url + target, encoded=True), allow_redirects=False, auto_decompress=False,
                **{"skip_auto_headers": ["Accept-Encoding"], **kw},
            ) as resp:
                return resp, await resp.read()


async def start_gateway(
    server_factory: ServerFactory,
    tmp_path: Path,
    backend_url: str,
    extra: str = "",
    keys: tuple[bytes, ...] = (KEY,),
    backend: str = "",
) -> Setup:
    """A gateway (configured as :func:`make_config` says) in front of ``backend_url``."""
    config = make_config(tmp_path, backend_url, extra, keys, backend)
    app = build_gateway_app(config, keyring=KeyRing(keys), backend_url=backend_url, identity_key=IDENTITY_KEY)
    return Setup(await server_factory(app), config)


def cookie_from(resp: aiohttp.ClientResponse) -> str:
    (header,) = resp.headers.getall("Set-Cookie")
    return header.split(";", 1)[0].split("=", 1)[1]


def mint(user: str, keys: tuple[bytes, ...] = (KEY,), expires_in: int = 600, scheme: str = "simple") -> str:
    now = int(time.time())
    return CookieCodec(KeyRing(keys), schemes=[scheme]).encode(SessionToken(user, user, scheme, now, now + expires_in))
