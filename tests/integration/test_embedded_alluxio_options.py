"""Malformed Alluxio option bodies over a real socket: every one is INVALID_ARGUMENT, never an internal error."""

from __future__ import annotations

import logging

import pytest

from tests.integration.embedded import (
    Backend,
    backend,  # noqa: F401  (the fixture)
)
from tests.integration.test_embedded_alluxio import P, alluxio_error

MALFORMED = [
    b"[" * 50_000,  # was RecursionError in the JSON decoder
    b'{"mode":{"ownerBits":[]}}',  # was TypeError: unhashable
    b'{"mode":{"groupBits":{}}}',
    b'{"mode":{"otherBits":7}}',
    b'{"mode":"ALL"}',
    b'{"recursive":' + b"[" * 70 + b"]" * 70 + b"}",
    b'{"recursive":"yes"}',
    b'{"allowExists":1}',
    b'{"blockSizeBytes":1e400}',
    b'{"blockSizeBytes":"1"}',
    b'{"blockSizeBytes":0}',
    b'{"blockSizeBytes":' + b"9" * 5000 + b"}",  # past int's digit limit
    b'{"owner":["x"]}',
    b'{"owner":"a b"}',
    b'{"group":{}}',
    b'{"a":',
    b"\xff\xfe{",
    b"[]",
    b"1",
    b'"x"',
    b"null",
]


@pytest.mark.parametrize("body", MALFORMED, ids=[repr(b[:24]) for b in MALFORMED])
@pytest.mark.parametrize("action", ["create-directory", "create-file", "set-attribute", "delete", "list-status"])
async def test_malformed_options_are_invalid_argument(
    backend: Backend, caplog: pytest.LogCaptureFixture, action: str, body: bytes
) -> None:
    caplog.set_level(logging.ERROR, "gateway.embedded")
    reply = await backend.call(
        "POST", f"{P}/user/bob/x/{action}", data=body, headers={"Content-Type": "application/json"}
    )
    message = alluxio_error(reply, "INVALID_ARGUMENT", 400)
    assert len(message) < 200, message  # a bad value is quoted cut short
    assert not [r for r in caplog.records if "internal failure" in r.getMessage()]


async def test_options_no_action_reads_are_ignored(backend: Backend) -> None:
    """Alluxio's clients send options this backend does not use; their shape is theirs."""
    body = b'{"recursive":true,"writeType":"CACHE_THROUGH","commonOptions":{"ttl":-1,"x":[[1],{"y":null}]}}'
    reply = await backend.call(
        "POST", f"{P}/user/bob/y/z/create-directory", data=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status == 200, reply.body
