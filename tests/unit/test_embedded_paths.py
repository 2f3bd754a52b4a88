"""Path confinement: what a request target may name, and what it may not."""

from __future__ import annotations

import pytest

from gateway.embedded.store._errors import AccessDeniedError, BadRequestError
from gateway.embedded.store._paths import check_not_reserved, hdfs_path, parse_hdfs_path, parse_target


@pytest.mark.parametrize(
    ("raw", "parts"),
    [
        ("/", ()),
        ("", ()),
        ("/a/b", ("a", "b")),
        ("//a///b//", ("a", "b")),
        ("//user/bob?op=list", ("user", "bob")),
        ("/a%20b/c", ("a b", "c")),
        ("/a+b", ("a+b",)),  # '+' is not a space in a path
        ("/a%2Fb", ("a", "b")),  # decoded once, then split
        ("/a%252e%252e", ("a%2e%2e",)),  # decoded once only: a literal name
        ("/%C3%A9t%C3%A9", ("été",)),
        ("/a/..b/c..", ("a", "..b", "c..")),
        ("/a?x=/../..", ("a",)),
    ],
)
def test_parse_target_accepts(raw: str, parts: tuple[str, ...]) -> None:
    assert parse_target(raw) == parts


@pytest.mark.parametrize(
    "raw",
    [
        "/..",
        "/a/../b",
        "/a/%2e%2e/b",
        "/a/%2E%2E",
        "/%2e%2e%2f%2e%2e/etc/passwd",
        "/a%2f..%2fb",
        "/a/./b",
        "/a/%2e",
        "/a%00b",
        "/a\x00b",
        "/%ff%fe",  # not UTF-8
    ],
)
def test_parse_target_refuses(raw: str) -> None:
    with pytest.raises(BadRequestError):
        parse_target(raw)


@pytest.mark.parametrize(
    ("text", "parts"),
    [("/x/y", ("x", "y")), ("//x", ("x",)), ("/", ())],
)
def test_parse_hdfs_path(text: str, parts: tuple[str, ...]) -> None:
    assert parse_hdfs_path(text) == parts


@pytest.mark.parametrize("text", ["x/y", "", "/x/../y", "/x\x00"])
def test_parse_hdfs_path_refuses(text: str) -> None:
    with pytest.raises(BadRequestError):
        parse_hdfs_path(text)


@pytest.mark.parametrize(("parts", "text"), [((), "/"), (("a",), "/a"), (("a", "b c"), "/a/b c")])
def test_hdfs_path(parts: tuple[str, ...], text: str) -> None:
    assert hdfs_path(parts) == text


@pytest.mark.parametrize("parts", [(".authgateway",), (".authgateway", "meta.sqlite3"), (".authgateway", "tmp", "x")])
def test_reserved_is_refused(parts: tuple[str, ...]) -> None:
    with pytest.raises(AccessDeniedError):
        check_not_reserved(parts)


@pytest.mark.parametrize("parts", [(), ("a", ".authgateway"), (".authgateway2",), ("authgateway",)])
def test_not_reserved(parts: tuple[str, ...]) -> None:
    check_not_reserved(parts)
