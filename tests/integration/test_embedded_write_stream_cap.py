"""The per-user cap on open Alluxio write streams (``embedded.max_write_streams``), over a real socket."""

from __future__ import annotations

from pathlib import Path

from gateway.embedded import BACKEND_KEY
from tests.integration.embedded import (
    Backend,
    backend,  # noqa: F401  (the fixture)
    create,
    make_config,
    running,
)
from tests.integration.test_embedded_alluxio import P, S, alluxio_error, post


async def open_write(b: Backend, path: str, user: str = "bob") -> int:
    reply = await post(b, f"{P}{path}/create-file", {"recursive": True}, user=user)
    assert reply.status == 200, reply.body
    stream_id = reply.json()
    assert isinstance(stream_id, int)
    return stream_id


async def test_a_user_past_the_cap_is_refused_until_a_stream_ends(tmp_path: Path) -> None:
    async for b in running(make_config(tmp_path / "root", supergroup="admins", max_write_streams=3)):
        ids = [await open_write(b, f"/user/bob/f{i}") for i in range(3)]
        message = alluxio_error(await post(b, f"{P}/user/bob/f3/create-file", {"recursive": True}),
                                "RESOURCE_EXHAUSTED", 429)
        assert "3 write streams open" in message
        assert len(b.temp_files()) == 3  # the refused one left nothing behind
        await open_write(b, "/user/alice/g", user="alice")  # a cap per user
        await create(b, "/user/bob/r", b"x")
        assert (await post(b, f"{P}/user/bob/r/open-file")).status == 200  # read streams do not count
        # Closing one frees its place; so does expiring.
        assert (await post(b, f"{S}{ids[0]}/close")).status == 200
        fourth = await open_write(b, "/user/bob/f3")
        alluxio_error(await post(b, f"{P}/user/bob/f4/create-file", {"recursive": True}), "RESOURCE_EXHAUSTED", 429)
        store = b.runner.app[BACKEND_KEY] if b.runner else None
        assert store is not None
        store.streams.update(fourth, expires_ms=0)
        await open_write(b, "/user/bob/f4")
        assert (await post(b, f"{S}{ids[1]}/write", data=b"data")).json() == 4  # the others still work


async def test_the_default_cap_is_64(backend: Backend) -> None:
    for i in range(64):
        await open_write(backend, f"/user/bob/f{i}")
    alluxio_error(await post(backend, f"{P}/user/bob/f64/create-file", {"recursive": True}), "RESOURCE_EXHAUSTED", 429)
