from __future__ import annotations

import pytest

from authplugins.query import param_values, rewrite_query

DROP = frozenset({"user.name", "doas"})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("op=list", "op=list"),
        ("op=list&user.name=bob", "op=list"),
        ("user.name=root&op=list&user.name=bob", "op=list"),
        ("USER.NAME=root&op=list", "op=list"),
        ("User.Name=root", ""),
        ("user%2Ename=root&op=list", "op=list"),
        ("user%2eName=root&op=list", "op=list"),
        ("op=list;user.name=root", "op=list"),
        ("op=list&doas=root&DoAs=x&doAS", "op=list"),
        ("d%6Fas=root&op=list", "op=list"),
        ("user+name=x&user.name2=y", "user+name=x&user.name2=y"),
        ("a=%2F%2F&b=x+y&&c;d", "a=%2F%2F&b=x+y&&c;d"),
        ("&op=list&user.name=x", "&op=list"),
        ("op=list&user.name=x;doas=y;z", "op=list;z"),
        ("user.name", ""),
        (" user.name=root", ""),
    ],
)
def test_identity_params_are_scrubbed_in_every_spelling(query: str, expected: str) -> None:
    assert rewrite_query(query, DROP) == expected


def test_append_is_encoded() -> None:
    assert rewrite_query("op=list&user.name=x", DROP, [("user.name", "bob")]) == "op=list&user.name=bob"
    assert rewrite_query("", DROP, [("user.name", "a b&c")]) == "user.name=a%20b%26c"


def test_param_values_decodes_and_folds() -> None:
    assert param_values("user.name=bob&USER.NAME=b%6Fb;user%2Ename=x+y", "user.name") == ["bob", "bob", "x y"]
    assert param_values("op=list", "user.name") == []
