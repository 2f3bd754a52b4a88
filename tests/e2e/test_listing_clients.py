"""Unchanged clients list through the real gateway directories that stream in many pages.

``embedded.ls_limit`` is 4 here, so a directory of 11 entries is sent in
three pages, chunked: HdfsCLI, fsspec and the pinned ``alluxio`` 0.1.4 client
must read it as one listing, as they read the NameNode's or the Alluxio
proxy's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import alluxio
import fsspec
import pytest
import requests
from hdfs import InsecureClient

from tests.conftest import GatewayProcess

pytestmark = pytest.mark.timeout(120)

NAMES = [f"part-{i:05d}" for i in range(10)] + ["sub"]


@pytest.fixture
def gw(gateway: Callable[..., GatewayProcess]) -> GatewayProcess:
    gw = gateway(embedded={"ls_limit": 4})
    many = gw.root / "user" / "bob" / "many"
    (many / "sub").mkdir(parents=True)
    for name in NAMES[:-1]:
        (many / name).write_bytes(name.encode())
    return gw


def test_hdfscli_lists_a_streamed_directory(gw: GatewayProcess) -> None:
    client = InsecureClient(gw.url, user="bob")
    assert client.list("/user/bob/many") == NAMES
    statuses = client.list("/user/bob/many", status=True)
    assert [(name, s["type"]) for name, s in statuses][-2:] == [("part-00009", "FILE"), ("sub", "DIRECTORY")]
    assert statuses[0][1]["length"] == len("part-00000")


def test_fsspec_lists_a_streamed_directory(gw: GatewayProcess) -> None:
    fs = fsspec.filesystem("webhdfs", host="localhost", port=gw.port, user="bob", skip_instance_cache=True)
    assert fs.ls("/user/bob/many", detail=False) == [f"/user/bob/many/{name}" for name in NAMES]


def test_alluxio_client_lists_a_streamed_directory(gw: GatewayProcess) -> None:
    client = alluxio.Client("localhost", gw.port)
    client.session.params = {"user.name": "bob"}
    statuses = client.list_status("/user/bob/many")
    assert [s.name for s in statuses] == NAMES
    assert [s.folder for s in statuses][-1] is True


def test_hoop_list_and_filter_through_the_gateway(gw: GatewayProcess) -> None:
    r = requests.get(f"{gw.url}/user/bob/many?op=list&user.name=bob", timeout=10)
    assert r.headers.get("Transfer-Encoding") == "chunked"  # streamed, a page at a time
    assert [e["path"].rsplit("/", 1)[1] for e in r.json()] == NAMES
    r = requests.get(f"{gw.url}/user/bob/many?op=list&filter=*0{{3,7}}&user.name=bob", timeout=10)
    assert [e["path"].rsplit("/", 1)[1] for e in r.json()] == ["part-00003", "part-00007"]
    started = time.monotonic()
    r = requests.get(f"{gw.url}/user/bob/many?op=list&filter={'*0' * 10}*b&user.name=bob", timeout=10)
    assert (r.status_code, r.json()) == (200, [])
    assert time.monotonic() - started < 1.0
    r = requests.get(f"{gw.url}/user/bob/many?op=list&filter={'{' * 1500}a{'}' * 1500}&user.name=bob", timeout=10)
    assert (r.status_code, r.json()["exception"]) == (400, "IllegalArgumentException")
