"""Failover between a route's backends, over loopback sockets.

The backends are raw asyncio servers (tests/faulty_backend.py): one that
accepts connections and resets them, counting each; one answering as a
NameNode in standby; one echoing what reached it.  Which backend a request
went to, and how often a failed one was tried, is counted, never timed.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.faulty_backend import Exchange, FaultyBackend, behaviours, hang_up
from tests.integration.gwsetup import ServerFactory, Setup, mint, start_gateway

Start = Callable[..., Awaitable[Setup]]
COOKIE = {"Cookie": f"hadoop.auth={mint('bob')}"}


async def reset_at_once(ex: Exchange) -> None:
    hang_up(ex)  # reached, but no byte of an answer


@pytest.fixture
async def backends() -> AsyncIterator[Callable[..., Awaitable[FaultyBackend]]]:
    started: list[FaultyBackend] = []

    async def start(behaviour: Callable[[Exchange], Awaitable[None]] = behaviours.echo) -> FaultyBackend:
        backend = FaultyBackend(behaviour)
        await backend.start()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        await backend.stop()


def closed_port() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def unanswered() -> Iterator[str]:
    """A loopback URL whose connections never complete: a listener whose queue is full and never accepts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield f"http://127.0.0.1:{port}"
    for sock in (*fillers, listener):
        sock.close()


@pytest.fixture
def gateway(tmp_path: Path, aiohttp_server: ServerFactory) -> Start:
    async def start(urls: list[str], *, cooldown: float = 60.0, attempts: int = 3, more: str = "") -> Setup:
        route = f'[[routes]]\nprefix = "/"\nbackend = {json.dumps(urls)}\ndialect = "webhdfs"\n'
        return await start_gateway(
            aiohttp_server, tmp_path, urls[0], route,
            backend=f"failover_cooldown = {cooldown}\nfailover_attempts = {attempts}\n{more}",
        )

    return start


def target(ex_head: bytes) -> str:
    return ex_head.split(b" ", 2)[1].decode()


async def test_a_safe_request_fails_over_from_a_backend_that_breaks_off(backends, gateway: Start) -> None:
    broken, good = await backends(reset_at_once), await backends()
    gw = await gateway([broken.url, good.url])
    resp, body = await gw.get("/webhdfs/v1/f?op=GETFILESTATUS", headers=COOKIE)
    assert resp.status == 200, body
    assert json.loads(body)["target"].startswith("/webhdfs/v1/f?op=GETFILESTATUS")
    assert (broken.accepted, len(good.heads)) == (1, 1)


async def test_the_backend_that_answered_is_tried_first_from_then_on(backends, gateway: Start) -> None:
    broken, good = await backends(reset_at_once), await backends()
    gw = await gateway([broken.url, good.url], cooldown=0)  # no breaker: stickiness alone
    for _ in range(4):
        resp, _ = await gw.get("/webhdfs/v1/f?op=LISTSTATUS", headers=COOKIE)
        assert resp.status == 200
    assert (broken.accepted, len(good.heads)) == (1, 4)


@pytest.mark.parametrize("body", [b"", b"x" * 100_000])
async def test_a_post_that_reached_a_backend_is_not_sent_again(backends, gateway: Start, body: bytes) -> None:
    broken, good = await backends(reset_at_once), await backends()
    gw = await gateway([broken.url, good.url])
    resp, raw = await gw.request("POST", "/webhdfs/v1/f?op=APPEND", data=body, headers=COOKIE)
    assert resp.status == 502, raw
    assert json.loads(raw)["RemoteException"]["message"] == "the backend failed to answer"
    assert broken.accepted == 1 and good.heads == []


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_unsafe_webhdfs_methods_are_not_sent_again_either(backends, gateway: Start, method: str) -> None:
    broken, good = await backends(reset_at_once), await backends()
    gw = await gateway([broken.url, good.url])
    resp, _ = await gw.request(method, "/webhdfs/v1/a?op=RENAME&destination=/b", headers=COOKIE)
    assert resp.status == 502
    assert broken.accepted == 1 and good.heads == []


