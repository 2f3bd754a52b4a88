from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from authplugins.simple import SimpleOptions
from gateway.config import KEY_HINT, KEYS_HINT, ConfigError, Override, load_config

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    return path


def secret(tmp_path: Path, name: str = "key", size: int = 48) -> str:
    path = tmp_path / name
    path.write_bytes(os.urandom(size).hex().encode()[:size])
    return str(path)


def test_defaults_are_the_embedded_pseudo_gateway() -> None:
    config = load_config(None, env={})
    assert config.embedded_mode
    assert config.server.port == 14000
    assert config.cookie.name == "hadoop.auth"
    assert config.cookie.validity == 36000
    assert config.cookie.samesite == "Lax"
    assert config.auth.schemes == ("simple",)
    assert config.scheme_options == (("simple", SimpleOptions(anonymous_allowed=False)),)
    assert config.backend.identity_header == "X-Forwarded-User"


def test_file_and_environment_overrides(tmp_path: Path) -> None:
    key = secret(tmp_path)
    path = write(
        tmp_path,
        f"""
[server]
port = 15000
[cookie]
secret_files = ["{key}"]
validity = 60
[auth.simple]
anonymous_allowed = true
[backend]
url = "http://127.0.0.1:9999"
""",
    )
    env = {
        "AUTHGATEWAY_SERVER__PORT": "15001",
        "AUTHGATEWAY_COOKIE__SECURE": "true",
        "AUTHGATEWAY_AUTH__SIMPLE__ANONYMOUS_ALLOWED": "false",
        "UNRELATED": "x",
    }
    config = load_config(path, env=env)
    assert config.server.port == 15001
    assert config.cookie.secure is True
    assert config.cookie.validity == 60
    assert config.scheme_options == (("simple", SimpleOptions(anonymous_allowed=False)),)
    assert config.backend.url == ("http://127.0.0.1:9999",)
    assert config.cookie.secret_files == (key,)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    short = secret(tmp_path, "short", 8)
    path = write(
        tmp_path,
        f"""
[server]
port = "fourteen"
colour = "blue"
tls_cert_file = "/nonexistent/cert.pem"
[cookie]
samesite = "Sideways"
validity = -1
secret_files = ["{short}", "/nonexistent/key"]
[auth]
schemes = ["simple", "magic", "simple"]
[auth.simple]
anonymous_allowed = "yes"
[backend]
url = "ftp://backend/path"
identity_header = "X User"
[extra]
a = 1
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"AUTHGATEWAY_SERVER__HOST": "::1", "AUTHGATEWAY_NOPE": "1"})
    problems = info.value.problems
    text = str(info.value)
    assert text.startswith("invalid configuration:\n")
    expected = [
        "server.port = 'fourteen': must be an integer",
        "server.colour: unknown key",
        "server.tls_cert_file, server.tls_key_file: set both or neither",
        "server.tls_cert_file = '/nonexistent/cert.pem': file is not readable",
        "cookie.samesite = 'Sideways': must be one of 'Lax', 'Strict', 'None'",
        "cookie.validity = -1: must be a positive number of seconds",
        f"cookie.secret_files[0] = '{short}': holds 8 bytes, at least 32 are required",
        "cookie.secret_files[1] = '/nonexistent/key': cannot read: No such file or directory",
        "auth.schemes: unknown scheme 'magic'",
        "auth.schemes: 'simple' is listed twice",
        "auth.simple.anonymous_allowed = 'yes': must be true or false",
        "backend.url = 'ftp://backend/path': must be http://host:port or https://host:port",
        "backend.url = 'ftp://backend/path': must not have a path, query or fragment",
        "backend.identity_header = 'X User': must be an HTTP header name",
        "extra: unknown section",
        "AUTHGATEWAY_NOPE: not of the form AUTHGATEWAY_SECTION__KEY",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in problems), (line, problems)
    assert len(problems) == len(expected)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[server\nport=1", "not valid TOML"),
        ('[backend]\nurl = "http://h:1"\n', "cookie.secret_files = [], cookie.keys_file = '': one is required"),
        ('[cookie]\nsamesite = "None"\n', "cookie.samesite = 'None': browsers require Secure"),
        ('[embedded]\nlisten = "nowhere"\n', "embedded.listen = 'nowhere': must be host:port or unix:/path"),
        ('[embedded]\numask = "999"\n', "embedded.umask = '999': must be an octal number"),
        ('[embedded]\ngroups = ["staff"]\n', "embedded.groups: 'staff' must look like 'group:user1,user2'"),
        ("[auth]\nschemes = []\n", "auth.schemes = []: at least one scheme is required"),
        ("[auth.simple]\nfoo = 1\n", "auth.simple.foo: unknown key (allowed: anonymous_allowed)"),
        ('[backend]\nurl = "http://user:pw@h:1"\n', "backend.url: must not contain credentials"),
        ("server = 1\n", "server: must be a table"),
        ("[backend]\nmax_response_head_size = 512\n", "backend.max_response_head_size = 512: must be at least 1024"),
        ("[backend]\nmax_response_headers = 0\n", "backend.max_response_headers = 0: must be at least 1"),
    ],
)
def test_single_problems(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_unreadable_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.toml", env={})
    assert "cannot read: No such file or directory" in info.value.problems[0]


def test_secret_contents_never_appear_in_messages(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_text("TOPSECRETVALUE")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f'[cookie]\nsecret_files = ["{path}"]\n'), env={})
    assert "TOPSECRETVALUE" not in str(info.value)


def test_config_is_frozen() -> None:
    config = load_config(None, env={})
    with pytest.raises(AttributeError):
        config.server.port = 1  # type: ignore[misc]


# -- where a value came from ---------------------------------------------------------


def test_a_bad_override_is_reported_under_its_variable_not_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 15000\n")
    with pytest.raises(ConfigError) as info:
        load_config(
            path,
            env={
                "AUTHGATEWAY_SERVER__PORT": "abc",
                "AUTHGATEWAY_SERVER__PROT": "1",
                "AUTHGATEWAY_COLOUR__NAME": "blue",
                "AUTHGATEWAY_AUTH__SIMPLE__ANONYMOUS_ALLOWED": "maybe",
            },
        )
    assert info.value.problems == [
        "AUTHGATEWAY_COLOUR__NAME: unknown section colour (allowed: server, cookie, auth, backend, embedded, log, groups, "
        "admin, csrf, routes, proxy_users)",
        "AUTHGATEWAY_SERVER__PORT = 'abc': must be an integer",
        "AUTHGATEWAY_SERVER__PROT: unknown key server.prot (allowed: access_log, body_timeout, forwarded_headers, "
        "head_timeout, host, keepalive_timeout, max_connections, max_connections_per_peer, max_head_size, port, shutdown_timeout, "
        "tls_cert_file, tls_key_file, trusted_proxies, workers)",
        "AUTHGATEWAY_AUTH__SIMPLE__ANONYMOUS_ALLOWED = 'maybe': must be true or false",
    ]


def test_the_same_mistake_in_the_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, '[server]\nport = "abc"\n'), env={})
    assert info.value.problems == ["server.port = 'abc': must be an integer"]


def test_flags_win_over_the_environment_which_wins_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 15000\nhost = "127.0.0.1"\n[embedded]\nroot = "/srv/file"\n')
    env = {"AUTHGATEWAY_SERVER__PORT": "15001", "AUTHGATEWAY_EMBEDDED__ROOT": str(tmp_path / "env")}
    flag = Override("server.port", 15002, "--port")
    assert load_config(path, env={}).server.port == 15000
    assert load_config(path, env=env).server.port == 15001
    config = load_config(path, env=env, overrides=[flag])
    assert config.server.port == 15002
    assert config.embedded.root == str(tmp_path / "env")  # what no flag sets stays the environment's
    assert config.server.host == "127.0.0.1"  # and what neither sets, the file's


def test_a_bad_flag_is_reported_under_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"AUTHGATEWAY_SERVER__PORT": "15001"}, overrides=[Override("server.port", 70000, "--port")])
    assert info.value.problems == ["--port = 70000: must be between 0 and 65535"]


# -- the log level -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "level"),
    [
        ({}, "INFO"),
        ({"AUTHGATEWAY_LOG_LEVEL": "debug"}, "debug"),
        ({"AUTHGATEWAY_LOG__LEVEL": "Warning"}, "Warning"),
    ],
)
def test_the_log_level_comes_from_either_variable(env: dict[str, str], level: str) -> None:
    assert load_config(None, env=env).log.level == level


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"AUTHGATEWAY_LOG_LEVEL": "bogus"}, "AUTHGATEWAY_LOG_LEVEL = 'bogus': must be one of DEBUG, INFO, WARNING, "
         "ERROR, CRITICAL"),
        ('[log]\nlevel = "loud"\n', "log.level = 'loud': must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ({"AUTHGATEWAY_LOG_LEVEL": "debug", "AUTHGATEWAY_LOG__LEVEL": "info"},
         "AUTHGATEWAY_LOG_LEVEL, AUTHGATEWAY_LOG__LEVEL: both set log.level; keep one"),
    ],
)
def test_a_bad_log_level_is_a_configuration_problem(tmp_path: Path, source: object, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        if isinstance(source, str):
            load_config(write(tmp_path, source), env={})
        else:
            assert isinstance(source, dict)
            load_config(None, env=source)
    assert info.value.problems == [problem]


# -- listeners -----------------------------------------------------------------------------


def test_the_readme_port_override_that_collided_with_the_backend_is_caught() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"AUTHGATEWAY_SERVER__PORT": "14001"})
    assert info.value.problems == [
        "AUTHGATEWAY_SERVER__PORT = 14001: the gateway (server.host = '127.0.0.1') and the embedded backend "
        "(embedded.listen = '127.0.0.1:14001') would both listen on port 14001 of one address; "
        "give one of them another port"
    ]


@pytest.mark.parametrize(
    ("host", "port", "listen", "collides"),
    [
        ("127.0.0.1", 14001, "127.0.0.1:14001", True),
        ("0.0.0.0", 14001, "127.0.0.1:14001", True),  # every IPv4 interface includes loopback
        ("127.0.0.1", 14001, "0.0.0.0:14001", True),
        ("::", 14001, "[::1]:14001", True),
        ("::1", 14001, "[::1]:14001", True),
        ("localhost", 14001, "127.0.0.1:14001", True),
        ("", 14001, "127.0.0.1:14001", True),  # empty: every interface
        # asyncio binds "::" IPv6-only (IPV6_V6ONLY), so it leaves 127.0.0.1 free.
        ("::", 14001, "127.0.0.1:14001", False),
        ("127.0.0.1", 14001, "127.0.0.2:14001", False),
        ("127.0.0.1", 14000, "127.0.0.1:14001", False),
        ("127.0.0.1", 0, "127.0.0.1:0", False),  # 0 picks a free port for each
        ("127.0.0.1", 14001, "unix:/run/backend.sock", False),
    ],
)
def test_two_listeners_on_one_address_are_refused(host: str, port: int, listen: str, collides: bool) -> None:
    env = {"AUTHGATEWAY_SERVER__HOST": host, "AUTHGATEWAY_SERVER__PORT": str(port), "AUTHGATEWAY_EMBEDDED__LISTEN": listen}
    if not collides:
        load_config(None, env=env)
        return
    with pytest.raises(ConfigError) as info:
        load_config(None, env=env)
    (problem,) = info.value.problems
    assert problem.startswith(f"AUTHGATEWAY_SERVER__PORT = {port}: the gateway (AUTHGATEWAY_SERVER__HOST = {host!r})")
    assert f"(AUTHGATEWAY_EMBEDDED__LISTEN = {listen!r})" in problem


def test_the_collision_is_no_problem_with_an_external_backend(tmp_path: Path) -> None:
    key = secret(tmp_path)
    text = f'[server]\nport = 14001\n[backend]\nurl = "http://127.0.0.1:9999"\n[cookie]\nsecret_files = ["{key}"]\n'
    assert load_config(write(tmp_path, text), env={}).server.port == 14001


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[server]\nhost = "not a host"\n',
            "server.host = 'not a host': cannot be resolved (Name or service not known); use an address of this "
            "machine (127.0.0.1, ::1, or 0.0.0.0 for every interface) or a name that resolves to one",
        ),
        (
            '[embedded]\nlisten = "no such host:14001"\n',
            "embedded.listen = 'no such host:14001': host 'no such host' cannot be resolved (Name or service not "
            "known); use an address of this machine (127.0.0.1, ::1, or 0.0.0.0 for every interface) or a name "
            "that resolves to one",
        ),
    ],
)
def test_a_host_that_does_not_resolve_is_a_problem(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert info.value.problems == [problem]


# -- the data root ----------------------------------------------------------------------------


def test_a_data_root_that_can_be_created_is_not_created_by_the_check(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "data"
    config = load_config(None, env={"AUTHGATEWAY_EMBEDDED__ROOT": str(root)})
    assert config.embedded.root == str(root)
    assert not (tmp_path / "a").exists()


def test_a_data_root_behind_a_file_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    root = tmp_path / "file" / "sub" / "data"
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"AUTHGATEWAY_EMBEDDED__ROOT": str(root)})
    assert info.value.problems == [
        f"AUTHGATEWAY_EMBEDDED__ROOT = '{root}': cannot be created: {tmp_path / 'file'} is not a directory"
    ]


def test_a_data_root_that_is_a_file_is_a_problem_and_a_relative_one_is_shown_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").write_text("")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, '[embedded]\nroot = "./data"\n'), env={})
    assert info.value.problems == [f"embedded.root = './data': is not a directory (that is {tmp_path / 'data'})"]


# A data root in a directory this user cannot write: tests/e2e/test_cli.py runs
# check-config as nobody (root, as CI runs, may write anywhere).


def test_the_tls_check_says_why_a_file_is_unreadable(tmp_path: Path) -> None:
    text = f'[server]\ntls_cert_file = "{tmp_path}/cert.pem"\ntls_key_file = "{tmp_path}"\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert info.value.problems == [
        f"server.tls_cert_file = '{tmp_path}/cert.pem': file is not readable (No such file or directory)",
        f"server.tls_key_file = '{tmp_path}': file is not readable (Is a directory)",
    ]


# -- the shipped example and the hints ------------------------------------------------------


def test_the_example_configuration_is_valid_and_holds_the_defaults() -> None:
    config = load_config(REPO / "conf" / "authgateway.toml", env={})
    assert dataclasses.replace(config, source="") == load_config(None, env={})


def test_the_key_hint_is_the_same_in_the_message_and_the_example_configuration(tmp_path: Path) -> None:
    assert KEY_HINT in (REPO / "conf" / "authgateway.toml").read_text()
    assert KEYS_HINT in (REPO / "conf" / "authgateway.toml").read_text()
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"AUTHGATEWAY_BACKEND__URL": "http://127.0.0.1:9999"})
    assert info.value.problems == [
        "cookie.secret_files = [], cookie.keys_file = '': one is required with an external backend "
        f"(there is no silent random key; create one with: {KEYS_HINT})"
    ]


# -- routes ------------------------------------------------------------------------------


def test_the_embedded_default_routes_three_faces() -> None:
    config = load_config(None, env={})
    assert [(r.prefix, r.backend, r.dialect) for r in config.routes] == [
        ("/webhdfs/v1/", ("embedded",), "webhdfs"),
        ("/api/v1/", ("embedded",), "alluxio"),
        ("/", ("embedded",), "hoop"),
    ]


def test_backend_url_alone_is_the_one_route(tmp_path: Path) -> None:
    path = write(tmp_path, f'[backend]\nurl = "http://h:1"\ndialect = "webhdfs"\n[cookie]\nsecret_files = ["{secret(tmp_path)}"]\n')
    config = load_config(path, env={})
    assert [(r.prefix, r.backend, r.dialect) for r in config.routes] == [("/", ("http://h:1",), "webhdfs")]
    assert not config.embedded_mode


def test_routes_mix_backends_and_the_root_follows_backend(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[backend]
url = "http://httpfs:14000"
[cookie]
secret_files = ["{secret(tmp_path)}"]
[[routes]]
prefix = "/webhdfs/v1/"
backend = "http://namenode:9870"
dialect = "webhdfs"
[[routes]]
prefix = "/api/v1/"
backend = "https://alluxio:39999"
dialect = "alluxio"
""",
    )
    config = load_config(path, env={})
    assert [(r.prefix, r.backend, r.dialect) for r in config.routes] == [
        ("/webhdfs/v1/", ("http://namenode:9870",), "webhdfs"),
        ("/api/v1/", ("https://alluxio:39999",), "alluxio"),
        ("/", ("http://httpfs:14000",), "hoop"),
    ]
    assert not config.embedded_mode


