"""Measure what accepting a Kerberos context costs (not a test; run by hand).

    .venv/bin/python -m tests.kerberos.bench accept   [--count 2000]

``accept``: the cost of one acceptor step, in the event-loop thread (a
direct call) and through the scheme's thread pool (``authenticate``), with
the file replay cache and without, and the worst event-loop stall seen by a
1 ms ticker while accepts run.  Client tokens are made beforehand, so only
the acceptor is timed.

Full handshakes per second through the gateway, against Apache httpd +
mod_auth_gssapi, are measured by ``scripts/bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.kerberos.realm import Realm

REALM = "EXAMPLE.COM"


def _setup(base: Path) -> tuple[Realm, Path, str]:
    import os

    realm = Realm(base, REALM).start()
    realm.add_user("alice", "alice-pw")
    keytab = realm.add_service(["HTTP/localhost"], base / "http.keytab")
    os.environ.update(realm.env)
    ccache = realm.ccache("alice")
    realm.kinit("alice", "alice-pw", ccache=ccache)
    return realm, keytab, ccache


def _tokens(ccache: str, count: int) -> list[str]:
    from tests.kerberos.client import handshake

    return [handshake(ccache).header for _ in range(count)]


async def _ticker(stop: asyncio.Event, lags: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - t - 0.001)


async def _bench_accept(keytab: Path, ccache: str, base: Path, count: int) -> None:
    from aiohttp.test_utils import make_mocked_request

    from authplugins import Authenticated
    from authplugins.kerberos import KerberosOptions, KerberosScheme

    options = KerberosOptions(keytab=str(keytab), principal=f"HTTP/localhost@{REALM}")
    for label, rcache in (("file2 replay cache", f"file2:{base / 'bench.rcache2'}"), ("no replay cache", "none:")):
        for threads in (1, 2, 4):
            scheme = KerberosScheme.from_options(replace(options, replay_cache=rcache, accept_threads=threads))
            await scheme.start()
            creds = scheme._creds
            assert creds is not None
            # On the loop: the blocking call made directly, as a naive scheme would.
            if threads == 1:
                tokens = [base64.b64decode(h.split()[1]) for h in _tokens(ccache, count)]
                durations = []
                for token in tokens:
                    t = time.perf_counter()
                    scheme._accept(creds, token)
                    durations.append(time.perf_counter() - t)
                durations.sort()
                print(f"{label:20s} on the loop    : {statistics.mean(durations) * 1e6:7.1f} us/accept; each call "
                      f"holds the loop p50 {durations[len(durations) // 2] * 1e6:.0f} us, "
                      f"p99 {durations[int(len(durations) * 0.99)] * 1e6:.0f} us, max {durations[-1] * 1e6:.0f} us")
            requests = [make_mocked_request("GET", "/", headers={"Authorization": h}) for h in _tokens(ccache, count)]
            lags: list[float] = []
            stop = asyncio.Event()
            ticker = asyncio.create_task(_ticker(stop, lags))
            sem = asyncio.Semaphore(threads * 2)

            async def one(request: Any) -> None:
                async with sem:
                    assert isinstance(await scheme.authenticate(request), Authenticated)

            t0 = time.perf_counter()
            await asyncio.gather(*(one(r) for r in requests))
            off_loop = (time.perf_counter() - t0) / count * 1e6
            stop.set()
            await ticker
            lags.sort()
            print(f"{label:20s} {threads} pool thread{'s' if threads > 1 else ' '}: {off_loop:7.1f} us/accept "
                  f"({1e6 / off_loop:6.0f}/s), loop lag p50 {lags[len(lags) // 2] * 1e3:5.2f} ms, "
                  f"p99 {lags[int(len(lags) * 0.99)] * 1e3:5.2f} ms, max {lags[-1] * 1e3:5.2f} ms")
            await scheme.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kerberos.bench")
    parser.add_argument("what", choices=["accept"])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kerberos-bench-") as tmp:
        base = Path(tmp)
        realm, keytab, ccache = _setup(base)
        try:
            asyncio.run(_bench_accept(keytab, ccache, base, args.count))
        finally:
            realm.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