async def test_a_post_with_a_body_fails_over_when_it_never_reached_a_backend(backends, gateway: Start) -> None:
    good = await backends()
    gw = await gateway([closed_port(), good.url])
    body = bytes(range(256)) * 1000
    resp, raw = await gw.request("POST", "/webhdfs/v1/f?op=APPEND&data=true", data=body, headers=COOKIE)
    assert resp.status == 200, raw
    assert json.loads(raw)["length"] == len(body)


async def test_a_connect_timeout_moves_even_a_post_with_a_body_on(backends, gateway: Start, unanswered: str) -> None:
    good = await backends()
    gw = await gateway([unanswered, good.url], more="connect_timeout = 0.3\n")
    resp, raw = await gw.request("POST", "/webhdfs/v1/f?op=APPEND&data=true", data=b"w" * 70_000, headers=COOKIE)
    assert resp.status == 200, raw
    assert json.loads(raw)["length"] == 70_000
    # Alone, the same backend is a 504, as before lists.
    alone = await gateway([unanswered], more="connect_timeout = 0.3\n")
    resp, raw = await alone.get("/webhdfs/v1/f?op=GETFILESTATUS", headers=COOKIE)
    assert resp.status == 504 and json.loads(raw)["RemoteException"]["message"] == "the backend did not answer in time"


@pytest.mark.parametrize(("method", "data"), [("GET", None), ("PUT", None), ("POST", b"")])
async def test_a_standby_answer_moves_any_request_on(backends, gateway: Start, method: str, data: bytes | None) -> None:
    standby, active = await backends(behaviours.standby()), await backends()
    gw = await gateway([standby.url, active.url])
    resp, raw = await gw.request(method, "/webhdfs/v1/f?op=MKDIRS", data=data, headers=COOKIE)
    assert resp.status == 200, raw
    assert (len(standby.heads), len(active.heads)) == (1, 1)
    # The active one is asked first from now on.
    resp, _ = await gw.request(method, "/webhdfs/v1/g?op=MKDIRS", data=data, headers=COOKIE)
    assert resp.status == 200 and (len(standby.heads), len(active.heads)) == (1, 2)


async def test_a_standby_answer_after_the_body_was_sent_is_passed_on(backends, gateway: Start) -> None:
    standby, active = await backends(behaviours.standby(drain=True)), await backends()
    gw = await gateway([standby.url, active.url])
    resp, raw = await gw.request("POST", "/webhdfs/v1/f?op=APPEND&data=true", data=b"y" * 50_000, headers=COOKIE)
    assert resp.status == 403
    assert json.loads(raw)["RemoteException"]["exception"] == "StandbyException"
    assert active.heads == []


async def test_when_every_backend_is_standby_the_last_answer_is_passed_on(backends, gateway: Start) -> None:
    first, second = await backends(behaviours.standby()), await backends(behaviours.standby())
    gw = await gateway([first.url, second.url])
    resp, raw = await gw.get("/webhdfs/v1/f?op=GETFILESTATUS", headers=COOKIE)
    assert resp.status == 403
    assert json.loads(raw)["RemoteException"]["javaClassName"] == "org.apache.hadoop.ipc.StandbyException"
    assert (len(first.heads), len(second.heads)) == (1, 1)


@pytest.mark.parametrize("size", [200, 300_000])
async def test_another_403_is_passed_on_whole(backends, gateway: Start, size: int) -> None:
    message = "Permission denied: user=bob, access=WRITE, inode=/StandbyException" + "x" * size
    doc = {"RemoteException": {"exception": "AccessControlException",
                               "javaClassName": "org.apache.hadoop.security.AccessControlException", "message": message}}
    payload = json.dumps(doc).encode()

    async def denied(ex: Exchange) -> None:
        await ex.reply("403 Forbidden", payload, ("Content-Type: application/json",))

    refusing, other = await backends(denied), await backends()
    gw = await gateway([refusing.url, other.url])
    resp, raw = await gw.get("/webhdfs/v1/f?op=GETFILESTATUS", headers=COOKIE)
    assert (resp.status, raw) == (403, payload)
    assert other.heads == []