def test_a_route_to_embedded_starts_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[embedded]
root = "{tmp_path / 'data'}"
[[routes]]
prefix = "/"
backend = "http://httpfs:14000"
[[routes]]
prefix = "/local/"
backend = "embedded"
""",
    )
    config = load_config(path, env={})
    assert config.embedded_mode
    assert [(r.prefix, r.backend) for r in config.routes] == [("/", ("http://httpfs:14000",)), ("/local/", ("embedded",))]


def test_an_external_root_route_without_embedded_needs_cookie_keys(tmp_path: Path) -> None:
    path = write(tmp_path, '[[routes]]\nprefix = "/"\nbackend = "http://httpfs:14000"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert [p for p in info.value.problems if p.startswith("cookie.secret_files")]


def test_every_route_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[embedded]
root = "{tmp_path / 'data'}"
[[routes]]
prefix = "webhdfs/v1"
dialect = "webhdfs"
[[routes]]
prefix = "/api/"
backend = "ftp://alluxio"
dialect = "s3"
[[routes]]
prefix = "/api/"
backend = "http://h:1/path"
colour = "red"
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.problems == [
        "routes[2].colour: unknown key (allowed: auth, backend, datanodes, dialect, groups, keytab, prefix, principal, users)",
        "routes[0].prefix = 'webhdfs/v1': must start and end with '/'",
        "routes[1].backend = 'ftp://alluxio': must be http://host:port or https://host:port or \"embedded\"",
        "routes[1].dialect = 's3': unknown dialect (known: hoop, webhdfs, alluxio, generic)",
        "routes[2].prefix = '/api/': already the prefix of routes[1]",
        "routes[2].backend = 'http://h:1/path': must not have a path, query or fragment",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('routes = "x"\n', "routes: must be an array of tables ([[routes]])"),
        ("routes = [1]\n", "routes: must be an array of tables ([[routes]])"),
        ('[backend]\ndialect = "s3"\n', "backend.dialect = 's3': unknown dialect (known: hoop, webhdfs, alluxio, generic)"),
    ],
)
def test_malformed_routes(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, f'{text}[embedded]\nroot = "{tmp_path / "data"}"\n' if "[backend]" not in text else text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"AUTHGATEWAY_EMBEDDED__ROOT": str(tmp_path / "data")})
    assert problem in info.value.problems


def test_a_misspelt_embedded_is_one_problem(tmp_path: Path) -> None:
    path = write(tmp_path, f'[embedded]\nroot = "{tmp_path / "data"}"\n[[routes]]\nprefix = "/x/"\nbackend = "embeded"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.problems == [
        "routes[0].backend = 'embeded': must be http://host:port or https://host:port or \"embedded\""
    ]


def test_datanodes_belong_to_webhdfs_routes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[embedded]
root = "{tmp_path / 'data'}"
[[routes]]
prefix = "/webhdfs/v1/"
backend = "http://nn:9870"
dialect = "webhdfs"
datanodes = ["dn*.example:9864", "nohost"]
[[routes]]
prefix = "/api/v1/"
dialect = "alluxio"
datanodes = ["dn:1"]
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.problems == [
        "routes[0].datanodes: 'nohost' must look like 'host:port' (wildcards * ?)",
        "routes[1].datanodes: only a webhdfs route has data nodes",
    ]


# -- proxy users and groups --------------------------------------------------------------


def test_proxy_users_and_groups_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[embedded]
root = "{tmp_path / 'data'}"
[groups]
static = ["analysts:carol,dave"]
[[proxy_users]]
user = "knox"
groups = ["analysts"]
hosts = ["10.0.0.0/8", "localhost"]
[[proxy_users]]
user = "hue"
users = ["*"]
hosts = ["*"]
""",
    )
    config = load_config(path, env={})
    assert [(r.user, r.users, r.groups, r.hosts) for r in config.proxy_users] == [
        ("knox", (), ("analysts",), ("10.0.0.0/8", "localhost")),
        ("hue", ("*",), (), ("*",)),
    ]
    assert (config.groups.source, config.groups.static, config.groups.cache_seconds) == (
        "static", ("analysts:carol,dave",), 300.0,
    )


