"""UpstreamProxy.upstream_headers on requests aiohttp builds, for what no socket test can reach."""

from __future__ import annotations

from unittest import mock

import aiohttp
from aiohttp.test_utils import make_mocked_request

from gateway.proxy import UpstreamProxy


async def test_a_peer_without_an_address_is_forwarded_as_unknown() -> None:
    # A unix-socket peer has no address: X-Forwarded-For must still name a hop.
    transport = mock.Mock()
    transport.get_extra_info.return_value = None
    async with aiohttp.ClientSession() as session:
        proxy = UpstreamProxy(
            "http://backend", session=session, reserved_headers=(), cookie_names=(), send_timeout=1.0
        )
        # The client's own X-Forwarded-For is no hop the gateway can vouch for: dropped.
        for prior, expected in ((None, "unknown"), ("10.0.0.1", "unknown")):
            headers = {"Host": "gw"} if prior is None else {"Host": "gw", "X-Forwarded-For": prior}
            request = make_mocked_request("GET", "/a", headers=headers, transport=transport)
            assert request.remote is None
            assert proxy.upstream_headers(request, ()).getall("X-Forwarded-For") == [expected]
