"""Properties of the query reader and rewriter (``authplugins/query.py``).

After the identity parameters are rewritten the backend can read exactly one
``user.name``, ours, and no ``doas``, under the widest reading; every other
pair goes through as the client wrote it; nothing raises.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from authplugins.query import encode_param, iter_params, param_values, rewrite_query

PROPERTY = settings(derandomize=True, deadline=None, max_examples=100)

DROP = frozenset({"user.name", "doas"})

surrogates = st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF, categories=["Cs"])
any_char = st.one_of(st.characters(), surrogates)
any_text = st.text(any_char)

# HttpFS's user pattern, at most 64 characters: what check_user_name lets through.
valid_users = st.from_regex(r"[A-Za-z_][A-Za-z0-9._-]{0,62}\$?", fullmatch=True)

names = st.one_of(
    st.sampled_from(
        [
            "user.name",
            "USER.NAME",
            "User.Name",
            "user%2Ename",
            "user%2eNAME",
            "%75ser.name",
            "%55SER%2ENAME",
            "user.name%20",
            "%20user.name",
            "+user.name",
            "user+name",
            "user.name2",
            "username",
            "doas",
            "DoAs",
            "d%6Fas",
            "DO%61S",
            "%64%6F%61%73",
            "op",
            "",
            "%",
            "%2",
            "%zz",
            "%FF",
            "%C3%A9",
            "\u00e9",
            "\udcff",
            "user.name\udcff",
            "user.name%00",
        ]
    ),
    st.text(any_char.filter(lambda c: c not in "&;="), max_size=10),
)
values = st.one_of(
    st.sampled_from(
        ["", "bob", "root", "a%20b", "x+y", "%", "%2", "%zz", "%FF", "%C3%A9", "\u00e9", "\udcff", "=", "a=b"]
    ),
    st.text(any_char.filter(lambda c: c not in "&;"), max_size=10),
)
pairs = st.builds(lambda n, eq, v: n + eq + v, names, st.sampled_from(["=", "=", ""]), values)
separators = st.sampled_from(["&", "&", ";", "&&", ";&", "&;"])
structured = st.builds(
    lambda lead, body: lead + "".join(s + p for s, p in body)[1:],
    st.sampled_from(["", "&", ";"]),
    st.lists(st.tuples(separators, pairs), max_size=8),
)
soup = st.lists(
    st.sampled_from(["user.name", "USER", ".NAME", "doas", "%2E", "%", "=", "&", ";", "+", "bob", "\u00e9", "\udcff"]),
    max_size=20,
).map("".join)
queries = st.one_of(structured, soup, any_text)


def _kept_pairs(query: str) -> list[str]:
    return [raw for raw, name, _ in iter_params(query) if name not in DROP]


@PROPERTY
@given(queries, valid_users)
@example("", "bob")
@example("user.name=root&user.name=bob", "bob")
@example("USER.NAME=root;user%2Ename=x&op=list", "alice")
@example("op=list&user.name=x;doas=y;z", "bob")
@example("doas&DoAs=1&d%6Fas=2&%64OAS=3", "svc$")
@example("user.name=%FF%zz&op=\udcff", "_")
@example("&&;;user.name=&&", "bob")
def test_rewrite_leaves_exactly_our_user(query: str, user: str) -> None:
    result = rewrite_query(query, DROP, [("user.name", user)])
    assert param_values(result, "user.name") == [user]
    assert param_values(result, "USER.NAME") == [user]
    assert param_values(result, "doas") == []
    raw = [raw for raw, _, _ in iter_params(result)]
    assert raw == [*_kept_pairs(query), encode_param("user.name", user)]


@PROPERTY
@given(queries, st.text())
def test_any_appended_user_reads_back(query: str, user: str) -> None:
    # Not only valid names: whatever is appended is read back as written
    # (surrogates aside, which no user name can hold).
    result = rewrite_query(query, DROP, [("user.name", user)])
    assert param_values(result, "user.name") == [user]


@PROPERTY
@given(queries)
@example("")
@example("&")
@example("user.name=x&")
@example("user.name=x;&op=list")
@example("a=%2F%2F&b=x+y&&c;d")
def test_rewrite_keeps_other_pairs_and_is_idempotent(query: str) -> None:
    result = rewrite_query(query, DROP)
    assert param_values(result, "user.name") == param_values(result, "doas") == []
    assert [raw for raw, _, _ in iter_params(result)] == _kept_pairs(query)
    assert rewrite_query(result, DROP) == result


@PROPERTY
@given(queries)
@example("op=list&a=%2F%2F;b=x+y&&c;d")
@example("&op=list")
def test_query_without_identity_is_unchanged(query: str) -> None:
    if not any(name in DROP for _, name, _ in iter_params(query)):
        assert rewrite_query(query, DROP) == query


@PROPERTY
@given(queries, st.one_of(st.sampled_from(["user.name", "doas", "op", ""]), any_text))
def test_reading_never_raises_and_agrees(query: str, name: str) -> None:
    params = list(iter_params(query))
    assert all(isinstance(field, str) for param in params for field in param)
    assert param_values(query, name) == [v for _, n, v in params if n == name.lower()]
    assert param_values(rewrite_query(query, {name.lower()}), name) == []