def test_every_proxy_user_problem_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[embedded]
root = "{tmp_path / 'data'}"
[groups]
source = "os"
static = ["analysts:carol"]
cache_seconds = -1
[[proxy_users]]
users = ["bob"]
hosts = ["*"]
[[proxy_users]]
user = "knox"
users = ["bob", "*"]
hosts = ["10.0.0.0/33", "no-such-host.invalid"]
[[proxy_users]]
user = "knox"
colour = "red"
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    problems = info.value.problems
    assert problems[0] == "proxy_users[2].colour: unknown key (allowed: groups, hosts, user, users)"
    expected = [
        "groups.static: only read with source = \"static\", not 'os'",
        "groups.cache_seconds = -1.0: must be between 0 and 86400",
        "proxy_users[0].user: must name the user these rules are for",
        "proxy_users[1].users = ['bob', '*']: \"*\" stands alone",
        "proxy_users[1].hosts: '10.0.0.0/33' is not a CIDR range",
        "proxy_users[2].user = 'knox': already the user of proxy_users[1]",
        "proxy_users[2]: give users or groups, or the rule lets 'knox' act for nobody",
        "proxy_users[2].hosts: give the client addresses (or [\"*\"]), or no address may",
    ]
    for line in expected:
        assert line in problems, (line, problems)
    assert any(p.startswith("proxy_users[1].hosts: 'no-such-host.invalid' cannot be resolved") for p in problems)


