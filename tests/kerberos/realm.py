"""A throwaway MIT Kerberos realm on loopback, for the tests and ``scripts/demo-realm``.

Everything lives under one directory: ``krb5.conf``, ``kdc.conf``, the KDC
database, its log, keytabs and credential caches.  Nothing outside it is read
or written once ``KRB5_CONFIG`` and ``KRB5_KDC_PROFILE`` point into it (see
:attr:`Realm.env`), so several realms can run side by side and none touches
the machine's own Kerberos set-up.

As a program (``python -m tests.kerberos.realm [DIR]``, which is what
``scripts/demo-realm`` runs) it creates a realm with ``HTTP/localhost`` in a
keytab and users ``alice`` and ``bob``, writes a gateway configuration next to
it, starts the gateway, prints what to type, and runs until interrupted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

__all__ = ("Realm", "RealmError", "missing_tools")

_TOOLS = ("kdb5_util", "kadmin.local", "krb5kdc", "kinit", "klist", "kdestroy")
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class RealmError(Exception):
    """The realm could not be created or a command against it failed."""


def _which(tool: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])
    return shutil.which(tool, path=path)


def missing_tools() -> list[str]:
    """The MIT Kerberos programs this module needs that are not installed."""
    return [tool for tool in _TOOLS if _which(tool) is None]


def _free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (the KDC listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RealmError("no free port for the KDC on 127.0.0.1")


class Realm:
    """A running KDC for realm ``name`` whose files are all under ``base``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    ``max_life`` is the longest ticket the KDC issues, e.g. ``"10h"``; a
    shorter one can be asked for per :meth:`kinit`.
    """

    def __init__(self, base: str | os.PathLike[str], name: str = "EXAMPLE.COM", *, max_life: str = "10h") -> None:
        self.base = Path(base).resolve()
        self.name = name
        self.max_life = max_life
        self.port = 0
        self.krb5_conf = self.base / "krb5.conf"
        self.kdc_conf = self.base / "kdc.conf"
        self.log = self.base / "kdc.log"
        self._kdc: subprocess.Popen[bytes] | None = None

    # -- life cycle -----------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The environment variables that point the Kerberos library here."""
        return {
            "KRB5_CONFIG": str(self.krb5_conf),
            "KRB5_KDC_PROFILE": str(self.kdc_conf),
            # Never fall back to the machine's or the user's ccache.
            "KRB5CCNAME": f"FILE:{self.base / 'default.ccache'}",
            # Keep the default replay cache out of /var/tmp too.
            "KRB5RCACHEDIR": str(self.base),
        }

    def start(self, *, timeout: float = 10.0) -> Realm:
        missing = missing_tools()
        if missing:
            raise RealmError(f"MIT Kerberos tools not installed: {', '.join(missing)}")
        self.base.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _ in range(3):  # another process may take the port between probe and bind
            self.port = _free_port()
            self._write_configs()
            if not (self.base / "principal").exists():
                self._run(["kdb5_util", "create", "-s", "-r", self.name, "-P", "master-password"])
            try:
                self._start_kdc(timeout)
                return self
            except RealmError as exc:
                last_error = str(exc)
        raise RealmError(last_error)

    def stop(self) -> None:
        if self._kdc is not None:
            self._kdc.terminate()
            try:
                self._kdc.wait(5)
            except subprocess.TimeoutExpired:
                self._kdc.kill()
                self._kdc.wait()
            self._kdc = None

    def __enter__(self) -> Realm:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def wait(self) -> int:
        """Block until the KDC exits; return its exit code."""
        if self._kdc is None:
            raise RealmError("the KDC is not running")
        return self._kdc.wait()

    def _write_configs(self) -> None:
        self.krb5_conf.write_text(
            f"""[libdefaults]
    default_realm = {self.name}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    forwardable = true
    udp_preference_limit = 1
    ticket_lifetime = {self.max_life}

[realms]
    {self.name} = {{
        kdc = 127.0.0.1:{self.port}
    }}

[domain_realm]
    localhost = {self.name}
    .localhost = {self.name}
"""
        )
        self.kdc_conf.write_text(
            f"""[kdcdefaults]
    kdc_ports = {self.port}
    kdc_tcp_ports = {self.port}

[realms]
    {self.name} = {{
        database_name = {self.base / 'principal'}
        key_stash_file = {self.base / 'stash'}
        acl_file = {self.base / 'kadm5.acl'}
        max_life = {self.max_life}
        max_renewable_life = 1d
        kdc_listen = 127.0.0.1:{self.port}
        kdc_tcp_listen = 127.0.0.1:{self.port}
    }}

[logging]
    kdc = FILE:{self.log}
"""
        )
        (self.base / "kadm5.acl").write_text("")

    def _start_kdc(self, timeout: float) -> None:
        kdc = _which("krb5kdc")
        assert kdc is not None
        pid_file = self.base / "krb5kdc.pid"
        with open(self.base / "krb5kdc.out", "ab") as out:
            self._kdc = subprocess.Popen(
                [kdc, "-n", "-r", self.name, "-P", str(pid_file)],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._kdc.poll() is not None:
                self._kdc = None
                raise RealmError(f"krb5kdc exited at start; see {self.base / 'krb5kdc.out'} and {self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RealmError(f"krb5kdc did not listen on 127.0.0.1:{self.port} within {timeout}s; see {self.log}")

    # -- principals, keytabs, tickets -----------------------------------------

    def _run(self, argv: list[str], *, input: str | None = None, env: Mapping[str, str] | None = None) -> str:
        tool = _which(argv[0])
        if tool is None:
            raise RealmError(f"{argv[0]} is not installed")
        proc = subprocess.run(
            [tool, *argv[1:]],
            input=input,
            capture_output=True,
            text=True,
            env={**os.environ, **self.env, **(env or {})},
            timeout=30,
        )
        if proc.returncode != 0:
            raise RealmError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def kadmin(self, query: str) -> str:
        """Run one ``kadmin.local`` query.  Its exit code says nothing: callers verify."""
        return self._run(["kadmin.local", "-r", self.name, "-q", query])

    def principal(self, name: str) -> str:
        """``name`` with this realm appended unless it has one."""
        return name if "@" in name else f"{name}@{self.name}"

    def add_user(self, name: str, password: str) -> str:
        principal = self.principal(name)
        self.kadmin(f"addprinc -pw {password} {principal}")
        if principal not in self.kadmin("listprincs"):
            raise RealmError(f"could not create {principal}")
        return principal

    def add_service(self, names: Iterable[str], keytab: str | os.PathLike[str]) -> Path:
        """Create service principals with random keys and add them to ``keytab``."""
        path = Path(keytab)
        principals = [self.principal(n) for n in names]
        existing = self.kadmin("listprincs")
        for principal in principals:
            if principal not in existing:
                self.kadmin(f"addprinc -randkey {principal}")
            # -norandkey keeps the key (and kvno) so several keytabs can hold it.
            self.kadmin(f"ktadd -k {path} -norandkey {principal}")
        listed = self.keytab_principals(path)
        missing = [p for p in principals if p not in listed]
        if missing:
            raise RealmError(f"{path} lacks {', '.join(missing)} after ktadd")
        return path

    def keytab_principals(self, keytab: str | os.PathLike[str]) -> set[str]:
        out = self._run(["klist", "-k", str(keytab)])
        return {line.split()[1] for line in out.splitlines() if line.strip()[:1].isdigit()}

    def ccache(self, name: str) -> str:
        return f"FILE:{self.base / (name.split('@')[0].replace('/', '_') + '.ccache')}"

    def kinit(self, name: str, password: str, *, ccache: str | None = None, lifetime: str | None = None) -> dict[str, str]:
        """Get a TGT for ``name``; return the environment that uses it."""
        cc = ccache or self.ccache(name)
        argv = ["kinit", "-c", cc]
        if lifetime:
            argv += ["-l", lifetime]
        self._run([*argv, self.principal(name)], input=password + "\n")
        return {**self.env, "KRB5CCNAME": cc}

    def kdestroy(self, ccache: str) -> None:
        self._run(["kdestroy", "-c", ccache])


# -- scripts/demo-realm ---------------------------------------------------------------

DEMO_USERS = (("alice", "alice"), ("bob", "bob"))


def demo_config(realm: Realm, keytab: Path, port: int) -> Path:
    """Write the gateway configuration for the demo realm; return its path."""
    config = realm.base / "authgateway.toml"
    config.write_text(
        f"""# Written by scripts/demo-realm: the gateway in front of the embedded backend,
# Kerberos SPNEGO first, pseudo authentication (?user.name=) second.
# Run it with KRB5_CONFIG={realm.krb5_conf}

[server]
host = "127.0.0.1"
port = {port}

[auth]
schemes = ["kerberos", "simple"]

[auth.kerberos]
keytab = "{keytab}"
principal = "HTTP/localhost@{realm.name}"
replay_cache = "file2:{realm.base / 'gateway.rcache2'}"
allowed_principals = ["*@{realm.name}"]

[cookie]
validity = 3600

[embedded]
root = "{realm.base / 'data'}"
listen = "unix:{realm.base / 'backend.sock'}"
"""
    )
    return config


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="demo-realm",
        description="Start a throwaway Kerberos realm (and by default a gateway using it) to try "
        "kinit and curl --negotiate by hand.",
    )
    parser.add_argument("dir", nargs="?", help="directory for the realm (default: a new temporary one, removed at exit)")
    parser.add_argument("--realm", default="EXAMPLE.COM", help="realm name (default %(default)s)")
    parser.add_argument("--port", type=int, default=14000, help="gateway port (default %(default)s)")
    parser.add_argument("--no-serve", action="store_true", help="run only the KDC; print how to start the gateway")
    args = parser.parse_args(argv)

    temporary = args.dir is None
    base = Path(tempfile.mkdtemp(prefix="authgateway-demo-realm-")) if temporary else Path(args.dir)
    realm = Realm(base, args.realm)
    gateway: subprocess.Popen[bytes] | None = None
    try:
        try:
            realm.start()
            for user, password in DEMO_USERS:
                realm.add_user(user, password)
            keytab = realm.add_service(["HTTP/localhost"], realm.base / "http.keytab")
        except RealmError as exc:
            print(f"demo-realm: {exc}", file=sys.stderr)
            return 1
        config = demo_config(realm, keytab, args.port)
        server_env = {"KRB5_CONFIG": str(realm.krb5_conf)}
        serve = f"{sys.executable} -m gateway serve --config {config}"
        jar = realm.base / "cookies"
        url = f"http://localhost:{args.port}/?op=homedir"
        print(f"Realm {realm.name}: KDC on 127.0.0.1:{realm.port}, files in {realm.base}")
        print(f"Users: {', '.join(f'{u} (password {p})' for u, p in DEMO_USERS)}; service HTTP/localhost in {keytab}\n")
        print(f"Gateway configuration ({config}):\n")
        print("    " + config.read_text().replace("\n", "\n    ").rstrip() + "\n")
        if args.no_serve:
            print("Start the gateway in another shell:\n")
            print(f"    export KRB5_CONFIG={realm.krb5_conf}\n    {serve}\n")
        else:
            gateway = subprocess.Popen(serve.split(), env={**os.environ, **server_env}, cwd=Path(__file__).resolve().parents[2])
            if not _wait_listening(args.port, gateway):
                print(f"demo-realm: the gateway did not start (exit code {gateway.poll()})", file=sys.stderr)
                return 1
        print(
            f"""Then, in another shell:

    export KRB5_CONFIG={realm.krb5_conf}
    export KRB5CCNAME={realm.ccache('alice')}
    kinit alice    # password: alice
    # SPNEGO, and -c stores the hadoop.auth cookie:
    curl --negotiate -u : -c {jar} "{url}"
    kdestroy
    # the cookie alone (-b sends it):
    curl -b {jar} "{url}"
    # pseudo authentication:
    curl "{url}&user.name=bob"

Ctrl-C here stops {'the KDC' if args.no_serve else 'the gateway and the KDC'}.""",
            flush=True,
        )
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            if gateway is not None:
                gateway.wait()
            else:
                realm.wait()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.send_signal(signal.SIGINT)
            try:
                gateway.wait(10)
            except subprocess.TimeoutExpired:
                gateway.kill()
        realm.stop()
        if temporary:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(_main())
