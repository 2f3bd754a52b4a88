from __future__ import annotations

import os
from pathlib import Path

import pytest

from authplugins.simple import SimpleOptions
from gateway.config import ConfigError, load_config


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
    assert config.backend.url == "http://127.0.0.1:9999"
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
        ('[backend]\nurl = "http://h:1"\n', "cookie.secret_files = []: required with an external backend"),
        ('[cookie]\nsamesite = "None"\n', "cookie.samesite = 'None': browsers require Secure"),
        ('[embedded]\nlisten = "nowhere"\n', "embedded.listen = 'nowhere': must be host:port or unix:/path"),
        ('[embedded]\numask = "999"\n', "embedded.umask = '999': must be an octal number"),
        ('[embedded]\ngroups = ["staff"]\n', "embedded.groups: 'staff' must look like 'group:user1,user2'"),
        ("[auth]\nschemes = []\n", "auth.schemes = []: at least one scheme is required"),
        ("[auth.simple]\nfoo = 1\n", "auth.simple.foo: unknown key (allowed: anonymous_allowed)"),
        ('[backend]\nurl = "http://user:pw@h:1"\n', "backend.url: must not contain credentials"),
        ("server = 1\n", "server: must be a table"),
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