# -- backend lists (failover) and trusted proxies ----------------------------------------


def test_a_backend_may_be_a_list_and_a_string_stays_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[backend]
url = ["http://nn1:9870", "http://nn2:9870"]
failover_attempts = 2
failover_cooldown = 1.5
[cookie]
secret_files = ["{secret(tmp_path)}"]
[[routes]]
prefix = "/one/"
backend = "http://httpfs:14000"
[[routes]]
prefix = "/two/"
backend = ["http://a:1", "https://b:2"]
""",
    )
    config = load_config(path, env={})
    assert [(r.prefix, r.backend) for r in config.routes] == [
        ("/one/", ("http://httpfs:14000",)), ("/two/", ("http://a:1", "https://b:2")),
        ("/", ("http://nn1:9870", "http://nn2:9870"))]
    assert (config.backend.failover_attempts, config.backend.failover_cooldown) == (2, 1.5)


def test_a_backend_list_from_the_environment_and_the_flag() -> None:
    env = {"AUTHGATEWAY_BACKEND__URL": "http://nn1:9870, http://nn2:9870", "AUTHGATEWAY_COOKIE__SECRET_FILES": ""}
    with pytest.raises(ConfigError) as info:  # only for want of keys: the list itself is fine
        load_config(None, env=env)
    assert [p.split(" ", 1)[0] for p in info.value.problems] == ["AUTHGATEWAY_COOKIE__SECRET_FILES"]
    config = load_config(None, env={}, overrides=[Override("backend.url", "", "--backend")])
    assert config.backend.url == () and config.embedded_mode  # "" is still "none": the embedded backend


def test_every_url_of_a_backend_list_is_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[backend]
url = ["http://nn1:9870", "ftp://nn2", "http://NN1:9870/"]
failover_attempts = 0
failover_cooldown = -1
[cookie]
secret_files = ["{secret(tmp_path)}"]
[[routes]]
prefix = "/a/"
backend = []
[[routes]]
prefix = "/b/"
backend = ["embedded", "http://h:1"]
[[routes]]
prefix = "/c/"
backend = ["http://h:1", "http://h:2/x", 3]
[server]
trusted_proxies = ["10.0.0.0/8", "lb.example.com", "*", "10.0.0.0/40"]
forwarded_headers = "x-real-ip"
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.problems == [
        "routes[2].backend = ['http://h:1', 'http://h:2/x', 3]: must be a string or a list of strings",
        "server.forwarded_headers = 'x-real-ip': must be one of 'x-forwarded', 'forwarded'",
        "routes[0].backend = []: give at least one URL (or \"embedded\")",
        "routes[1].backend = ['embedded', 'http://h:1']: \"embedded\" stands alone",
        "backend.url[1] = 'ftp://nn2': must be http://host:port or https://host:port",
        "backend.url[2] = 'http://NN1:9870/': listed twice",
        "backend.failover_attempts = 0: must be between 1 and 16",
        "backend.failover_cooldown = -1.0: must be between 0 and 3600 seconds",
        "server.trusted_proxies: 'lb.example.com' is neither an IP address nor a CIDR range (names are not accepted)",
        "server.trusted_proxies: '*' is neither an IP address nor a CIDR range (names are not accepted)",
        "server.trusted_proxies: '10.0.0.0/40' is neither an IP address nor a CIDR range (names are not accepted)",
    ]


def test_a_keys_file_serves_an_external_backend_and_is_checked(tmp_path: Path) -> None:
    from gateway.keys import create_keys_file

    keys = tmp_path / "keys.json"
    create_keys_file(keys, 1_800_000_000)
    external = '[backend]\nurl = "http://127.0.0.1:9999"\n[cookie]\n'
    config = load_config(write(tmp_path, external + f'keys_file = "{keys}"\n'), env={})
    assert config.cookie.keys_file == str(keys)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, external + f'keys_file = "{tmp_path}/none.json"\n'), env={})
    assert info.value.problems == [f"cookie.keys_file = '{tmp_path}/none.json': cannot read: No such file or directory"]
    keys.chmod(0o644)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, external + f'keys_file = "{keys}"\n'), env={})
    assert info.value.problems == [
        f"cookie.keys_file = '{keys}': is open to group or other users (mode 0644); it holds signing keys: "
        f"chmod 600 {keys}"
    ]


# -- the admin listener and the log files --------------------------------------------------


def test_the_admin_listener_is_off_by_default() -> None:
    assert load_config(None, env={}).admin.listen == ""


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"AUTHGATEWAY_ADMIN__LISTEN": "127.0.0.1:14000"},
         "AUTHGATEWAY_ADMIN__LISTEN = '127.0.0.1:14000': the gateway (server.host = '127.0.0.1', server.port = 14000) "
         "listens there; the admin listener needs a port of its own"),
        ({"AUTHGATEWAY_ADMIN__LISTEN": "0.0.0.0:14000"},
         "AUTHGATEWAY_ADMIN__LISTEN = '0.0.0.0:14000': the gateway (server.host = '127.0.0.1', server.port = 14000) "
         "listens there; the admin listener needs a port of its own"),
        ({"AUTHGATEWAY_ADMIN__LISTEN": "127.0.0.1:14001"},
         "AUTHGATEWAY_ADMIN__LISTEN = '127.0.0.1:14001': the embedded backend (embedded.listen = '127.0.0.1:14001') "
         "listens there; the admin listener needs a port of its own"),
        ({"AUTHGATEWAY_ADMIN__LISTEN": "unix:/run/admin.sock"},
         "AUTHGATEWAY_ADMIN__LISTEN = 'unix:/run/admin.sock': must be host:port (Prometheus scrapes over TCP)"),
        ({"AUTHGATEWAY_ADMIN__LISTEN": "14002"},
         "AUTHGATEWAY_ADMIN__LISTEN = '14002': must be host:port or unix:/path"),
        ({"AUTHGATEWAY_ADMIN__LISTEN": "127.0.0.1:14002", "AUTHGATEWAY_ADMIN__PROBE_TIMEOUT": "0"},
         "AUTHGATEWAY_ADMIN__PROBE_TIMEOUT = 0.0: must be above 0 and at most 60 seconds"),
    ],
)
def test_the_admin_listener_needs_a_port_of_its_own(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env=env)
    assert info.value.problems == [problem]


def test_the_admin_listener_may_share_a_port_number_on_another_address(tmp_path: Path) -> None:
    config = load_config(None, env={"AUTHGATEWAY_ADMIN__LISTEN": "127.0.0.2:14000"})
    assert config.admin.listen == "127.0.0.2:14000"
    # With an external backend the embedded one's port is free.
    key = secret(tmp_path)
    config = load_config(None, env={
        "AUTHGATEWAY_ADMIN__LISTEN": "127.0.0.1:14001", "AUTHGATEWAY_BACKEND__URL": "http://127.0.0.1:9999",
        "AUTHGATEWAY_COOKIE__SECRET_FILES": key,
    })
    assert config.admin.listen == "127.0.0.1:14001"


def test_log_files_must_be_writable_where_they_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env={
            "AUTHGATEWAY_LOG__ACCESS_FILE": str(tmp_path),
            "AUTHGATEWAY_LOG__AUDIT_FILE": str(tmp_path / "missing" / "audit.log"),
        })
    assert info.value.problems == [
        f"AUTHGATEWAY_LOG__ACCESS_FILE = '{tmp_path}': is a directory",
        f"AUTHGATEWAY_LOG__AUDIT_FILE = '{tmp_path}/missing/audit.log': cannot be created: "
        f"{tmp_path}/missing is not a directory",
    ]
    config = load_config(None, env={"AUTHGATEWAY_LOG__AUDIT_FILE": str(tmp_path / "audit.log")})
    assert config.log.audit_file == str(tmp_path / "audit.log") and not (tmp_path / "audit.log").exists()


def test_the_bounds_on_connections_and_heads_are_checked_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[server]
max_connections_per_peer = -1
head_timeout = 0
body_timeout = -1
keepalive_timeout = 4000
max_head_size = 512
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.problems[:5] == [
        "server.max_connections_per_peer = -1: must be at least 0 (0: no per-address limit)",
        "server.head_timeout = 0.0: must be more than 0 and at most 3600 seconds",
        "server.body_timeout = -1.0: must be more than 0 and at most 3600 seconds",
        "server.keepalive_timeout = 4000.0: must be more than 0 and at most 3600 seconds",
        "server.max_head_size = 512: must be between 1024 and 1048576 bytes",
    ]


def test_the_bounds_on_heads_default_to_nginx_and_hadoop() -> None:
    server = load_config(None, env={}).server
    assert (server.head_timeout, server.keepalive_timeout, server.max_head_size, server.max_connections_per_peer) == (
        60.0, 75.0, 65536, 256
    )
    assert server.body_timeout == 60.0  # nginx's client_body_timeout


# -- [csrf] ------------------------------------------------------------------------------------------


def test_csrf_is_on_by_default_with_hadoops_settings() -> None:
    csrf = load_config(None, env={}).csrf
    assert csrf.enabled
    assert csrf.custom_header == "X-XSRF-HEADER"  # RestCsrfPreventionFilter.HEADER_DEFAULT
    assert csrf.methods_to_ignore == ("GET", "OPTIONS", "HEAD", "TRACE")
    assert csrf.browser_useragents_regex == ("^Mozilla.*", "^Opera.*")


def test_csrf_settings_are_checked_all_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, """
[csrf]
custom_header = "X XSRF"
methods_to_ignore = ["GET", "PO ST", ""]
browser_useragents_regex = ["^Mozilla.*", "(unclosed"]
""")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.problems == [
        "csrf.custom_header = 'X XSRF': must be an HTTP header name",
        "csrf.methods_to_ignore: 'PO ST' is not an HTTP method",
        "csrf.methods_to_ignore: '' is not an HTTP method",
        "csrf.browser_useragents_regex: '(unclosed' is not a regular expression "
        "(missing ), unterminated subpattern at position 0)",
    ]
    env = {"AUTHGATEWAY_CSRF__BROWSER_USERAGENTS_REGEX": "", "AUTHGATEWAY_CSRF__METHODS_TO_IGNORE": "GET,PUT"}
    with pytest.raises(ConfigError) as info:
        load_config(None, env=env)
    assert info.value.problems == [
        "AUTHGATEWAY_CSRF__BROWSER_USERAGENTS_REGEX: empty, so no request is a browser's; "
        "set csrf.enabled = false instead"
    ]
    assert load_config(None, env={**env, "AUTHGATEWAY_CSRF__ENABLED": "false"}).csrf.methods_to_ignore == ("GET", "PUT")