@pytest.mark.parametrize(("cooldown", "counts"), [(60.0, [1, 1, 1, 2]), (0.0, [1, 2, 3, 4])])
async def test_the_breaker_passes_over_a_failed_backend(
    backends, gateway: Start, cooldown: float, counts: list[int]
) -> None:
    # The connections the resetting backend accepted, after each of four requests: a POST that reaches
    # it and fails (never sent again); a POST that, while it cools down, goes straight to the other;
    # then, the other gone, a GET it is still passed over for (502), and one more GET when every backend
    # is cooling down, when all are tried rather than none.  Without a cool-down it is tried every time.
    broken, good = await backends(reset_at_once), await backends()
    gw = await gateway([broken.url, good.url], cooldown=cooldown)
    seen = []
    resp, _ = await gw.request("POST", "/webhdfs/v1/f?op=APPEND", data=b"z", headers=COOKIE)
    assert resp.status == 502
    seen.append(broken.accepted)
    resp, _ = await gw.request("POST", "/webhdfs/v1/f?op=APPEND", data=b"z", headers=COOKIE)
    assert resp.status == (200 if cooldown else 502)
    seen.append(broken.accepted)
    await good.stop()
    for _ in range(2):
        resp, _ = await gw.get("/webhdfs/v1/f?op=GETFILESTATUS", headers=COOKIE)
        assert resp.status == 502
        seen.append(broken.accepted)
    assert seen == counts


async def test_a_failed_backend_is_tried_again_after_its_cooldown(backends, gateway: Start) -> None:
    flaky = await backends(reset_at_once)
    good = await backends()
    gw = await gateway([flaky.url, good.url], cooldown=0.2)
    resp, _ = await gw.get("/webhdfs/v1/f?op=GETFILESTATUS", headers=COOKIE)
    assert resp.status == 200 and flaky.accepted == 1
    await good.stop()  # the preferred one goes away: only the cooled-down one is left
    flaky.behaviour = behaviours.echo
    await asyncio.sleep(0.3)  # past the cool-down (a lower bound: nothing is timed)
    resp, _ = await gw.get("/webhdfs/v1/f?op=GETFILESTATUS", headers=COOKIE)
    assert resp.status == 200 and flaky.accepted == 2


async def test_attempts_bound_the_backends_tried(backends, gateway: Start) -> None:
    first, second, third = [await backends(reset_at_once) for _ in range(3)]
    gw = await gateway([first.url, second.url, third.url], attempts=2)
    resp, _ = await gw.get("/webhdfs/v1/f?op=GETFILESTATUS", headers=COOKIE)
    assert resp.status == 502
    assert (first.accepted, second.accepted, third.accepted) == (1, 1, 0)


async def test_the_backend_that_answered_is_the_one_rewritten(backends, gateway: Start) -> None:
    # Each backend names itself in its redirects: whichever answered, the client sees the gateway.
    async def redirect(ex: Exchange) -> None:
        me = ex.header("Host")[0]
        await ex.reply("307 Temporary Redirect", b"", (f"Location: http://{me}/webhdfs/v1/g?op=OPEN",))

    down, up = closed_port(), await backends(redirect)
    gw = await gateway([down, up.url])
    resp, _ = await gw.get("/webhdfs/v1/f?op=OPEN", headers=COOKIE)
    assert resp.status == 307
    assert resp.headers["Location"] == f"{gw.url}/webhdfs/v1/g?op=OPEN"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"RemoteException": ' * 3_000,  # deeper than Python's JSON decoder recurses, within what is read
        b'{"RemoteException": {"exception": ["StandbyException"], "javaClassName": {}}}',  # no class names
    ],
)
async def test_a_403_that_is_no_remote_exception_document_is_passed_on(
    backends, gateway: Start, payload: bytes
) -> None:
    # A 403 is parsed to tell a standby's refusal: a body that cannot be read as one is no standby
    # answer, and is passed on as any other 403, never a 500.
    assert len(payload) < 64 * 1024

    async def deep(ex: Exchange) -> None:
        await ex.reply("403 Forbidden", payload, ("Content-Type: application/json",))

    refusing, other = await backends(deep), await backends()
    gw = await gateway([refusing.url, other.url])
    resp, raw = await gw.get("/webhdfs/v1/f?op=GETFILESTATUS", headers=COOKIE)
    assert (resp.status, raw) == (403, payload)
    assert other.heads == []
