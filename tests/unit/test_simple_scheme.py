from __future__ import annotations

import pytest

from authplugins.simple import check_user_name


@pytest.mark.parametrize("name", ["bob", "alice_1", "_svc", "a.b-c", "HOST$", "x" * 64])
def test_accepted_names(name: str) -> None:
    assert check_user_name(name) is None


@pytest.mark.parametrize(
    "name",
    ["", "1bob", "-bob", "bob smith", "bob/admin", "bob@EXAMPLE.COM", "../etc", "bob\n", "bob;x", "b\u00f6b", "x" * 65, "a$b"],
)
def test_refused_names(name: str) -> None:
    assert check_user_name(name) is not None
