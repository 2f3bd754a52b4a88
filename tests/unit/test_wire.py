"""The per-format error tables: every fault in every format, statuses as each API answers them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus

import pytest
from multidict import CIMultiDict

from gateway.wire import Fault, WireFormat, alluxio, error_response, fault_for_status, hoop, webhdfs


def _json(fmt: WireFormat, fault: Fault, message: str = "msg") -> tuple[int, object]:
    response = error_response(fmt, fault, message)
    assert response.content_type == "application/json"
    assert response.text is not None
    return response.status, json.loads(response.text)


@pytest.mark.parametrize("table", [hoop.TABLE, webhdfs.TABLE, alluxio.TABLE])
def test_every_table_covers_every_fault(table: Mapping[Fault, object]) -> None:
    assert set(table) == set(Fault)


@pytest.mark.parametrize(
    ("fault", "status", "exception"),
    [
        (Fault.BAD_REQUEST, 400, "IllegalArgumentException"),
        (Fault.UNAUTHENTICATED, 401, "AuthenticationException"),
        (Fault.ACCESS_DENIED, 403, "AccessControlException"),
        (Fault.NOT_FOUND, 404, "FileNotFoundException"),
        (Fault.METHOD_NOT_ALLOWED, 405, "UnsupportedOperationException"),
        (Fault.ALREADY_EXISTS, 409, "FileAlreadyExistsException"),
        (Fault.PARENT_NOT_DIRECTORY, 409, "ParentNotDirectoryException"),
        (Fault.NOT_EMPTY, 409, "PathIsNotEmptyDirectoryException"),
        (Fault.EXPECTATION_FAILED, 417, "GatewayException"),
        (Fault.PAYLOAD_TOO_LARGE, 413, "GatewayException"),
        (Fault.IO_FAILURE, 500, "IOException"),
        (Fault.OVER_LIMIT, 400, "IOException"),
        (Fault.QUOTA_EXCEEDED, 429, "QuotaExceededException"),
        (Fault.BACKEND_UNAVAILABLE, 502, "BackendUnavailableException"),
        (Fault.UNAVAILABLE, 503, "ServiceUnavailableException"),
        (Fault.BACKEND_TIMEOUT, 504, "BackendTimeoutException"),
    ],
)
def test_hoop(fault: Fault, status: int, exception: str) -> None:
    got_status, body = _json(WireFormat.HOOP, fault, "File does not exist: /x")
    assert got_status == status
    assert body == {
        "statusCode": status,
        "reason": HTTPStatus(status).phrase,
        "message": "File does not exist: /x",
        "exception": exception,
    }


def test_hoop_failure_body_for_hand_written_answers() -> None:
    assert hoop.failure_body(503, "m", "X") == {
        "statusCode": 503, "reason": "Service Unavailable", "message": "m", "exception": "X"
    }


@pytest.mark.parametrize(
    ("fault", "status", "java_class"),
    [
        (Fault.BAD_REQUEST, 400, "java.lang.IllegalArgumentException"),
        (Fault.UNAUTHENTICATED, 401, "java.lang.SecurityException"),
        (Fault.ACCESS_DENIED, 403, "org.apache.hadoop.security.AccessControlException"),
        (Fault.NOT_FOUND, 404, "java.io.FileNotFoundException"),
        (Fault.METHOD_NOT_ALLOWED, 400, "java.lang.UnsupportedOperationException"),
        (Fault.ALREADY_EXISTS, 403, "org.apache.hadoop.fs.FileAlreadyExistsException"),
        (Fault.PARENT_NOT_DIRECTORY, 403, "org.apache.hadoop.fs.ParentNotDirectoryException"),
        (Fault.NOT_EMPTY, 403, "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException"),
        (Fault.IO_FAILURE, 403, "java.io.IOException"),
        (Fault.OVER_LIMIT, 403, "java.io.IOException"),
        (Fault.PAYLOAD_TOO_LARGE, 413, "java.io.IOException"),
        (Fault.EXPECTATION_FAILED, 417, "java.lang.IllegalArgumentException"),
        (Fault.BACKEND_UNAVAILABLE, 502, "java.io.IOException"),
        (Fault.UNAVAILABLE, 503, "org.apache.hadoop.ipc.RetriableException"),
        (Fault.BACKEND_TIMEOUT, 504, "java.net.SocketTimeoutException"),
    ],
)
def test_webhdfs(fault: Fault, status: int, java_class: str) -> None:
    got_status, body = _json(WireFormat.WEBHDFS, fault, "File does not exist: /x")
    assert got_status == status
    assert body == {
        "RemoteException": {
            "exception": java_class.rpartition(".")[2],
            "javaClassName": java_class,
            "message": "File does not exist: /x",
        }
    }


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault.BAD_REQUEST, 400, "INVALID_ARGUMENT"),
        (Fault.UNAUTHENTICATED, 401, "UNAUTHENTICATED"),
        (Fault.ACCESS_DENIED, 500, "PERMISSION_DENIED"),
        (Fault.NOT_FOUND, 500, "NOT_FOUND"),
        (Fault.METHOD_NOT_ALLOWED, 500, "UNIMPLEMENTED"),
        (Fault.ALREADY_EXISTS, 500, "ALREADY_EXISTS"),
        (Fault.PARENT_NOT_DIRECTORY, 500, "INVALID_ARGUMENT"),
        (Fault.NOT_EMPTY, 500, "FAILED_PRECONDITION"),
        (Fault.IO_FAILURE, 500, "INTERNAL"),
        (Fault.OVER_LIMIT, 400, "INVALID_ARGUMENT"),
        (Fault.PAYLOAD_TOO_LARGE, 413, "RESOURCE_EXHAUSTED"),
        (Fault.EXPECTATION_FAILED, 417, "INVALID_ARGUMENT"),
        (Fault.BACKEND_UNAVAILABLE, 502, "UNAVAILABLE"),
        (Fault.UNAVAILABLE, 503, "UNAVAILABLE"),
        (Fault.BACKEND_TIMEOUT, 504, "DEADLINE_EXCEEDED"),
    ],
)
def test_alluxio(fault: Fault, status: int, code: str) -> None:
    assert _json(WireFormat.ALLUXIO, fault, "Path /x does not exist") == (
        status, {"statusCode": code, "message": "Path /x does not exist"}
    )


@pytest.mark.parametrize("fmt", list(WireFormat))
def test_headers_are_added(fmt: WireFormat) -> None:
    headers = CIMultiDict([("WWW-Authenticate", "PseudoAuth"), ("WWW-Authenticate", "Negotiate")])
    response = error_response(fmt, Fault.UNAUTHENTICATED, "Authentication required", headers=headers)
    assert response.status == 401
    assert response.headers.getall("WWW-Authenticate") == ["PseudoAuth", "Negotiate"]


@pytest.mark.parametrize(
    ("status", "fault"),
    [
        (400, Fault.BAD_REQUEST),
        (401, Fault.UNAUTHENTICATED),
        (403, Fault.ACCESS_DENIED),
        (413, Fault.PAYLOAD_TOO_LARGE),
        (417, Fault.EXPECTATION_FAILED),
        (502, Fault.BACKEND_UNAVAILABLE),
        (503, Fault.UNAVAILABLE),
        (504, Fault.BACKEND_TIMEOUT),
    ],
)
def test_fault_for_status(status: int, fault: Fault) -> None:
    assert fault_for_status(status) is fault
    assert hoop.status(fault) == status  # Hoop's table is the gateway's own statuses


@pytest.mark.parametrize("status", [200, 404, 409, 500])
def test_fault_for_status_refuses_statuses_the_gateway_never_answers(status: int) -> None:
    with pytest.raises(ValueError, match=str(status)):
        fault_for_status(status)
