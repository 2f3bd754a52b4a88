from __future__ import annotations

import pytest

from gateway.proxy import origin_form


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/", "/"),
        ("//api//v1/paths//x%2Fy?op=list&a=%41", "//api//v1/paths//x%2Fy?op=list&a=%41"),
        ("/a%00b", "/a%00b"),
        ("http://evil.example:9/x?user.name=bob", "/x?user.name=bob"),
        ("HTTPS://host//a//b?q", "//a//b?q"),
        ("http://127.0.0.1:14001@evil.example/?x", "/?x"),
        ("http://host", "/"),
        ("http://host?op=homedir", "/?op=homedir"),
        ("*", None),
        ("evil.example:443", None),
        ("?op=list", None),
        ("", None),
        ("@evil/x", None),
    ],
)
def test_origin_form(target: str, expected: str | None) -> None:
    assert origin_form(target) == expected
