"""The gateway's configuration: one TOML file plus environment overrides.

Everything is loaded into one frozen :class:`Config`.  Loading never stops
at the first problem: every unknown key, wrong type, unreadable file and
conflicting pair of options is collected, and :class:`ConfigError` reports
them all at once, one line each, naming the key, quoting the value and
stating the rule.

Environment overrides name a key by its path in upper case, sections joined
with a double underscore: ``AUTHGATEWAY_SERVER__PORT=14001``,
``AUTHGATEWAY_AUTH__SCHEMES=kerberos,simple``,
``AUTHGATEWAY_AUTH__KERBEROS__KEYTAB=/etc/http.keytab``.  Lists are comma
separated.  An override wins over the file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from authplugins import SCHEME_TYPES, AuthScheme, scheme_class

__all__ = (
    "AuthConfig",
    "BackendConfig",
    "Config",
    "ConfigError",
    "CookieConfig",
    "EmbeddedConfig",
    "ENV_PREFIX",
    "MIN_SECRET_BYTES",
    "ServerConfig",
    "load_config",
    "read_secret",
)

ENV_PREFIX = "AUTHGATEWAY_"
MIN_SECRET_BYTES = 32


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in self.problems))


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = field(default="127.0.0.1", metadata=_help("address to listen on"))
    port: int = field(default=14000, metadata=_help("TCP port to listen on (0 picks a free one)"))
    tls_cert_file: str = field(default="", metadata=_help("PEM certificate; enables HTTPS with tls_key_file"))
    tls_key_file: str = field(default="", metadata=_help("PEM private key for tls_cert_file"))
    access_log: bool = field(default=True, metadata=_help("log one line per request to gateway.access"))
    max_connections: int = field(
        default=1024, metadata=_help("client connections at once; past it a new one gets 503 and is closed")
    )
    shutdown_timeout: float = field(
        default=30.0,
        metadata=_help("seconds requests in progress get to finish after SIGTERM; the rest are cut (503)"),
    )


@dataclass(frozen=True, slots=True)
class CookieConfig:
    name: str = field(default="hadoop.auth", metadata=_help("name of the session cookie"))
    domain: str = field(default="", metadata=_help("Domain attribute; empty means host-only"))
    path: str = field(default="/", metadata=_help("Path attribute"))
    samesite: Literal["Lax", "Strict", "None"] = field(default="Lax", metadata=_help("SameSite attribute"))
    secure: bool = field(default=False, metadata=_help("always set Secure (it is always set over TLS)"))
    validity: int = field(default=36000, metadata=_help("seconds a session cookie stays valid"))
    secret_files: tuple[str, ...] = field(
        default=(),
        metadata=_help(
            "files holding the signing keys, newest first: the first signs, all verify. "
            "Empty only with the embedded backend, which keeps a generated key in its root"
        ),
    )


@dataclass(frozen=True, slots=True)
class AuthConfig:
    schemes: tuple[str, ...] = field(default=("simple",), metadata=_help("schemes tried in this order"))
    # The per-scheme tables ([auth.simple], [auth.kerberos]) are validated
    # against each scheme's own options_type; see Config.scheme_options.


@dataclass(frozen=True, slots=True)
class BackendConfig:
    url: str = field(default="", metadata=_help("http(s)://host:port of the backend; empty runs the embedded one"))
    dialect: Literal["hoop"] = field(default="hoop", metadata=_help("the backend's REST dialect"))
    identity_header: str = field(
        default="X-Forwarded-User", metadata=_help("request header carrying the authenticated user")
    )
    identity_secret_file: str = field(
        default="",
        metadata=_help("key to sign the identity header with (HMAC); the embedded backend requires it"),
    )
    connect_timeout: float = field(default=10.0, metadata=_help("seconds to connect to the backend (504 after)"))
    read_timeout: float = field(default=300.0, metadata=_help("seconds the backend may stay silent (504 after)"))
    send_timeout: float = field(
        default=60.0, metadata=_help("seconds the backend may take to accept more of a request body (504 after)")
    )
    pool_timeout: float = field(
        default=10.0, metadata=_help("seconds a request may wait for a free backend connection (504 after)")
    )
    max_connections: int = field(default=256, metadata=_help("connections to the backend at most, pooled"))


@dataclass(frozen=True, slots=True)
class EmbeddedConfig:
    root: str = field(default="./data", metadata=_help("directory the embedded backend serves"))
    listen: str = field(
        default="127.0.0.1:14001", metadata=_help("host:port or unix:/path the embedded backend listens on")
    )
    superuser: str = field(default="hdfs", metadata=_help("user that bypasses permission checks"))
    supergroup: str = field(default="supergroup", metadata=_help("group whose members are superusers"))
    umask: str = field(default="022", metadata=_help("octal umask for new files and directories"))
    groups: tuple[str, ...] = field(
        default=(), metadata=_help('group memberships, each "group:user1,user2"')
    )


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = ServerConfig()
    cookie: CookieConfig = CookieConfig()
    auth: AuthConfig = AuthConfig()
    backend: BackendConfig = BackendConfig()
    embedded: EmbeddedConfig = EmbeddedConfig()
    # The validated options of each enabled scheme, in the order tried.
    scheme_options: tuple[tuple[str, Any], ...] = ()
    source: str = ""

    @property
    def embedded_mode(self) -> bool:
        return not self.backend.url

    @property
    def state_dir(self) -> Path:
        """Where the embedded mode keeps its generated keys and metadata."""
        return Path(self.embedded.root) / ".authgateway"


_SECTIONS: Mapping[str, type[Any]] = {
    "server": ServerConfig,
    "cookie": CookieConfig,
    "auth": AuthConfig,
    "backend": BackendConfig,
    "embedded": EmbeddedConfig,
}


def read_secret(path: str) -> bytes:
    """Return the key in ``path`` (surrounding white space removed).

    Raises ``OSError`` when unreadable and ``ValueError`` when shorter than
    :data:`MIN_SECRET_BYTES`; the message never contains the key.
    """
    data = Path(path).read_bytes().strip()
    if len(data) < MIN_SECRET_BYTES:
        raise ValueError(f"holds {len(data)} bytes, at least {MIN_SECRET_BYTES} are required")
    return data


# -- the generic typed-table reader -------------------------------------------------


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}s"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _coerce(tp: Any, value: Any) -> Any:
    """Return ``value`` as ``tp`` or raise ``TypeError`` with the rule."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise TypeError(f"must be {_type_name(tp)}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"must be {_type_name(tp)}")
        (item_tp, _ellipsis) = typing.get_args(tp)
        return tuple(_coerce(item_tp, v) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a declaration error, not a user error
        raise AssertionError(f"unsupported option type {tp!r}")
    raise TypeError(f"must be {_type_name(tp)}")


def _parse_env(tp: Any, text: str) -> Any:
    """Turn an environment variable's text into a value ``_coerce`` accepts."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        return [item.strip() for item in text.split(",") if item.strip()]
    if tp is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        return text
    if tp in (int, float):
        try:
            return int(text) if tp is int else float(text)
        except ValueError:
            return text
    return text


def read_table(cls: type[Any], table: Mapping[str, Any], where: str, problems: list[str]) -> Any:
    """Build dataclass ``cls`` from ``table``, appending problems under ``where``."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            allowed = ", ".join(sorted(known)) or "none"
            problems.append(f"{where}.{key}: unknown key (allowed: {allowed})")
            continue
        try:
            kwargs[key] = _coerce(hints[key], value)
        except TypeError as exc:
            problems.append(f"{where}.{key} = {value!r}: {exc}")
    return cls(**kwargs)


def _env_overrides(env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """Nest ``AUTHGATEWAY_A__B=v`` into ``{"a": {"b": "v"}}`` (values still text)."""
    tree: dict[str, Any] = {}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if len(parts) < 2 or not all(parts):
            problems.append(f"{name}: not of the form {ENV_PREFIX}SECTION__KEY")
            continue
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                problems.append(f"{name}: conflicts with another override")
                break
        else:
            node[parts[-1]] = _EnvText(text)
    return tree


class _EnvText(str):
    """An override's raw text; typed once its option's type is known."""


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _type_env_texts(cls: type[Any], table: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {
        k: (_parse_env(hints[k], v) if isinstance(v, _EnvText) and k in hints else v)
        for k, v in table.items()
    }


# -- the loader ------------------------------------------------------------------


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load, validate and return the configuration, or raise :class:`ConfigError`."""
    problems: list[str] = []
    data: dict[str, Any] = {}
    source = ""
    if path is not None:
        source = os.fspath(path)
        try:
            with open(source, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            problems.append(f"{source}: cannot read: {exc.strerror or exc}")
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{source}: not valid TOML: {exc}")
    data = _merge(data, _env_overrides(os.environ if env is None else env, problems))

    sections: dict[str, Any] = {}
    scheme_tables: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _SECTIONS:
            problems.append(f"{key}: unknown section (allowed: {', '.join(_SECTIONS)})")
        elif not isinstance(value, Mapping):
            problems.append(f"{key}: must be a table")
    for name, cls in _SECTIONS.items():
        table = data.get(name, {})
        table = dict(table) if isinstance(table, Mapping) else {}
        if name == "auth":
            scheme_tables = {k: table.pop(k) for k in list(table) if k in SCHEME_TYPES}
        sections[name] = read_table(cls, _type_env_texts(cls, table), name, problems)

    scheme_options = _read_schemes(sections["auth"], scheme_tables, problems)
    config = Config(**sections, scheme_options=scheme_options, source=source)
    problems.extend(_check(config))
    if problems:
        raise ConfigError(problems)
    return config


def _read_schemes(
    auth: AuthConfig, tables: Mapping[str, Any], problems: list[str]
) -> tuple[tuple[str, Any], ...]:
    if not auth.schemes:
        problems.append("auth.schemes = []: at least one scheme is required")
    seen: set[str] = set()
    result = []
    for name in auth.schemes:
        if name in seen:
            problems.append(f"auth.schemes: {name!r} is listed twice")
            continue
        seen.add(name)
        if name not in SCHEME_TYPES:
            problems.append(f"auth.schemes: unknown scheme {name!r} (known: {', '.join(SCHEME_TYPES)})")
            continue
        try:
            cls: type[AuthScheme] = scheme_class(name)
        except ImportError as exc:
            problems.append(f"auth.schemes: scheme {name!r} cannot be loaded: {exc}")
            continue
        table = tables.get(name, {})
        if not isinstance(table, Mapping):
            problems.append(f"auth.{name}: must be a table")
            table = {}
        before = len(problems)
        options = read_table(cls.options_type, _type_env_texts(cls.options_type, dict(table)), f"auth.{name}", problems)
        if len(problems) == before:
            problems.extend(f"auth.{name}.{line}" for line in cls.check_options(options))
        result.append((name, options))
    return tuple(result)


def _check(config: Config) -> list[str]:
    """The rules that span more than one key's type."""
    problems: list[str] = []
    server, cookie, backend, embedded = config.server, config.cookie, config.backend, config.embedded
    if not 0 <= server.port <= 65535:
        problems.append(f"server.port = {server.port}: must be between 0 and 65535")
    if server.max_connections < 1:
        problems.append(f"server.max_connections = {server.max_connections}: must be at least 1")
    if not 0 <= server.shutdown_timeout <= 3600:
        problems.append(f"server.shutdown_timeout = {server.shutdown_timeout}: must be between 0 and 3600 seconds")
    if bool(server.tls_cert_file) != bool(server.tls_key_file):
        problems.append("server.tls_cert_file, server.tls_key_file: set both or neither")
    for key in ("tls_cert_file", "tls_key_file"):
        value = getattr(server, key)
        if value and not os.access(value, os.R_OK):
            problems.append(f"server.{key} = {value!r}: file is not readable")
    if cookie.validity <= 0:
        problems.append(f"cookie.validity = {cookie.validity}: must be a positive number of seconds")
    if not cookie.name or any(c in cookie.name for c in ' \t;,="()<>@:\\/[]?{}'):
        problems.append(f"cookie.name = {cookie.name!r}: must be a non-empty cookie token")
    if not cookie.path.startswith("/"):
        problems.append(f"cookie.path = {cookie.path!r}: must start with '/'")
    if cookie.samesite == "None" and not (cookie.secure or server.tls_cert_file):
        problems.append("cookie.samesite = 'None': browsers require Secure; set cookie.secure or TLS")
    for i, secret in enumerate(cookie.secret_files):
        problems.extend(_secret_problem(f"cookie.secret_files[{i}]", secret))
    if backend.identity_secret_file:
        problems.extend(_secret_problem("backend.identity_secret_file", backend.identity_secret_file))
    if not _is_header_token(backend.identity_header):
        problems.append(f"backend.identity_header = {backend.identity_header!r}: must be an HTTP header name")
    for key in ("connect_timeout", "read_timeout", "send_timeout", "pool_timeout"):
        if getattr(backend, key) <= 0:
            problems.append(f"backend.{key} = {getattr(backend, key)}: must be positive")
    if backend.max_connections < 1:
        problems.append(f"backend.max_connections = {backend.max_connections}: must be at least 1")
    if backend.url:
        problems.extend(_url_problems(backend.url))
        if not cookie.secret_files:
            problems.append(
                "cookie.secret_files = []: required with an external backend "
                "(there is no silent random key; create one with `head -c 64 /dev/urandom | base64`)"
            )
    else:
        problems.extend(_listen_problems("embedded.listen", embedded.listen))
        try:
            mask = int(embedded.umask, 8)
            if not 0 <= mask <= 0o777:
                raise ValueError
        except ValueError:
            problems.append(f"embedded.umask = {embedded.umask!r}: must be an octal number up to 777")
        for entry in embedded.groups:
            group, sep, users = entry.partition(":")
            if not sep or not group or not users:
                problems.append(f"embedded.groups: {entry!r} must look like 'group:user1,user2'")
        root = Path(embedded.root)
        if root.exists() and not root.is_dir():
            problems.append(f"embedded.root = {embedded.root!r}: is not a directory")
    return problems


def _secret_problem(key: str, path: str) -> list[str]:
    try:
        read_secret(path)
    except OSError as exc:
        return [f"{key} = {path!r}: cannot read: {exc.strerror or exc}"]
    except ValueError as exc:
        return [f"{key} = {path!r}: {exc}"]
    return []


def _is_header_token(name: str) -> bool:
    return bool(name) and all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in name)


def _url_problems(url: str) -> list[str]:
    from yarl import URL

    try:
        parsed = URL(url)
    except ValueError:
        return [f"backend.url = {url!r}: not a URL"]
    problems = []
    if parsed.scheme not in ("http", "https") or not parsed.host:
        problems.append(f"backend.url = {url!r}: must be http://host:port or https://host:port")
    if parsed.raw_path not in ("", "/") or parsed.raw_query_string or parsed.raw_fragment:
        problems.append(f"backend.url = {url!r}: must not have a path, query or fragment")
    if parsed.user is not None:
        problems.append("backend.url: must not contain credentials")
    return problems


def _listen_problems(key: str, listen: str) -> list[str]:
    if listen.startswith("unix:"):
        return [] if len(listen) > len("unix:") else [f"{key} = {listen!r}: unix: needs a path"]
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        return [f"{key} = {listen!r}: must be host:port or unix:/path"]
    return []

