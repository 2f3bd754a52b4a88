"""The keys file: cookie signing keys with ids, shared by several gateways and rotated live.

The file is JSON, mode 0600 (a file any group or other user may read or
write is refused), written only by ``authgateway keys``::

    {"format": "authgateway-keys/1",
     "keys": [{"id": "3f9a0c2e", "created": "2026-11-24T01:30:00Z",
               "signs_from": "2026-11-24T01:35:00Z", "secret": "<base64url, 32 bytes>"}]}

A key verifies cookies as soon as a gateway has read the file, and signs
from ``signs_from`` on: the newest key whose time has come signs.  A
rotation publishes its new key ``delay`` seconds before it signs, so every
gateway reading the same file (polled each second, and on SIGHUP) knows the
key before any gateway signs with it; the older key keeps verifying until
retired.  This is the order Kubernetes prescribes for its encryption keys
(add for reading everywhere, then make it the writer) and the one JWKS
publishers follow (publish the key, then sign with it).

The states of a key at a moment (:func:`state`):

* ``pending``: published, verifies, does not sign yet;
* ``signing``: the newest key whose ``signs_from`` has come;
* ``verifying``: superseded by a newer key, still verifies the cookies it
  signed, which run out ``validity`` seconds after it stopped signing;
* ``retirable``: superseded for longer than the cookie validity, so no valid
  cookie is signed by it: ``retire`` drops it.

Every change is a read-modify-write under an exclusive ``flock`` on a lock
file beside the keys file (``KEYS.lock``), so two rotations at once each add
their key; the new content goes to a temporary file in the same directory,
is flushed to disk, and replaces the file by ``rename``, so a gateway reads
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from gateway.cookie import Key, KeyRing, LiveKeys
from gateway.log import server_logger

__all__ = (
    "DEFAULT_DELAY",
    "FORMAT",
    "KeysWatcher",
    "add_key",
    "create_keys_file",
    "file_signature",
    "read_keys",
    "retire_keys",
    "state",
)

FORMAT = "authgateway-keys/1"
DEFAULT_DELAY = 300  # seconds between publishing a key and signing with it
_SECRET_BYTES = 32
_ID_HEX = 8

Signature = tuple[int, int, int, int]
"""What tells one version of a file from another: (device, inode, size, mtime in ns)."""


def _time(value: int) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: object, where: str) -> int:
    if not isinstance(value, str):
        raise ValueError(f"{where}: must be a UTC time like 2026-11-24T01:30:00Z")
    try:
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{where} = {value!r}: must be a UTC time like 2026-11-24T01:30:00Z") from None
    return int(parsed.timestamp())


def _check_mode(path: str, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path} is not a regular file")
    if st.st_mode & 0o077:
        raise ValueError(
            f"{path} is open to group or other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"it holds signing keys: chmod 600 {path}"
        )


def read_keys(path: str | os.PathLike[str]) -> tuple[Key, ...]:
    """The keys in the file at ``path``, as written (newest first).

    Raises ``OSError`` when it cannot be read and ``ValueError`` when its mode
    lets group or others in, or its content is not a keys file; messages
    name the file and never contain a secret.
    """
    shown = os.fspath(path)
    with open(path, "rb") as fh:
        _check_mode(shown, os.fstat(fh.fileno()))
        data = fh.read()
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{shown}: not a keys file (not JSON); make one with: authgateway keys new {shown}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("keys"), list):
        raise ValueError(f"{shown}: not a keys file (no \"format\": \"{FORMAT}\" with a \"keys\" list)")
    keys: list[Key] = []
    for i, entry in enumerate(doc["keys"]):
        where = f"{shown}: keys[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"id", "created", "signs_from", "secret"}:
            raise ValueError(f"{where}: must have exactly id, created, signs_from and secret")
        kid = entry["id"]
        if not isinstance(kid, str) or len(kid) != _ID_HEX or kid.strip("0123456789abcdef"):
            raise ValueError(f"{where}.id: must be {_ID_HEX} lower-case hexadecimal digits")
        if any(k.id == kid for k in keys):
            raise ValueError(f"{where}.id = {kid!r}: given twice")
        try:
            secret = base64.urlsafe_b64decode(entry["secret"]) if isinstance(entry["secret"], str) else b""
        except (binascii.Error, ValueError):
            secret = b""
        if len(secret) < _SECRET_BYTES:
            raise ValueError(f"{where}.secret: must be at least {_SECRET_BYTES} bytes in base64url")
        created = _parse_time(entry["created"], f"{where}.created")
        keys.append(Key(kid, secret, created, _parse_time(entry["signs_from"], f"{where}.signs_from")))
    if not keys:
        raise ValueError(f"{shown}: holds no key")
    return tuple(keys)


def file_signature(path: str | os.PathLike[str]) -> Signature | None:
    """What changes when the file at ``path`` is replaced or rewritten; ``None`` when it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def state(key: Key, keys: Sequence[Key], now: float, validity: int) -> tuple[str, int | None]:
    """``key``'s state among ``keys`` at ``now`` and when it changes next (``None``: not by time alone)."""
    if key.signs_from > now:
        return "pending", key.signs_from
    newer = [k.signs_from for k in keys if k is not key and (k.signs_from, k.created) > (key.signs_from, key.created)]
    due = [t for t in newer if t <= now]
    if not due:
        return "signing", min(newer) if newer else None
    retirable_at = min(due) + validity
    if retirable_at <= now:
        return "retirable", None
    return "verifying", retirable_at


