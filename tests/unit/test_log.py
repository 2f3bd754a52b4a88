from __future__ import annotations

import logging
import sys

from aiohttp.http_exceptions import BadHttpMessage

from gateway.log import ClientErrorFilter


def record_for(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        info = sys.exc_info()
    return logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", (), info)


def test_malformed_requests_become_one_info_line() -> None:
    record = record_for(BadHttpMessage("Unexpected start char in url:\n\n  b'GET @x'"))
    assert ClientErrorFilter().filter(record)
    assert record.levelno == logging.INFO and record.exc_info is None
    assert record.getMessage() == "malformed request refused with 400: Unexpected start char in url:"


def test_server_faults_keep_their_traceback() -> None:
    record = record_for(RuntimeError("bug"))
    assert ClientErrorFilter().filter(record)
    assert record.levelno == logging.ERROR and record.exc_info is not None


# -- what request log lines draw on ------------------------------------------------------

import pytest  # noqa: E402
from aiohttp.test_utils import make_mocked_request  # noqa: E402

from gateway.log import redact_query, request_id  # noqa: E402
from gateway.requestlog import operation  # noqa: E402


@pytest.mark.parametrize(
    ("query", "redacted"),
    [
        ("op=OPEN&delegation=HAAEYm9i", "op=OPEN&delegation=***"),
        ("op=OPEN&Delegation=x&DELEGATION=y", "op=OPEN&Delegation=***&DELEGATION=***"),
        ("%64elegation=x;op=LISTSTATUS", "%64elegation=***;op=LISTSTATUS"),
        ("token=a&access_token=b&X-Amz-Signature=c&sig=d&authgateway.sig=e", "token=***&access_token=***&X-Amz-Signature=***&sig=***&authgateway.sig=***"),
        ("user.name=bob&doas=carol&op=MKDIRS&signal=1&design=x", "user.name=bob&doas=carol&op=MKDIRS&signal=1&design=x"),
        ("password=p&client_secret=s&delegation_token=t", "password=***&client_secret=***&delegation_token=***"),
        ("delegation", "delegation"),  # no value to hide
        ("", ""),
    ],
)
def test_credential_bearing_query_parameters_are_masked(query: str, redacted: str) -> None:
    assert redact_query(query) == redacted


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123", True),
        ("0d9c5a1e-3c1b-4b7e-9a55-6c2f7b1c2d3e", True),
        ("Root=1-67891233-abcdef012345678912345678", False),  # "=" is not allowed
        ("a" * 128, True),
        ("a" * 129, False),
        ("", False),
        ("two words", False),
        ("x\tforged=field", False),
    ],
)
def test_a_clients_request_id_is_kept_only_when_well_formed(sent: str, kept: bool) -> None:
    request = make_mocked_request("GET", "/", headers={"X-Request-Id": sent})
    rid = request_id(request)
    assert (rid == sent) is kept
    if not kept:
        assert len(rid) == 32 and int(rid, 16) >= 0
    assert request_id(request) == rid  # decided once


@pytest.mark.parametrize(
    ("raw_path", "query", "op"),
    [
        ("/webhdfs/v1/a", "op=liststatus&user.name=bob", "LISTSTATUS"),
        ("/webhdfs/v1/a", "OP=mkdirs", "MKDIRS"),
        ("/api/v1/paths//a/b/list-status", "", "list-status"),
        ("/webhdfs/v1/a", "op=%0Aforged", "-"),
        ("/a", "", "-"),
    ],
)
def test_the_operation_of_a_request(raw_path: str, query: str, op: str) -> None:
    assert operation(raw_path, query) == op


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from authplugins.query import iter_params  # noqa: E402
from gateway.log import is_credential_param  # noqa: E402


@st.composite
def spelled(draw: st.DrawFn) -> str:
    """A credential parameter's name in some spelling: any case, some letters percent-encoded."""
    name = draw(st.sampled_from(["delegation", "token", "sig", "signature", "x-amz-signature", "access_token",
                                 "password", "authgateway.sig"]))
    out = ""
    for c in name:
        c = c.upper() if draw(st.booleans()) else c
        out += f"%{ord(c):02X}" if draw(st.integers(0, 4)) == 0 else c
    return out


@given(
    before=st.lists(st.sampled_from(["op=OPEN", "user.name=bob", "offset=0", ""]), max_size=3),
    name=spelled(),
    value=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=8, max_size=40),
    sep=st.sampled_from(["&", ";"]),
)
def test_no_spelling_of_a_credential_parameter_keeps_its_value(before: list[str], name: str, value: str, sep: str) -> None:
    query = sep.join([*before, f"{name}={value}"])
    redacted = redact_query(query)
    assert value not in redacted
    for _raw, folded, shown in iter_params(redacted):
        if is_credential_param(folded):
            assert shown == "***"
