"""Big listings against a real gateway (``authgateway serve``, the embedded backend in-process).

Clients that ask for a big listing and never read it must hold little
memory, and while they sit, and while a big listing streams, other requests
must be answered at once: the listing is built a page at a time off the
event loop, never whole on it.

Measured on a 2-core machine with 100,000 entries (``/tmp/faces/measure.py``
in the change that added this): before, one LISTSTATUS held the loop 2.8 s
and six clients that did not read added 327 MB while a status request waited
8 s; after, the longest stall was 34 ms, six such clients added 20 MB and
the status request took 4 ms.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import aiohttp
import pytest

from tests.conftest import GatewayProcess, tree_memory

Start = Callable[..., GatewayProcess]
pytestmark = pytest.mark.timeout(180)

ENTRIES = 50_000
NOT_READING = 6
# Before the fix the six listings (14 MB of JSON each, and the objects it was
# built from) grew the gateway by about 160 MiB; after it by a few MiB each.
GROWTH_LIMIT_MIB = 48
# Before the fix a status request waited seconds behind a listing being built.
PROBE_LIMIT_S = 0.5


def make_big_directory(gw: GatewayProcess) -> None:
    big = gw.root / "user" / "bob" / "big"
    big.mkdir(parents=True)
    for i in range(ENTRIES):
        (big / f"file-{i:06d}-{'x' * 40}").touch()


async def slowest_probe(session: aiohttp.ClientSession, gw: GatewayProcess, count: int) -> float:
    """The longest of ``count`` status requests made one after another."""
    times = []
    for _ in range(count):
        started = time.monotonic()
        async with session.get(f"{gw.url}/user?op=status&user.name=alice") as response:
            assert response.status == 200
            await response.read()
        times.append(time.monotonic() - started)
        await asyncio.sleep(0.02)
    return max(times)


async def test_clients_that_do_not_read_a_big_listing_hold_little(gateway: Start) -> None:
    gw = gateway(server={"workers": 1})  # one worker serves them all: its loop and memory are measured
    make_big_directory(gw)
    async with aiohttp.ClientSession() as session:
        await slowest_probe(session, gw, 3)
        before = tree_memory(gw.proc.pid, "VmRSS") / 2**20
        held = []
        for _ in range(NOT_READING):
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(
                b"GET /webhdfs/v1/user/bob/big?op=LISTSTATUS&user.name=bob HTTP/1.1\r\nHost: localhost\r\n\r\n"
            )
            held.append((reader, writer))
        await asyncio.sleep(1.0)
        slowest = await slowest_probe(session, gw, 20)
        await asyncio.sleep(2.0)  # long enough for a whole listing to have been built, before the fix
        grown = tree_memory(gw.proc.pid, "VmRSS") / 2**20 - before
        head = await asyncio.wait_for(held[0][0].readuntil(b"\r\n\r\n"), 10)
        for _, writer in held:
            writer.transport.abort()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert slowest < PROBE_LIMIT_S and grown < GROWTH_LIMIT_MIB, (
        f"beside {NOT_READING} clients not reading a listing a status request took {slowest:.2f} s, "
        f"and they grew the gateway {grown:.0f} MiB"
    )


async def test_a_big_listing_streams_whole_while_others_are_served(gateway: Start) -> None:
    gw = gateway(server={"workers": 1})
    make_big_directory(gw)
    async with aiohttp.ClientSession() as session:

        async def listing() -> tuple[int, bytes]:
            url = f"{gw.url}/webhdfs/v1/user/bob/big?op=LISTSTATUS&user.name=bob"
            async with session.get(url) as response:
                body = bytearray()
                async for chunk in response.content.iter_any():  # parsed after: never on this loop meanwhile
                    body += chunk
                return response.status, bytes(body)

        task = asyncio.ensure_future(listing())
        await asyncio.sleep(0.05)
        slowest = 0.0
        while not task.done():
            slowest = max(slowest, await slowest_probe(session, gw, 1))
        status, body = await task
    assert status == 200
    names = [s["pathSuffix"] for s in json.loads(body)["FileStatuses"]["FileStatus"]]
    assert names == sorted(f"file-{i:06d}-{'x' * 40}" for i in range(ENTRIES))
    assert slowest < PROBE_LIMIT_S, f"a status request took {slowest:.2f} s beside a streaming listing"