def _new_key(now: int, delay: int, taken: Sequence[Key]) -> Key:
    ids = {k.id for k in taken}
    while (kid := secrets.token_hex(_ID_HEX // 2)) in ids:
        pass
    return Key(kid, secrets.token_bytes(_SECRET_BYTES), now, now + delay)


def _document(keys: Sequence[Key]) -> bytes:
    ordered = sorted(keys, key=lambda k: (k.signs_from, k.created), reverse=True)
    entries = [
        {
            "id": k.id,
            "created": _time(k.created),
            "signs_from": _time(k.signs_from),
            "secret": base64.urlsafe_b64encode(k.secret).decode("ascii"),
        }
        for k in ordered
    ]
    return (json.dumps({"format": FORMAT, "keys": entries}, indent=2) + "\n").encode("ascii")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of the keys file at ``path`` (on ``path.lock``, which outlives renames)."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write(path: Path, keys: Sequence[Key], *, replace: bool) -> None:
    """Write ``keys`` to ``path`` atomically (temporary file, fsync, rename, fsync of the directory).

    The new file keeps the owner and group of the one it replaces when this
    process may set them (root rotating the keys of a gateway that runs as
    another user), so the gateways can still read it.
    """
    directory = path.parent
    owner = None
    if replace:
        st = os.stat(path)
        owner = (st.st_uid, st.st_gid)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "wb") as fh:
            fh.write(_document(keys))
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the file exists: new never overwrites
            os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def create_keys_file(path: str | os.PathLike[str], now: int) -> Key:
    """Create a keys file at ``path`` with one key that signs at once; ``FileExistsError`` if there is one."""
    target = Path(path)
    with _locked(target):
        key = _new_key(now, 0, ())
        _write(target, [key], replace=False)
    return key


def add_key(path: str | os.PathLike[str], now: int, delay: int) -> Key:
    """Add a key to the file at ``path`` that verifies at once and signs ``delay`` seconds from ``now``."""
    target = Path(path)
    with _locked(target):
        keys = read_keys(target)
        key = _new_key(now, delay, keys)
        _write(target, [key, *keys], replace=True)
    return key


def retire_keys(
    path: str | os.PathLike[str], now: int, *, validity: int | None = None, key_id: str | None = None
) -> list[Key]:
    """Drop from the file at ``path`` the key ``key_id``, or every retirable key (by ``validity``); those dropped.

    Raises ``ValueError`` (the file unchanged) for an unknown id or for the
    key that signs now: dropping it would leave sessions being issued with a
    key nobody can verify.
    """
    target = Path(path)
    with _locked(target):
        keys = read_keys(target)
        if key_id is not None:
            dropped = [k for k in keys if k.id == key_id]
            if not dropped:
                raise ValueError(f"{target} has no key {key_id!r} (authgateway keys list {target} shows them)")
            if state(dropped[0], keys, now, validity or 0)[0] == "signing":
                raise ValueError(f"key {key_id} signs now: rotate first, and retire it once the new key signs")
        else:
            assert validity is not None
            dropped = [k for k in keys if state(k, keys, now, validity)[0] == "retirable"]
        if dropped:
            _write(target, [k for k in keys if k not in dropped], replace=True)
    return dropped


def _describe(ring: KeyRing, now: float) -> str:
    """The ids in ``ring`` and which signs, for a log line (never a secret)."""
    signing = ring.signing_key(now)
    parts = [f"{k.id} ({'signing' if k is signing else 'pending' if k.signs_from > now else 'verifying'})"
             for k in ring.named]
    if ring.keys:
        parts.append(f"{len(ring.keys)} key(s) without id ({'signing' if signing is None else 'verifying'})")
    return ", ".join(parts)


class KeysWatcher:
    """Keeps ``live`` in step with the key files: reread when the keys file changes, and on demand.

    ``load`` reads the files and builds the ring (raising ``OSError`` or
    ``ValueError``); ``path`` is the keys file to watch, if any.  A failed
    reload is logged and the ring in force kept: a gateway never loses the
    keys it has because of a half-made or unreadable file.
    """

    def __init__(self, live: LiveKeys, load: Callable[[], KeyRing], path: str, *, interval: float = 1.0) -> None:
        self._live = live
        self._load = load
        self._path = path
        self._interval = interval
        self._seen = file_signature(path) if path else None

    def retarget(self, load: Callable[[], KeyRing], path: str) -> None:
        """Read other files from now on (a reloaded configuration names them)."""
        self._load, self._path = load, path

    def reload(self, why: str) -> bool:
        """Read the keys again and put them in force; whether that succeeded."""
        seen = file_signature(self._path) if self._path else None
        try:
            ring = self._load()
        except (OSError, ValueError) as exc:
            server_logger.error("keys not reloaded (%s): %s; the keys in force are kept", why, exc)
            return False
        finally:
            self._seen = seen  # a bad version is reported once, not every second
        self._live.replace(ring)
        server_logger.info("keys reloaded (%s): %s", why, _describe(ring, time.time()))
        return True

    async def run(self) -> None:
        """Poll the keys file every ``interval`` seconds until cancelled; say when another key starts signing."""
        signing = self._signing_id()
        while True:
            await asyncio.sleep(self._interval)
            try:
                if self._path and file_signature(self._path) != self._seen:
                    self.reload(f"{self._path} changed")
            except Exception:  # the watcher must outlive any one bad reload
                server_logger.exception("rereading the keys failed; the keys in force are kept")
            now_signing = self._signing_id()
            if now_signing is not None and now_signing != signing:
                server_logger.info("key %s signs new cookies from now on", now_signing)
            signing = now_signing

    def _signing_id(self) -> str | None:
        key = self._live.ring.signing_key(time.time())
        return None if key is None else key.id
