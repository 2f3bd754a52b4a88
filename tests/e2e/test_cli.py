"""The ``authgateway`` command as a newcomer meets it: help, version, check-config, start-up and stop.

Every run is a real subprocess (``python -m gateway ...``) with no
``AUTHGATEWAY_*`` variable of ours leaking in; nothing here binds the default
ports 14000/14001 (check-config binds nothing, and the servers get free ports).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, start_gateway, wait_for_port
from tests.e2e.curl import curl
from tests.keytabs import write_keytab

pytestmark = pytest.mark.timeout(60)

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def authgateway(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path = REPO, user: int | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATEWAY_")}
    full_env.update(env or {})
    command = [sys.executable, "-m", "gateway", *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
        full_env["PYTHONPATH"] = str(REPO)
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=30)


# -- help and version -----------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["serve"], ["check-config"], ["embedded"]])
def test_every_help_is_plain_words_with_the_precedence_and_an_example(command: list[str]) -> None:
    done = authgateway(*command, "--help")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "`" not in text and "``" not in text  # no reStructuredText
    assert "Settings, highest first: command-line flags; environment variables" in text
    assert "AUTHGATEWAY_SERVER__PORT=14002" in text
    assert re.search(r"^examples?:$", text, re.M)
    assert text.count("authgateway ") >= 2


def test_serve_help_says_which_ports_open_and_how_to_stop() -> None:
    text = authgateway("serve", "--help").stdout
    for flag in ("--config FILE", "--host HOST", "--port PORT", "--root DIR", "--backend URL"):
        assert flag in text
    assert "127.0.0.1:14000  the gateway, where clients connect (server.host, server.port)" in text
    assert "127.0.0.1:14001  the embedded backend" in text
    assert "Stopping: Ctrl-C or SIGTERM." in text
    assert "server.shutdown_timeout (default 30 s)" in text
    assert "ROOT/.authgateway/ (mode 0600)" in text


def test_top_level_help_lists_the_commands() -> None:
    text = authgateway("--help").stdout
    assert text.startswith("usage: authgateway [-h] [--version] COMMAND ...\n")
    for command in ("serve", "check-config", "embedded", "keys"):
        assert re.search(rf"^    {command}\b", text, re.M), command


def test_keys_help_says_what_each_action_does() -> None:
    done = authgateway("keys", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: authgateway keys [-h] [-c CONFIG] [--delay SECONDS]")
    for line in ("  new FILE      create FILE (mode 0600) with one key, which signs at once",
                 "  rotate        add a key: it verifies at once and signs after --delay",
                 "  retire        drop the keys no valid cookie can be signed with any more"):
        assert line in done.stdout
    assert "authgateway keys rotate --config /etc/authgateway/authgateway.toml" in done.stdout


def test_keys_without_a_file_is_a_usage_error() -> None:
    done = authgateway("keys", "list")
    assert (done.returncode, done.stderr) == (2, "authgateway keys: give the keys file, or --config with cookie.keys_file set\n")


def test_version_comes_from_the_package() -> None:
    done = authgateway("--version")
    assert (done.returncode, done.stdout) == (0, f"authgateway {VERSION}\n")


def test_version_falls_back_to_pyproject_without_installed_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from gateway import cli

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert cli._version() == VERSION


def test_version_from_a_source_tree_without_installed_metadata(tmp_path: Path) -> None:
    """A copy of the tree, run with this Python's dependencies but without authgateway's installed metadata."""
    import site

    source, packages = tmp_path / "src", tmp_path / "site"
    source.mkdir()
    packages.mkdir()
    for name in ("gateway", "authplugins"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", source)
    for entry in Path(site.getsitepackages()[0]).iterdir():
        if "authgateway" not in entry.name:  # its dist-info and the editable install's finder
            (packages / entry.name).symlink_to(entry)
    done = subprocess.run(
        [sys.executable, "-S", "-m", "gateway", "--version"], cwd=source, capture_output=True, text=True, timeout=30,
        env={"PYTHONPATH": f"{source}:{packages}", "PATH": os.environ["PATH"]},
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"authgateway {VERSION}\n", "")
    probe = subprocess.run(
        [sys.executable, "-S", "-c", "import importlib.metadata as m, gateway; print(gateway.__file__); "
         "print([d.name for d in m.distributions() if d.name == 'authgateway'])"],
        cwd=source, capture_output=True, text=True, timeout=30, env={"PYTHONPATH": f"{source}:{packages}"},
    )
    assert probe.stdout == f"{source / 'gateway' / '__init__.py'}\n[]\n", probe.stderr


def test_no_command_is_a_usage_error() -> None:
    done = authgateway()
    assert done.returncode == 2
    assert "error: the following arguments are required: COMMAND" in done.stderr


# -- check-config ------------------------------------------------------------------------------


def test_check_config_of_the_shipped_file_says_what_serve_would_do(tmp_path: Path) -> None:
    done = authgateway("check-config", str(REPO / "conf" / "authgateway.toml"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"{REPO / 'conf' / 'authgateway.toml'}: configuration is valid\n"
        "  gateway: http://127.0.0.1:14000; schemes: simple\n"
        f"  backend: embedded on 127.0.0.1:14001, serving {tmp_path / 'data'}\n"
        "  routes: /webhdfs/v1/ -> the embedded backend, webhdfs dialect; /api/v1/ -> the embedded backend, "
        "alluxio dialect; / -> the embedded backend, hoop dialect\n"
        f"  cookie key: {tmp_path / 'data' / '.authgateway' / 'cookie.secret'} (generated on the first start, "
        "mode 0600)\n"
        "  admin: off (admin.listen is empty: no metrics, /healthz or /readyz)\n"
    )
    assert not (tmp_path / "data").exists()  # checking creates nothing


def test_check_config_notes_the_deprecated_embedded_groups(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[embedded]\nroot = "{tmp_path / "data"}"\ngroups = ["supergroup:carol"]\n')
    done = authgateway("check-config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(
        "  note: embedded.groups is deprecated and read as groups.static; move its entries there "
        "(the gateway's proxy-user rules and route access read them too)\n"
    )


def test_check_config_without_a_file_checks_defaults_and_environment(tmp_path: Path) -> None:
    done = authgateway("check-config", env={"AUTHGATEWAY_SERVER__PORT": "14002"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("built-in defaults: configuration is valid\n  gateway: http://127.0.0.1:14002;")


def test_the_readme_override_that_collided_with_the_embedded_backend_is_refused(tmp_path: Path) -> None:
    done = authgateway("check-config", env={"AUTHGATEWAY_SERVER__PORT": "14001"}, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "authgateway: invalid configuration:\n"
        "  AUTHGATEWAY_SERVER__PORT = 14001: the gateway (server.host = '127.0.0.1') and the embedded backend "
        "(embedded.listen = '127.0.0.1:14001') would both listen on port 14001 of one address; "
        "give one of them another port\n"
    )


def readme_overrides() -> list[str]:
    """Every ``AUTHGATEWAY_X=value`` the README gives as an example."""
    text = (REPO / "README.md").read_text()
    found = sorted(set(re.findall(r"\b(AUTHGATEWAY_[A-Z_]+=[^\s`),]+(?:,[a-z]+)*)", text)))
    assert found, "the README gives no override example"
    return found


@pytest.mark.parametrize("assignment", readme_overrides())
def test_every_override_example_in_the_readme_works_as_printed(assignment: str, tmp_path: Path) -> None:
    name, _, value = assignment.partition("=")
    done = authgateway("check-config", env={name: os.path.expanduser(value)}, cwd=tmp_path)  # as the shell would
    if name == "AUTHGATEWAY_AUTH__SCHEMES" and "kerberos" in value:
        # Kerberos needs a keytab: the README says so next to the example.
        assert done.returncode == 2 and "auth.kerberos" in done.stderr, done.stderr
        return
    assert done.returncode == 0, done.stderr


def test_flags_win_over_the_environment_which_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text('[server]\nport = 15000\n[embedded]\nroot = "from-file"\n')
    env = {"AUTHGATEWAY_SERVER__PORT": "15001"}

    def gateway_line(*args: str, env: Mapping[str, str] | None = None) -> str:
        done = authgateway("check-config", *args, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()[1]

    assert gateway_line(str(config)) == "  gateway: http://127.0.0.1:15000; schemes: simple"
    assert gateway_line(str(config), env=env) == "  gateway: http://127.0.0.1:15001; schemes: simple"
    assert gateway_line("--config", str(config), "--port", "15002", env=env) == (
        "  gateway: http://127.0.0.1:15002; schemes: simple"
    )
    done = authgateway("check-config", str(config), "--root", "from-flag", env=env, cwd=tmp_path)
    assert f"serving {tmp_path / 'from-flag'}" in done.stdout


@pytest.mark.parametrize(
    ("args", "env", "problem"),
    [
        ((), {"AUTHGATEWAY_LOG_LEVEL": "bogus"},
         "AUTHGATEWAY_LOG_LEVEL = 'bogus': must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ((), {"AUTHGATEWAY_SERVER__PORT": "abc"}, "AUTHGATEWAY_SERVER__PORT = 'abc': must be an integer"),
        (("--host", "not a host"), {},
         "--host = 'not a host': cannot be resolved (Name or service not known); use an address of this machine "
         "(127.0.0.1, ::1, or 0.0.0.0 for every interface) or a name that resolves to one"),
        (("--port", "14001"), {},
         "--port = 14001: the gateway (server.host = '127.0.0.1') and the embedded backend "
         "(embedded.listen = '127.0.0.1:14001') would both listen on port 14001 of one address; "
         "give one of them another port"),
    ],
)
@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_configuration_problems_stop_check_config_and_serve_alike(
    command: str, args: tuple[str, ...], env: dict[str, str], problem: str, tmp_path: Path
) -> None:
    done = authgateway(command, *args, env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"authgateway: invalid configuration:\n  {problem}\n"
    assert not (tmp_path / "data").exists()  # serve stopped before creating anything


def test_a_bad_flag_value_is_a_usage_error() -> None:
    done = authgateway("serve", "--port", "abc")
    assert done.returncode == 2
    assert done.stderr.endswith("authgateway serve: error: argument --port: invalid int value: 'abc'\n")


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's own are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="authgateway-cli-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_a_data_root_the_user_cannot_write_is_refused(world_readable_dir: Path) -> None:
    nobody = 65534
    probe = authgateway("--version", user=nobody)
    if probe.returncode != 0:
        pytest.skip(f"this Python cannot run as nobody: {probe.stderr.strip()}")
    locked = world_readable_dir / "locked"
    locked.mkdir(mode=0o755)  # owned by root: nobody may look, not write
    done = authgateway("check-config", "--root", str(locked / "data"), user=nobody, cwd=world_readable_dir)
    assert done.returncode == 2
    assert done.stderr == (
        "authgateway: invalid configuration:\n"
        f"  --root = '{locked / 'data'}': cannot be created: this user cannot write in {locked}\n"
    )
    done = authgateway("serve", "--root", str(locked), "--port", "0", user=nobody, cwd=world_readable_dir)
    assert done.returncode == 2
    assert done.stderr == (
        f"authgateway: invalid configuration:\n  --root = '{locked}': this user cannot read and write in it\n"
    )


# -- start-up, stop, and a port already taken -----------------------------------------------


def test_start_up_lines_say_what_listens_where_and_how_to_stop(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path)
    try:
        assert curl(f"{gw.url}/?op=homedir&user.name=alice").status == 200
        # One worker may answer before the others are ready; the start-up lines come once all are.
        deadline = time.monotonic() + 20
        while "SIGHUP reloads the configuration" not in gw.log():
            assert time.monotonic() < deadline, gw.log()
            time.sleep(0.05)
    finally:
        gw.proc.send_signal(signal.SIGINT)
        gw.proc.wait(timeout=20)
    assert gw.proc.returncode == 0
    log = gw.log()
    root = gw.root.resolve()
    backend = gw.backend_url.removeprefix("http://")
    expected = [
        f"INFO gateway.server: embedded backend listening on {backend} (embedded.listen), serving {root} "
        f"(embedded.root); its metadata and keys are in {root}/.authgateway/",
        f"INFO gateway.server: authgateway {VERSION} listening on http://127.0.0.1:{gw.port} (server.host, "
        "server.port); schemes: simple (user.name in the query)",
        f"INFO gateway.server: routes: /webhdfs/v1/ -> the embedded backend on {backend}, webhdfs dialect; "
        f"/api/v1/ -> the embedded backend on {backend}, alluxio dialect; "
        f"/ -> the embedded backend on {backend}, hoop dialect; "
        f"cookie key: {root}/.authgateway/cookie.secret (generated on the first start, mode 0600)",
        "INFO gateway.server: Ctrl-C or SIGTERM stops it: requests in progress get 30 s (server.shutdown_timeout); "
        "SIGHUP reloads the configuration and the keys",
        "INFO gateway.server: shutting down: no new connections; requests in progress get 30 s",
        "INFO gateway.server: every request in progress finished",
        "INFO gateway.server: stopped after ",
    ]
    # With several workers, each one's lines name it.
    lines = [
        re.sub(r"^(\S+ gateway\.server: )worker \d+: ", r"\1", line.split(" ", 2)[2])
        for line in log.splitlines()
        if " gateway.server: " in line
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)


def test_the_log_level_variable_quietens_the_log(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, env={"AUTHGATEWAY_LOG_LEVEL": "warning"})
    try:
        assert curl(f"{gw.url}/?op=homedir&user.name=alice").status == 200
    finally:
        gw.stop()
    log = gw.log()
    assert "generated a new cookie signing key" in log  # a WARNING
    assert " INFO " not in log


def test_a_gateway_port_in_use_is_named_with_its_settings(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = authgateway(
            "serve", "--port", str(port), "--root", str(tmp_path / "data"),
            env={"AUTHGATEWAY_EMBEDDED__LISTEN": f"127.0.0.1:{free_port()}"}, cwd=tmp_path,
        )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].endswith(
        f"ERROR gateway.server: cannot start: the gateway (server.host, server.port) cannot listen on "
        f"127.0.0.1:{port}: address already in use: another program (or another authgateway) listens there"
    )


def test_a_backend_port_in_use_is_named_with_its_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = authgateway(
            "serve", "--port", str(free_port()), "--root", str(tmp_path / "data"),
            env={"AUTHGATEWAY_EMBEDDED__LISTEN": f"127.0.0.1:{port}"}, cwd=tmp_path,
        )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].endswith(
        f"ERROR gateway.server: cannot start: the embedded backend (embedded.listen) cannot listen on "
        f"127.0.0.1:{port}: address already in use: another program (or another authgateway) listens there"
    )


def test_embedded_alone_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    key = tmp_path / "identity.key"
    key.write_text("k" * 48)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATEWAY_")}
    env["AUTHGATEWAY_BACKEND__IDENTITY_SECRET_FILE"] = str(key)
    log = tmp_path / "embedded.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "embedded", "--root", str(tmp_path / "data"),
             "--listen", f"127.0.0.1:{port}"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc)
        assert curl(f"http://127.0.0.1:{port}/?op=homedir").status == 401  # unsigned
        # One worker may answer before the others are ready; the start-up line comes once all are.
        deadline = time.monotonic() + 20
        while "embedded backend listening on" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert proc.returncode == 0
    text = log.read_text()
    assert f"embedded backend listening on 127.0.0.1:{port} (embedded.listen)" in text
    assert "stopped after" in text


def test_serve_refuses_an_embedded_backend_behind_kerberos_that_it_would_serve_itself(tmp_path: Path) -> None:
    http = write_keytab(tmp_path / "http.keytab", "HTTP/localhost@EXAMPLE.COM")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[server]\nport = {free_port()}\n[embedded]\nroot = "{tmp_path / "data"}"\nlisten = "127.0.0.1:{free_port()}"\n'
        f'auth = "kerberos"\nkeytab = "{http}"\nprincipal = "HTTP/localhost@EXAMPLE.COM"\n'
    )
    checked = authgateway("check-config", str(config), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "  authgateway embedded: callers authenticate with SPNEGO to HTTP/localhost@EXAMPLE.COM (embedded.keytab); " \
           "0 proxy-user rule(s) for doas; serve refuses this file: it would serve the embedded routes in-process\n" \
           in checked.stdout
    served = authgateway("serve", "--config", str(config), cwd=tmp_path)
    assert served.returncode == 1
    assert 'cannot start: embedded.auth = "kerberos" is for `authgateway embedded` run alone' in served.stderr
