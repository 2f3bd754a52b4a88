"""Permission strings and the HDFS access check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from gateway.embedded.store._perm import (
    FsAction,
    GroupMap,
    Principal,
    format_permission,
    has_access,
    parse_groups,
    parse_permission,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("755", 0o755),
        ("0755", 0o755),
        ("644", 0o644),
        ("0", 0),
        ("7", 0o7),
        ("1777", 0o1777),
        ("-rw-r--r--", 0o644),
        ("drwxr-xr-x", 0o755),
        ("rwxr-x---", 0o750),
        ("-rwxrwxrwx", 0o777),
        ("----------", 0),
        ("drwxrwxrwt", 0o1777),
        ("drwxrwxrwT", 0o1776),
        ("-rwxrwxrw-", 0o776),
    ],
)
def test_parse_permission(text: str, value: int) -> None:
    assert parse_permission(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "888", "2755", "4755", "12345", "rwx", "-rwxrwxrwxx", "xrwxrwxrwx", "-rwsr-xr-x", "-rw-r--r-t-", "u+x", "-r-xr-xr-x "],
)
def test_parse_permission_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid permission"):
        parse_permission(text)


@pytest.mark.parametrize(
    ("mode", "is_dir", "text"),
    [
        (0o644, False, "-rw-r--r--"),
        (0o755, True, "drwxr-xr-x"),
        (0o700, True, "drwx------"),
        (0o000, False, "----------"),
        (0o111, False, "---x--x--x"),  # execute alone: no r nor w shows
        (0o222, False, "--w--w--w-"),
        (0o1111, True, "d--x--x--t"),
        (0o1777, True, "drwxrwxrwt"),
        (0o1776, True, "drwxrwxrwT"),
    ],
)
def test_format_permission(mode: int, is_dir: bool, text: str) -> None:
    assert format_permission(mode, is_dir) == text
    assert parse_permission(text) == mode


@pytest.mark.parametrize(
    ("action", "label"),
    [
        (FsAction.READ, "READ"),
        (FsAction.WRITE, "WRITE"),
        (FsAction.EXECUTE, "EXECUTE"),
        (FsAction.READ | FsAction.EXECUTE, "READ_EXECUTE"),
        (FsAction.ALL, "ALL"),
    ],
)
def test_action_labels(action: FsAction, label: str) -> None:
    assert action.label == label


GROUPS = GroupMap(
    parse_groups(["staff:alice,bob", "admins:root2", "staff:carol"]), superuser="hdfs", supergroup="admins"
)


def test_parse_groups_merges_entries() -> None:
    assert parse_groups(["g:a, b", "g:c", "h:a"]) == {"g": ("a", "b", "c"), "h": ("a",)}


def test_parse_groups_splits_at_the_first_colon() -> None:
    # As the configuration check reads an entry: the group ends at the first
    # colon, and a later one is part of a user name.
    assert parse_groups(["g:a:b", "g:c"]) == {"g": ("a:b", "c")}


@pytest.mark.parametrize("entry", ["nogroup", ":a", "g:", "g: , "])
def test_parse_groups_refuses(entry: str) -> None:
    with pytest.raises(ValueError, match="group:user1,user2"):
        parse_groups([entry])


@pytest.mark.parametrize("entry", ["g:a", "g:a:b", " g : a , b ", "nogroup", ":a", "g:", " :a", "g: , "])
def test_the_configuration_check_and_parse_groups_agree(tmp_path: Path, entry: str) -> None:
    conf = tmp_path / "authgateway.toml"
    conf.write_text(f"[embedded]\nroot = {json.dumps(str(tmp_path / 'root'))}\ngroups = [{json.dumps(entry)}]\n")
    try:
        load_config(conf, env={})
        config_accepts = True
    except ConfigError as exc:
        assert "embedded.groups" in str(exc), exc
        config_accepts = False
    try:
        parse_groups([entry])
        loader_accepts = True
    except ValueError:
        loader_accepts = False
    assert config_accepts == loader_accepts


@pytest.mark.parametrize(
    ("user", "groups", "superuser"),
    [
        ("alice", {"staff"}, False),
        ("carol", {"staff"}, False),
        ("dave", set(), False),
        ("hdfs", set(), True),
        ("root2", {"admins"}, True),
        # A name is not a membership: users called like a group are in no group.
        ("admins", set(), False),
        ("staff", set(), False),
    ],
)
def test_principal(user: str, groups: set[str], superuser: bool) -> None:
    principal = GROUPS.principal(user)
    assert principal.groups == groups
    assert principal.is_superuser is superuser


def test_a_user_named_like_the_default_supergroup_is_not_a_superuser() -> None:
    groups = GroupMap(parse_groups(["supergroup:root2"]), superuser="hdfs", supergroup="supergroup")
    assert groups.principal("supergroup") == Principal("supergroup", frozenset(), False)
    assert groups.principal("root2").is_superuser is True


R, W, X = FsAction.READ, FsAction.WRITE, FsAction.EXECUTE


@pytest.mark.parametrize(
    ("user", "owner", "group", "mode", "action", "allowed"),
    [
        # owner class
        ("alice", "alice", "staff", 0o600, R | W, True),
        ("alice", "alice", "staff", 0o600, X, False),
        # the owner class applies even when group/other would allow more (HDFS, like POSIX)
        ("alice", "alice", "staff", 0o077, R, False),
        # group class
        ("bob", "alice", "staff", 0o640, R, True),
        ("bob", "alice", "staff", 0o640, W, False),
        ("bob", "alice", "staff", 0o604, R, False),  # group class applies, not other
        ("bob", "alice", "bob", 0o650, R | X, False),  # a group named like the user is not its group
        ("staff", "alice", "staff", 0o640, R, False),  # nor is a user named like a group in it
        # other class
        ("dave", "alice", "staff", 0o604, R, True),
        ("dave", "alice", "staff", 0o640, R, False),
        ("dave", "alice", "staff", 0o757, W, True),
        ("dave", "alice", "staff", 0o755, R | X, True),
        ("dave", "alice", "staff", 0o755, FsAction.ALL, False),
        # superuser and supergroup bypass
        ("hdfs", "alice", "staff", 0o000, FsAction.ALL, True),
        ("root2", "alice", "staff", 0o000, W, True),
        # nothing wanted, nothing needed
        ("dave", "alice", "staff", 0o000, FsAction.NONE, True),
    ],
)
def test_has_access(user: str, owner: str, group: str, mode: int, action: FsAction, allowed: bool) -> None:
    assert has_access(GROUPS.principal(user), owner, group, mode, action) is allowed
