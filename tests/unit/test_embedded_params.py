"""Hoop query parameters: names, defaults and validation."""

from __future__ import annotations

import pytest

from gateway.embedded.store._errors import BadRequestError
from gateway.embedded.faces._params import Op, Params


@pytest.mark.parametrize(
    ("method", "query", "op"),
    [
        ("GET", "", Op.OPEN),
        ("GET", "op=", Op.OPEN),
        ("GET", "op=open", Op.OPEN),
        ("GET", "op=LIST", Op.LIST),
        ("GET", "op=Status&op=list", Op.STATUS),  # the first wins
        ("GET", "OP=list", Op.OPEN),  # names are case-sensitive
        ("GET", "op=homedir&user.name=x", Op.HOMEDIR),
        ("POST", "op=create", Op.CREATE),
        ("POST", "op=mkdirs", Op.MKDIRS),
        ("PUT", "op=append", Op.APPEND),
        ("PUT", "op=rename&to=/x", Op.RENAME),
        ("PUT", "op=setowner", Op.SETOWNER),
        ("PUT", "op=setpermission", Op.SETPERMISSION),
        ("PUT", "op=settimes", Op.SETTIMES),
        ("PUT", "op=setreplication", Op.SETREPLICATION),
        ("DELETE", "op=delete", Op.DELETE),
    ],
)
def test_op(method: str, query: str, op: Op) -> None:
    assert Params(query).op(method) is op


@pytest.mark.parametrize(
    ("method", "query"),
    [("GET", "op=bogus"), ("GET", "op=create"), ("POST", ""), ("PUT", "op=delete"), ("DELETE", ""), ("DELETE", "op=open")],
)
def test_bad_op(method: str, query: str) -> None:
    with pytest.raises(BadRequestError):
        Params(query).op(method)


@pytest.mark.parametrize(
    ("query", "default", "expected"),
    [("", True, True), ("overwrite=", False, False), ("overwrite=false", True, False), ("overwrite=TRUE", False, True)],
)
def test_boolean(query: str, default: bool, expected: bool) -> None:
    assert Params(query).boolean("overwrite", default) is expected


@pytest.mark.parametrize("query", ["overwrite=1", "overwrite=yes", "overwrite=%20true"])
def test_bad_boolean(query: str) -> None:
    with pytest.raises(BadRequestError, match=r"\[overwrite\]"):
        Params(query).boolean("overwrite", True)


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", -1), ("offset=0", 0), ("offset=-1", -1), ("offset=9223372036854775807", (1 << 63) - 1)],
)
def test_integer(query: str, expected: int) -> None:
    assert Params(query).integer("offset", -1, minimum=-1) == expected


@pytest.mark.parametrize("query", ["offset=-2", "offset=1.5", "offset=0x10", "offset=9223372036854775808", "offset=abc"])
def test_bad_integer(query: str) -> None:
    with pytest.raises(BadRequestError, match=r"\[offset\]"):
        Params(query).integer("offset", -1, minimum=-1)


@pytest.mark.parametrize(("query", "expected"), [("", 3), ("replication=-1", 3), ("replication=1", 1), ("replication=32767", 32767)])
def test_replication(query: str, expected: int) -> None:
    assert Params(query).replication(3) == expected


@pytest.mark.parametrize("query", ["replication=0", "replication=-2", "replication=32768", "replication=x"])
def test_bad_replication(query: str) -> None:
    with pytest.raises(BadRequestError):
        Params(query).replication(3)


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", None), ("permission=default", None), ("permission=", None), ("permission=755", 0o755),
     ("permission=-rw-r-----", 0o640), ("permission=drwxrwxrwt", 0o1777)],
)  # fmt: skip
def test_permission(query: str, expected: int | None) -> None:
    assert Params(query).permission() == expected


def test_values_are_decoded() -> None:
    params = Params("to=%2Fa%20b+c&filter=%7Ba,b%7D&x")
    assert params.get("to") == "/a b c"
    assert params.get("filter") == "{a,b}"
    assert params.get("x") == ""


@pytest.mark.parametrize("query", ["owner=a/b", "owner=a:b", "owner=a%20b", "owner=a%0Ab"])
def test_bad_names(query: str) -> None:
    with pytest.raises(BadRequestError, match=r"\[owner\]"):
        Params(query).name("owner")


def test_not_utf8() -> None:
    with pytest.raises(BadRequestError):
        Params("to=%ff")
