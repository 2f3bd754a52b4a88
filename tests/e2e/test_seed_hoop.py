"""Every curl example of the Hoop REST API seed, through the real gateway.

The seed's examples say ``-c`` where they mean "send the jar"; here the first
request saves the cookie (``-c``) and every later one sends it (``-b``), as
the seed's "Remembering Who I Am" section intends.  Only the first request
names the user: everything after is authenticated by the cookie alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import GatewayProcess
from tests.e2e.curl import curl

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def gw(gateway: Callable[..., GatewayProcess]) -> GatewayProcess:
    return gateway()


def login(gw: GatewayProcess, jar: Path, user: str) -> None:
    r = curl("-c", str(jar), f"{gw.url}?op=homedir&user.name={user}")
    assert r.status == 200, r.body
    assert r.json() == {"homeDir": f"{gw.url}/user/{user}"}
    assert "hadoop.auth" in jar.read_text()


def test_the_seed_walkthrough(gw: GatewayProcess, tmp_path: Path) -> None:
    hdfs_jar, jar = tmp_path / "hdfs.jar", tmp_path / "babu.jar"
    login(gw, hdfs_jar, "hdfs")
    login(gw, jar, "babu")
    H = ("--header", "content-type: application/octet-stream")

    # The superuser prepares babu's home directory: mkdirs, then setowner.
    r = curl("-X", "POST", "-b", str(hdfs_jar), f"{gw.url}/user/babu?op=mkdirs")
    assert (r.status, r.json()) == (200, {"mkdirs": True})
    r = curl("-X", "PUT", "-b", str(hdfs_jar), f"{gw.url}/user/babu?op=setowner&owner=babu&group=babu")
    assert r.status == 200 and r.body == b""

    # Home directory, with the cookie alone.
    r = curl("-X", "GET", "-b", str(jar), f"{gw.url}/?op=homedir")
    assert (r.status, r.json()) == (200, {"homeDir": f"{gw.url}/user/babu"})

    # Write file.
    data = tmp_path / "data.txt"
    data.write_bytes(b"Hello, Hoop!\n" * 1000)
    r = curl("-X", "POST", "-b", str(jar), f"{gw.url}/user/babu/data.txt?op=create", "--data-binary", f"@{data}", *H)
    assert r.status == 201, r.body
    assert r.header("Location") == f"{gw.url}/user/babu/data.txt"
    assert r.header("Content-Type").startswith("application/json")
    assert r.header("Content-Length") == "0"
    assert (gw.root / "user/babu/data.txt").read_bytes() == data.read_bytes()

    # overwrite=false refuses an existing file and keeps it.
    r = curl("-X", "POST", "-b", str(jar), f"{gw.url}/user/babu/data.txt?op=create&overwrite=false",
             "--data-binary", "new", *H)
    assert 400 <= r.status < 500 and r.json()["statusCode"] == r.status
    assert (gw.root / "user/babu/data.txt").read_bytes() == data.read_bytes()

    # Read file, whole and by offset/len.
    r = curl("-X", "GET", "-b", str(jar), f"{gw.url}/user/babu/data.txt")
    assert r.status == 200 and r.body == data.read_bytes()
    assert r.header("Content-Type") == "application/octet-stream"
    assert r.header("Location") == f"{gw.url}/user/babu/data.txt"
    r = curl("-b", str(jar), f"{gw.url}/user/babu/data.txt?offset=7&len=5")
    assert r.status == 200 and r.body == b"Hoop!"
    r = curl("-I", "-b", str(jar), f"{gw.url}/user/babu/data.txt")  # HEAD: GET without the body
    assert r.status == 200 and b"Hello" not in r.body and r.header("Content-Length") == "13000"

    # Append file.
    r = curl("-X", "PUT", "-b", str(jar), f"{gw.url}/user/babu/data.txt?op=append", "--data-binary", "tail\n", *H)
    assert r.status == 200, r.body
    assert r.header("Location") == f"{gw.url}/user/babu/data.txt"
    assert (gw.root / "user/babu/data.txt").read_bytes() == data.read_bytes() + b"tail\n"

    # File status.
    r = curl("-X", "GET", "-b", str(jar), f"{gw.url}/user/babu/data.txt?op=status")
    assert r.status == 200
    st = r.json()
    assert set(st) == {"path", "isDir", "len", "owner", "group", "permission", "accessTime",
                       "modificationTime", "blockSize", "replication"}
    assert st["path"] == f"{gw.url}/user/babu/data.txt"
    assert (st["isDir"], st["len"], st["owner"], st["group"]) == (False, 13005, "babu", "babu")
    assert st["permission"] == "-rw-r--r--"

    # Make directory, rename.
    r = curl("-X", "POST", "-b", str(jar), f"{gw.url}/user/babu/dir?op=mkdirs&permission=-rwxr-x---")
    assert (r.status, r.json()) == (200, {"mkdirs": True})
    r = curl("-X", "PUT", "-b", str(jar), f"{gw.url}/user/babu/data.txt?op=rename&to=/user/babu/dir/foo.txt")
    assert (r.status, r.json()) == (200, {"rename": True})

    # List directory, with and without a glob filter.
    r = curl("-X", "GET", "-b", str(jar), f"{gw.url}/user/babu/dir?op=list")
    assert r.status == 200
    (entry,) = r.json()
    assert entry["path"] == f"{gw.url}/user/babu/dir/foo.txt" and entry["len"] == 13005
    r = curl("-b", str(jar), f"{gw.url}/user/babu/dir?op=list&filter=*.csv")
    assert (r.status, r.json()) == (200, [])
    r = curl("-b", str(jar), f"{gw.url}/user/babu/dir?op=list&filter=f?o.%7Btxt,csv%7D")
    assert [e["path"] for e in r.json()] == [f"{gw.url}/user/babu/dir/foo.txt"]

    # Set permission, times, replication.
    f = f"{gw.url}/user/babu/dir/foo.txt"
    r = curl("-X", "PUT", "-b", str(jar), f"{f}?op=setpermission&permission=-rw-------")
    assert r.status == 200 and r.body == b""
    r = curl("-X", "PUT", "-b", str(jar), f"{f}?op=settimes&mtime=1310671662423&atime=1310671662000")
    assert r.status == 200 and r.body == b""
    r = curl("-X", "PUT", "-b", str(jar), f"{f}?op=setreplication&replication=2")
    assert (r.status, r.json()) == (200, {"setReplication": True})
    st = curl("-b", str(jar), f"{f}?op=status").json()
    assert (st["permission"], st["modificationTime"], st["accessTime"], st["replication"]) == (
        "-rw-------", 1310671662423, 1310671662000, 2)

    # Set owner: only the superuser may; the seed's failure JSON otherwise.
    r = curl("-X", "PUT", "-b", str(jar), f"{f}?op=setowner&owner=hdfs&group=supergroup")
    assert r.status == 403
    err = r.json()
    assert set(err) == {"statusCode", "reason", "message", "exception"}
    assert err["statusCode"] == 403 and "Non-super user cannot change owner" in err["message"]
    r = curl("-X", "PUT", "-b", str(hdfs_jar), f"{f}?op=setowner&owner=hdfs")
    assert r.status == 200
    assert curl("-b", str(jar), f"{f}?op=status").json()["owner"] == "hdfs"

    # Delete, recursively.
    r = curl("-X", "DELETE", "-b", str(jar), f"{gw.url}/user/babu/dir?op=delete&recursive=false")
    assert 400 <= r.status < 500
    r = curl("-X", "DELETE", "-b", str(hdfs_jar), f"{gw.url}/user/babu/dir?op=delete&recursive=true")
    assert (r.status, r.json()) == (200, {"delete": True})
    assert not (gw.root / "user/babu/dir").exists()


def test_unauthenticated_and_direct_requests_are_refused(gw: GatewayProcess) -> None:
    r = curl(f"{gw.url}/?op=homedir")
    assert r.status == 401 and r.headers["www-authenticate"] == ["PseudoAuth"]
    assert r.json()["statusCode"] == 401
    # The embedded backend trusts only what the gateway signed.
    for headers in ([], ["-H", "X-Forwarded-User: hdfs"], ["-H", "X-Forwarded-User: hdfs", "-H", "X-Authgateway-Signature: 1:00"]):
        r = curl(*headers, f"{gw.backend_url}/?op=homedir&user.name=hdfs")
        assert r.status == 401, r.body
        assert r.json()["statusCode"] == 401


def test_spoofed_identity_does_not_beat_the_cookie(gw: GatewayProcess, tmp_path: Path) -> None:
    jar = tmp_path / "jar"
    login(gw, jar, "babu")
    for extra in (["-H", "X-Forwarded-User: hdfs"], ["-H", "X_Forwarded_User: hdfs"], []):
        r = curl("-b", str(jar), *extra, f"{gw.url}/?op=homedir&user.name=hdfs")
        assert (r.status, r.json()) == (200, {"homeDir": f"{gw.url}/user/babu"})
    # A doas no proxy-user rule allows is refused, as HttpFS refuses it.
    r = curl("-b", str(jar), f"{gw.url}/?op=homedir&doas=hdfs")
    assert (r.status, r.json()["exception"], r.json()["message"]) == (
        403, "AccessControlException", "User: babu is not allowed to impersonate hdfs"
    )
    # Anything the client wrote is still the client's: a create is babu's.  In /
    # (hdfs's, 755) hdfs could write and babu cannot ...
    spoof = ("-X", "POST", "-b", str(jar), "-H", "X-Forwarded-User: hdfs", "--data-binary", "x",
             "-H", "content-type: application/octet-stream")  # fmt: skip
    r = curl(*spoof, f"{gw.url}/tmpfile?op=create&user.name=hdfs")
    assert r.status == 403, r.body
    err = r.json()
    assert (err["exception"], err["message"]) == (
        "AccessControlException", "Permission denied: user=babu, access=WRITE, inode=/"
    )  # fmt: skip
    assert not (gw.root / "tmpfile").exists()
    # ... and what babu may write is babu's.
    r = curl(*spoof, f"{gw.url}/user/babu/tmpfile?op=create&user.name=hdfs")
    assert r.status == 201, r.body
    assert curl("-b", str(jar), f"{gw.url}/user/babu/tmpfile?op=status").json()["owner"] == "babu"


def test_no_secret_leaks_and_keys_are_private(gw: GatewayProcess) -> None:
    state = gw.root / ".authgateway"
    for name in ("cookie.secret", "identity.secret"):
        assert (state / name).stat().st_mode & 0o077 == 0
    key = (state / "cookie.secret").read_text().strip()
    assert key not in gw.log()
    assert "generated a new cookie signing key" in gw.log()
    # The reserved directory is invisible through the API.
    jar_less = curl(f"{gw.url}/?op=list&user.name=hdfs")
    assert jar_less.status == 200
    assert all(".authgateway" not in e["path"] for e in jar_less.json())
    # Not even the superuser may read it.
    r = curl(f"{gw.url}/.authgateway/cookie.secret?user.name=hdfs")
    assert r.status == 403, r.body
    err = r.json()
    assert (err["exception"], err["message"]) == (
        "AccessControlException", "Permission denied: /.authgateway is reserved"
    )  # fmt: skip
    assert key.encode() not in r.body
