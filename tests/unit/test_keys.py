"""The keys file: its states, its checks, and how it is changed (gateway.keys), and cookies that name their key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gateway.cookie import CookieCodec, Key, KeyRing, SessionToken
from gateway.keys import add_key, create_keys_file, read_keys, retire_keys, state

NOW = 1_800_000_000
HOUR = 3600


def key(kid: str, signs_from: int, created: int | None = None) -> Key:
    return Key(kid, kid.encode() * 4, signs_from if created is None else created, signs_from)


OLD, CUR, NEXT = key("0000000a", NOW - 2 * HOUR), key("0000000b", NOW - HOUR), key("0000000c", NOW + 300, NOW)
KEYS = (NEXT, CUR, OLD)


@pytest.mark.parametrize(
    ("k", "now", "validity", "expected"),
    [
        (NEXT, NOW, HOUR, ("pending", NOW + 300)),
        (CUR, NOW, HOUR, ("signing", NOW + 300)),
        (CUR, NOW + 300, HOUR, ("verifying", NOW + 300 + HOUR)),
        (CUR, NOW + 300 + HOUR, HOUR, ("retirable", None)),
        (NEXT, NOW + 300, HOUR, ("signing", None)),
        # The old key stopped signing an hour ago: its last cookies ran out with a validity of an hour...
        (OLD, NOW, HOUR, ("retirable", None)),
        # ...but not with one of two hours.
        (OLD, NOW, 2 * HOUR, ("verifying", NOW + HOUR)),
    ],
)
def test_states(k: Key, now: int, validity: int, expected: tuple[str, int | None]) -> None:
    assert state(k, KEYS, now, validity) == expected


def test_the_newest_due_key_signs_and_every_key_verifies() -> None:
    ring = KeyRing(named=KEYS)
    assert ring.signing_key(NOW) == CUR
    assert ring.signing_key(NOW + 300) == NEXT
    token = SessionToken("bob", "bob", "simple", NOW, NOW + 60)
    codec = CookieCodec(ring, schemes=["simple"])
    value = codec.encode(token, now=NOW)
    assert value.startswith("0000000b.")
    # A gateway whose clock is past NEXT's time signs with it; one that is not verifies it all the same.
    ahead = codec.encode(token, now=NOW + 301)
    assert ahead.startswith("0000000c.")
    assert codec.decode(ahead, now=NOW) == token
    assert codec.decode(value, now=NOW) == token


def test_the_id_is_bound_to_the_signature() -> None:
    twin = Key("0000000d", CUR.secret, CUR.created, CUR.signs_from)  # the same secret under another id
    ring = KeyRing(named=[CUR, twin])
    codec = CookieCodec(ring, schemes=["simple"])
    value = CookieCodec(KeyRing(named=[CUR]), schemes=["simple"]).encode(SessionToken("bob", "bob", "simple", NOW, NOW + 60), now=NOW)
    assert codec.decode(value, now=NOW) is not None
    assert codec.decode("0000000d" + value[8:], now=NOW) is None


def test_cookies_without_an_id_verify_through_secret_files_while_they_are_configured() -> None:
    legacy = b"l" * 40
    token = SessionToken("bob", "bob", "simple", NOW, NOW + 60)
    old_cookie = CookieCodec(KeyRing([legacy]), schemes=["simple"]).encode(token)
    migrating = CookieCodec(KeyRing([legacy], named=[CUR]), schemes=["simple"])
    assert migrating.decode(old_cookie, now=NOW) == token
    assert migrating.encode(token, now=NOW).startswith(CUR.id + ".")  # the keys file signs
    assert CookieCodec(KeyRing(named=[CUR]), schemes=["simple"]).decode(old_cookie, now=NOW) is None
    # A retired key's cookie is not tried against the keys without an id.
    retired = CookieCodec(KeyRing(named=[OLD]), schemes=["simple"]).encode(token, now=NOW)
    assert migrating.decode(retired, now=NOW) is None


def test_secrets_put_the_signing_key_first() -> None:
    legacy = b"l" * 40
    assert KeyRing([legacy], named=KEYS).secrets(NOW) == (CUR.secret, NEXT.secret, OLD.secret, legacy)
    assert KeyRing([legacy], named=KEYS).secrets(NOW + 300)[0] == NEXT.secret
    assert KeyRing([legacy]).secrets(NOW) == (legacy,)


# -- the file ---------------------------------------------------------------------------------


def test_new_rotate_retire(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = create_keys_file(path, NOW)
    assert first.signs_from == first.created == NOW
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        create_keys_file(path, NOW)
    inode = path.stat().st_ino
    second = add_key(path, NOW + 10, 300)
    assert (second.created, second.signs_from) == (NOW + 10, NOW + 310)
    assert path.stat().st_ino != inode  # replaced, not rewritten in place
    assert read_keys(path) == (second, first)
    assert retire_keys(path, NOW + 310 + 99, validity=100) == []
    assert retire_keys(path, NOW + 310 + 100, validity=100) == [first]
    assert read_keys(path) == (second,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json", "keys.json.lock"]  # no temporary file left


def test_retire_by_id(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = create_keys_file(path, NOW)
    pending = add_key(path, NOW, 300)
    with pytest.raises(ValueError, match=f"^key {first.id} signs now: rotate first"):
        retire_keys(path, NOW, key_id=first.id)
    with pytest.raises(ValueError, match="has no key 'ffffffff'"):
        retire_keys(path, NOW, key_id="ffffffff")
    assert retire_keys(path, NOW, key_id=pending.id) == [pending]  # a rotation called off
    assert read_keys(path) == (first,)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file away")
def test_a_rewrite_keeps_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    create_keys_file(path, NOW)
    os.chown(path, 65534, 65534)
    add_key(path, NOW, 0)
    assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o601])
def test_a_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keys.json"
    create_keys_file(path, NOW)
    path.chmod(mode)
    with pytest.raises(ValueError) as info:
        read_keys(path)
    assert str(info.value) == (
        f"{path} is open to group or other users (mode {mode:04o}); it holds signing keys: chmod 600 {path}"
    )


def _entry(**changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "id": "0123abcd", "created": "2026-11-24T01:30:00Z", "signs_from": "2026-11-24T01:30:00Z",
        "secret": "s" * 44,
    }
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("nonsense", "not a keys file (not JSON); make one with: authgateway keys new"),
        ('{"keys": []}', 'not a keys file (no "format": "authgateway-keys/1" with a "keys" list)'),
        ({"keys": []}, "holds no key"),
        ({"keys": [_entry(id="0123ABCD")]}, "keys[0].id: must be 8 lower-case hexadecimal digits"),
        ({"keys": [_entry(), _entry()]}, "keys[1].id = '0123abcd': given twice"),
        ({"keys": [_entry(secret="c2hvcnQ=")]}, "keys[0].secret: must be at least 32 bytes in base64url"),
        ({"keys": [_entry(secret="!!")]}, "keys[0].secret: must be at least 32 bytes in base64url"),
        ({"keys": [_entry(created="yesterday")]}, "keys[0].created = 'yesterday': must be a UTC time"),
        ({"keys": [_entry(extra=1)]}, "keys[0]: must have exactly id, created, signs_from and secret"),
    ],
)
def test_a_file_that_is_not_a_keys_file_says_why(tmp_path: Path, content: object, problem: str) -> None:
    path = tmp_path / "keys.json"
    if isinstance(content, dict):
        content = json.dumps({"format": "authgateway-keys/1", **content})
    assert isinstance(content, str)
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ValueError) as info:
        read_keys(path)
    assert str(info.value).startswith(f"{path}: {problem}")
    assert "s" * 20 not in str(info.value)  # never the secret


def test_data_node_redirects_follow_the_keys_in_force() -> None:
    from gateway.dialects import DataNodeRedirects

    secrets: tuple[bytes, ...] = (b"a" * 32,)
    dn = DataNodeRedirects(lambda: secrets, ["dn1:9864"])

    def seal(target: str) -> str:
        query = dn.seal(user="bob", effective="bob", method="GET", path="/f", client_query="",
                        scheme_node="http://dn1:9864", target=target, now=NOW)
        return f"/f?{query}"

    def open_(step: str) -> tuple[str, str] | None:
        return dn.open(step, user="bob", effective="bob", method="GET", now=NOW)

    sealed = seal("/webhdfs/v1/f?op=OPEN")
    secrets = (b"b" * 32, b"a" * 32)  # rotated: the new key seals, the old one still opens
    assert open_(sealed) == ("http://dn1:9864", "/webhdfs/v1/f?op=OPEN")
    assert open_(seal("/x")) is not None
    secrets = (b"b" * 32,)  # retired
    assert open_(sealed) is None
