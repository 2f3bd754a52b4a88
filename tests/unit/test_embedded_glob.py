"""Hadoop GlobFilter syntax, translated for file name matching."""

from __future__ import annotations

import time

import pytest

from gateway.embedded.store._glob import MAX_GROUP_DEPTH, GlobError, compile_glob


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("*", "anything.txt", True),
        ("*", "", True),
        ("*.txt", "a.txt", True),
        ("*.txt", "a.txt.gz", False),
        ("*.txt", "atxt", False),  # the dot is literal
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a?c", "abbc", False),
        ("[abc].log", "b.log", True),
        ("[abc].log", "d.log", False),
        ("[a-c]x", "bx", True),
        ("[a-c]x", "dx", False),
        ("[^a]x", "bx", True),
        ("[^a]x", "ax", False),
        ("[!a]x", "bx", True),
        ("[!a]x", "ax", False),
        ("{foo,bar}.csv", "foo.csv", True),
        ("{foo,bar}.csv", "bar.csv", True),
        ("{foo,bar}.csv", "baz.csv", False),
        ("{a,b{c,d}}", "bd", True),
        ("{a,b{c,d}}", "b", False),
        ("a,b", "a,b", True),  # a comma outside a group is literal
        ("a}", "a}", True),  # so is an unopened brace
        (r"\*", "*", True),
        (r"\*", "x", False),
        (r"a\?", "a?", True),
        (r"a\?", "ab", False),
        (r"\[x]", "[x]", True),
        (r"[\]]", "]", True),
        (r"[a\-z]", "-", True),
        (r"[a\-z]", "b", False),
        ("a.b", "axb", False),
        ("(x)|y+$", "(x)|y+$", True),
        ("^a", "^a", True),
        ("part-*", "part-00000", True),
        ("*", "line\nbreak", True),
    ],
)
def test_glob_matching(pattern: str, name: str, matches: bool) -> None:
    assert compile_glob(pattern).matches(name) is matches


def test_nesting_is_bounded_and_matching_linear() -> None:
    assert compile_glob("{" * MAX_GROUP_DEPTH + "a" + "}" * MAX_GROUP_DEPTH).matches("a")
    with pytest.raises(GlobError, match="nested groups"):
        compile_glob("{" * (MAX_GROUP_DEPTH + 1) + "a" + "}" * (MAX_GROUP_DEPTH + 1))
    with pytest.raises(GlobError, match="nested groups"):
        compile_glob("{" * 1500 + "a" + "}" * 1500)
    glob = compile_glob("*a" * 10 + "*b")
    started = time.perf_counter()
    assert not any(glob.matches("a" * length) for length in range(1, 200))
    assert time.perf_counter() - started < 0.5  # a backtracking regex takes hours at 60 characters


@pytest.mark.parametrize(
    "pattern",
    ["[abc", "{a,b", "a\\", "[z-a]", "[]", "[^]", "[a[b]]", "{{a}"],
)
def test_glob_errors(pattern: str) -> None:
    with pytest.raises(GlobError):
        compile_glob(pattern)
