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
