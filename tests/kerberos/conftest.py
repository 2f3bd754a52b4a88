"""A real MIT KDC for the Kerberos tests, started once per session on loopback.

Under ``CI=true`` a realm that cannot start fails the tests; elsewhere they
are skipped with the reason.

The realm ``EXAMPLE.COM`` holds:

* users ``alice``, ``bob``, ``mallory`` (passwords = name + ``-pw``), and
  ``alice/admin``;
* ``HTTP/localhost`` in ``http.keytab``; ``HTTP/otherhost`` in
  ``other.keytab``; all of ``HTTP/localhost``, ``HTTP/otherhost`` and
  ``host/localhost`` in ``multi.keytab``.

During each test this process's environment points the Kerberos library at
the realm (``KRB5_CONFIG``), as a gateway's would; other tests never see it.  Clients name their credential cache
explicitly; no test uses the machine's or the user's tickets.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.kerberos.realm import Realm, RealmError, missing_tools

REALM = "EXAMPLE.COM"
USERS = ("alice", "bob", "mallory", "alice/admin")


def password(user: str) -> str:
    return user.replace("/", "-") + "-pw"


def unavailable(reason: str) -> NoReturn:
    """Fail under CI (the realm must work there), skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Kerberos realm unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"Kerberos realm unavailable: {reason}")


@dataclass(frozen=True)
class KdcRealm:
    """The running realm and the files the tests use."""

    realm: Realm
    http_keytab: Path
    other_keytab: Path
    multi_keytab: Path

    @property
    def name(self) -> str:
        return self.realm.name

    @property
    def env(self) -> dict[str, str]:
        return self.realm.env

    def ccache(self, user: str, *, lifetime: str | None = None) -> str:
        """A fresh credential cache holding ``user``'s TGT (a new one per call)."""
        file_name = f"{user.replace('/', '_')}.{next(_serial)}"
        cc = f"FILE:{self.realm.base / 'ccaches' / file_name}"
        self.realm.kinit(user, password(user), ccache=cc, lifetime=lifetime)
        return cc


_serial = itertools.count()


def gateway_kerberos(kdc: KdcRealm, tmp_path: Path, **options: Any) -> dict[str, Any]:
    """The ``[auth.kerberos]`` of a test gateway: the realm's HTTP/localhost keytab, a replay
    cache of its own under ``tmp_path``, and ``options``."""
    return {
        "keytab": str(kdc.http_keytab),
        "principal": "HTTP/localhost@EXAMPLE.COM",
        "replay_cache": f"file2:{tmp_path / 'gateway.rcache2'}",
        **options,
    }


@pytest.fixture(scope="session")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KdcRealm]:
    missing = missing_tools()
    if missing:
        unavailable(f"not installed: {', '.join(missing)} (apt-get install krb5-kdc krb5-admin-server krb5-user)")
    try:
        import gssapi  # noqa: F401
    except ImportError as exc:
        unavailable(f"python-gssapi cannot be imported: {exc}")
    base = tmp_path_factory.mktemp("realm")
    (base / "ccaches").mkdir()
    realm = Realm(base, REALM)
    try:
        realm.start()
        for user in USERS:
            realm.add_user(user, password(user))
        http = realm.add_service(["HTTP/localhost"], base / "http.keytab")
        other = realm.add_service(["HTTP/otherhost"], base / "other.keytab")
        multi = realm.add_service(["HTTP/localhost", "HTTP/otherhost", "host/localhost"], base / "multi.keytab")
    except (RealmError, OSError) as exc:
        realm.stop()
        unavailable(str(exc))
    try:
        yield KdcRealm(realm, http, other, multi)
    finally:
        realm.stop()


@pytest.fixture(autouse=True)
def realm_environment(kdc: KdcRealm, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point this process's Kerberos library at the realm, for one test only."""
    for key, value in kdc.env.items():
        monkeypatch.setenv(key, value)
