"""The gateway's configuration: one TOML file plus environment overrides.

Everything is loaded into one frozen :class:`Config`.  Loading never stops
at the first problem: every unknown key, wrong type, unreadable file and
conflicting pair of options is collected, and :class:`ConfigError` reports
them all at once, one line each, naming the key, quoting the value and
stating the rule.

Environment overrides name a key by its path in upper case, sections joined
with a double underscore: ``AUTHGATEWAY_SERVER__PORT=14002``,
``AUTHGATEWAY_AUTH__SCHEMES=kerberos,simple``,
``AUTHGATEWAY_AUTH__KERBEROS__KEYTAB=/etc/http.keytab``;
``AUTHGATEWAY_LOG_LEVEL`` is another name for ``AUTHGATEWAY_LOG__LEVEL``.
Lists are comma separated.  Precedence, highest first: :class:`Override`
(the command line's flags), the environment, the file, the defaults.  A
problem with a value that came from a variable or a flag names that
variable or flag instead of the key.

The checks read the machine as it is (host names resolve, the data root
can be created) but change nothing on it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import tomllib
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from authplugins import SCHEME_TYPES, AuthScheme, ConfigError, scheme_class
from gateway.dialects import DIALECTS
from gateway.forwarded import trusted_entry_problem
from gateway.groups import parse_groups

__all__ = (
    "AdminConfig",
    "AuthConfig",
    "BackendConfig",
    "Config",
    "ConfigError",
    "CookieConfig",
    "CsrfConfig",
    "EmbeddedConfig",
    "ENV_PREFIX",
    "KEY_HINT",
    "KEYS_HINT",
    "LOG_LEVELS",
    "LogConfig",
    "MIN_SECRET_BYTES",
    "Override",
    "RouteConfig",
    "ServerConfig",
    "EMBEDDED",
    "load_config",
    "read_secret",
)

ENV_PREFIX = "AUTHGATEWAY_"
MIN_SECRET_BYTES = 32
# How to make a key file, wherever one is asked for (conf/authgateway.toml says the same).
KEY_HINT = "head -c 48 /dev/urandom | base64 > /etc/authgateway/cookie.key"
KEYS_HINT = "authgateway keys new /etc/authgateway/keys.json"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Other names of an override, kept because people type them.
_ENV_ALIASES: Mapping[str, str] = {"AUTHGATEWAY_LOG_LEVEL": "log.level"}
# Addresses a listener binds on every interface of its family.
_WILDCARDS = frozenset({"0.0.0.0", "::"})


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def _one_or_many(text: str) -> dict[str, str]:
    """A list option that may also be written as one string (``backend = "http://a"``)."""
    return {"help": text, "one_or_many": "yes"}


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
    max_connections_per_peer: int = field(
        default=256,
        metadata=_help(
            "connections one client address may hold at once, across all workers (each gets its share); past "
            "it its new ones get 503. Counted by TCP peer: trusted_proxies are exempt. 0: no such limit"
        ),
    )
    head_timeout: float = field(
        default=60.0,
        metadata=_help(
            "seconds to receive a whole request head (nginx's client_header_timeout), from the connection's "
            "start for its first request, from the head's first byte for the next; then 408 and closed"
        ),
    )
    body_timeout: float = field(
        default=60.0,
        metadata=_help(
            "seconds a request body may go without a byte while the gateway waits for it (nginx's "
            "client_body_timeout); then 408 if the answer has not begun, else the connection is closed. "
            "Time the gateway is not reading (a slow backend holding the upload back) does not count"
        ),
    )
    keepalive_timeout: float = field(
        default=75.0,
        metadata=_help("seconds an idle keep-alive connection is kept after an answer (nginx's keepalive_timeout)"),
    )
    max_head_size: int = field(
        default=65536,
        metadata=_help(
            "bytes of a request head (request line and headers) at most, as Hadoop's HTTP servers allow; "
            "a larger one gets 431 and is closed"
        ),
    )
    workers: int = field(
        default=0,
        metadata=_help("worker processes serving the port; 0: one per CPU core (the connection limit is shared)"),
    )
    shutdown_timeout: float = field(
        default=30.0,
        metadata=_help("seconds requests in progress get to finish after SIGTERM; the rest are cut (503)"),
    )
    trusted_proxies: tuple[str, ...] = field(
        default=(),
        metadata=_help(
            "IPs and CIDR ranges of proxies whose forwarded headers name the client; from anyone else "
            "they are ignored. Empty: the TCP peer is the client"
        ),
    )
    forwarded_headers: Literal["x-forwarded", "forwarded"] = field(
        default="x-forwarded",
        metadata=_help(
            'which headers trusted proxies use: "x-forwarded" (X-Forwarded-For, -Proto, -Host, -Port) '
            'or "forwarded" (RFC 7239); the other kind is never believed'
        ),
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
            "files holding the signing keys, newest first: the first signs (unless keys_file is set), all "
            "verify. Empty only with keys_file or the embedded backend, which keeps a generated key in its root"
        ),
    )
    keys_file: str = field(
        default="",
        metadata=_help(
            "the keys file (mode 0600) several gateways share, made and rotated by 'authgateway keys'; "
            "reread when it changes. Its keys sign; secret_files then only verify"
        ),
    )


@dataclass(frozen=True, slots=True)
class AuthConfig:
    schemes: tuple[str, ...] = field(default=("simple",), metadata=_help("schemes tried in this order"))
    # The per-scheme tables ([auth.simple], [auth.kerberos]) are validated
    # against each scheme's own options_type; see Config.scheme_options.


@dataclass(frozen=True, slots=True)
class BackendConfig:
    url: tuple[str, ...] = field(
        default=(),
        metadata=_one_or_many(
            "http(s)://host:port of the backend, or a list of them to fail over between; empty runs the embedded one"
        ),
    )
    dialect: str = field(
        default="hoop",
        metadata=_help("the backend's REST dialect: hoop, webhdfs, alluxio or generic (the route for '/')"),
    )
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
    max_response_head_size: int = field(
        default=32768,
        metadata=_help(
            "bytes of a backend answer's status line and headers at most (as nginx's proxy_buffer_size; 502 after)"
        ),
    )
    max_response_headers: int = field(
        default=100, metadata=_help("header lines of a backend answer at most (502 after)")
    )
    failover_attempts: int = field(
        default=3, metadata=_help("backends of a route's list one request is tried on at most, each once")
    )
    failover_cooldown: float = field(
        default=5.0, metadata=_help("seconds a backend that failed is passed over before it is tried again; 0: never")
    )
    auth: Literal["simple", "kerberos"] = field(
        default="simple",
        metadata=_help(
            'how the gateway authenticates to the backend: "simple" (the backend trusts the identity header '
            'and user.name) or "kerberos" (SPNEGO as principal from keytab; the user goes as doas)'
        ),
    )
    principal: str = field(
        default="",
        metadata=_help('kerberos: the gateway\'s own principal, e.g. "HTTP/gateway.example.com@EXAMPLE.COM"'),
    )
    keytab: str = field(default="", metadata=_help("kerberos: the keytab holding principal's keys"))


EMBEDDED = "embedded"
"""A route's ``backend`` that names the embedded backend."""


@dataclass(frozen=True, slots=True)
class RouteConfig:
    prefix: str = field(default="", metadata=_help("path prefix, starting and ending with '/'; the longest wins"))
    backend: tuple[str, ...] = field(
        default=(EMBEDDED,),
        metadata=_one_or_many('http(s)://host:port of the backend, a list of them to fail over between, or "embedded"'),
    )
    dialect: str = field(default="hoop", metadata=_help("hoop, webhdfs, alluxio or generic"))
    datanodes: tuple[str, ...] = field(
        default=(),
        metadata=_help(
            'webhdfs only: "host:port" patterns (* and ? wildcards) of the DataNodes its redirects may '
            "send data steps to, through the gateway; redirects elsewhere are dropped"
        ),
    )
    users: tuple[str, ...] = field(
        default=(), metadata=_help("only these users (and members of groups) may use the route; empty: anyone")
    )
    groups: tuple[str, ...] = field(
        default=(), metadata=_help("only members of these groups (and users) may use the route; groups from [groups]")
    )
    auth: Literal["simple", "kerberos"] = field(
        default="simple", metadata=_help('as backend.auth, for this route\'s backend ("/" follows [backend])')
    )
    principal: str = field(default="", metadata=_help("kerberos: as backend.principal; empty takes [backend]'s"))
    keytab: str = field(default="", metadata=_help("kerberos: as backend.keytab; empty takes [backend]'s"))

    def credentials(self, backend: BackendConfig) -> tuple[str, str]:
        """The principal and keytab the gateway authenticates to this route's backend with."""
        return self.principal or backend.principal, self.keytab or backend.keytab


# What the embedded backend serves when no route says otherwise; "/" follows [backend].
_EMBEDDED_ROUTES = (
    RouteConfig("/webhdfs/v1/", (EMBEDDED,), "webhdfs"),
    RouteConfig("/api/v1/", (EMBEDDED,), "alluxio"),
)


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
        default=(),
        metadata=_help('deprecated: group memberships, each "group:user1,user2"; write them in groups.static'),
    )
    auth: Literal["signed", "kerberos"] = field(
        default="signed",
        metadata=_help(
            'who may call it: "signed" (the gateway, with the identity header signed with '
            'backend.identity_secret_file) or "kerberos" (SPNEGO to principal from keytab; a caller '
            "[[proxy_users]] allow may act for another user with doas). kerberos only for "
            "`authgateway embedded` run alone"
        ),
    )
    principal: str = field(
        default="HTTP/_HOST",
        metadata=_help("kerberos: the service principal callers get tickets for; _HOST is this machine's name"),
    )
    keytab: str = field(default="", metadata=_help("kerberos: the keytab holding principal's keys"))
    cookie_validity: int = field(
        default=36000,
        metadata=_help('kerberos: seconds the "hadoop.auth" cookie it sets after a handshake is valid'),
    )
    ls_limit: int = field(
        default=1000,
        metadata=_help(
            "entries per LISTSTATUS_BATCH answer, as HDFS's dfs.ls.limit; a streamed listing (LISTSTATUS, "
            "list, list-status) reads 8 times this many names per pass and holds no more, whatever the "
            "directory's size"
        ),
    )
    max_write_streams: int = field(
        default=64,
        metadata=_help(
            "open Alluxio write streams (create-file) one user may hold at once; more are refused "
            "with RESOURCE_EXHAUSTED until one is closed or expires"
        ),
    )


@dataclass(frozen=True, slots=True)
class GroupsConfig:
    source: Literal["static", "os"] = field(
        default="static",
        metadata=_help(
            'where proxy-user rules, route access and the embedded backend\'s permissions find a user\'s '
            'groups: "static" (the entries below) or "os" (the system\'s user and group databases, as getent '
            "sees them)"
        ),
    )
    static: tuple[str, ...] = field(default=(), metadata=_help('group memberships, each "group:user1,user2"'))
    cache_seconds: float = field(
        default=300.0, metadata=_help('how long "os" answers (misses too) are kept, as Hadoop\'s groups cache')
    )


@dataclass(frozen=True, slots=True)
class ProxyUserConfig:
    user: str = field(default="", metadata=_help("the authenticated user these rules let act for others (doas)"))
    users: tuple[str, ...] = field(default=(), metadata=_help('users it may act for, or ["*"]'))
    groups: tuple[str, ...] = field(default=(), metadata=_help('members of these groups it may act for, or ["*"]'))
    hosts: tuple[str, ...] = field(
        default=(), metadata=_help('client addresses it may do so from: IPs, CIDR ranges, host names, or ["*"]')
    )


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = field(
        default="INFO",
        metadata=_help("least severe level logged: DEBUG, INFO, WARNING, ERROR or CRITICAL, in any case"),
    )
    access_file: str = field(
        default="",
        metadata=_help("file the access log's JSON lines go to (appended); empty: the standard error, with the rest"),
    )
    audit: bool = field(default=True, metadata=_help("log one audit line per request to gateway.audit"))
    audit_file: str = field(
        default="", metadata=_help("file the audit lines go to (appended); empty: the standard error, with the rest")
    )
    loop_stall: float = field(
        default=0.1,
        metadata=_help(
            "seconds a worker's event loop may be held by one stretch of work (every other request of the worker "
            "waits meanwhile) before gateway.server logs 'event loop blocked for N ms'; time spent waiting for a "
            "CPU is not counted. 0: not watched"
        ),
    )


@dataclass(frozen=True, slots=True)
class AdminConfig:
    listen: str = field(
        default="",
        metadata=_help(
            "host:port of the admin listener (/metrics, /healthz, /readyz), never proxied; empty: no admin listener"
        ),
    )
    probe_timeout: float = field(
        default=1.0, metadata=_help("seconds /readyz gives each backend to accept a TCP connection")
    )


@dataclass(frozen=True, slots=True)
class CsrfConfig:
    enabled: bool = field(
        default=True,
        metadata=_help(
            "refuse (400) a browser's request whose method is not ignored unless it carries custom_header, "
            "on every route (Hadoop's dfs.webhdfs.rest-csrf.enabled, here on by default)"
        ),
    )
    custom_header: str = field(
        default="X-XSRF-HEADER", metadata=_help("the header a browser's request must carry, whatever its value")
    )
    methods_to_ignore: tuple[str, ...] = field(
        default=("GET", "OPTIONS", "HEAD", "TRACE"),
        metadata=_one_or_many("methods that need no header (case matters, as in HTTP)"),
    )
    browser_useragents_regex: tuple[str, ...] = field(
        default=("^Mozilla.*", "^Opera.*"),
        metadata=_one_or_many(
            "regular expressions (Python's syntax); a User-Agent that one of them matches whole is a browser's. "
            "Other clients never need the header"
        ),
    )


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = ServerConfig()
    cookie: CookieConfig = CookieConfig()
    auth: AuthConfig = AuthConfig()
    backend: BackendConfig = BackendConfig()
    embedded: EmbeddedConfig = EmbeddedConfig()
    log: LogConfig = LogConfig()
    groups: GroupsConfig = GroupsConfig()
    admin: AdminConfig = AdminConfig()
    csrf: CsrfConfig = CsrfConfig()
    # The [[routes]] tables as written; see routes for what is served.
    route_tables: tuple[RouteConfig, ...] = ()
    # The [[proxy_users]] tables: who may act for whom (doas).
    proxy_users: tuple[ProxyUserConfig, ...] = ()
    # The validated options of each enabled scheme, in the order tried.
    scheme_options: tuple[tuple[str, Any], ...] = ()
    source: str = ""

    @property
    def routes(self) -> tuple[RouteConfig, ...]:
        """Every route served: the ``[[routes]]`` tables and, unless one of them is
        for ``/``, the route for ``/`` that ``[backend]`` describes.  Without any
        ``[[routes]]`` and ``backend.url``, the embedded backend serves
        ``/webhdfs/v1/`` as WebHDFS and ``/api/v1/`` as Alluxio too."""
        routes = self.route_tables
        if not routes and not self.backend.url:
            routes = _EMBEDDED_ROUTES
        if all(r.prefix != "/" for r in routes):
            backend = self.backend
            auth = backend.auth if backend.url else "simple"
            routes += (RouteConfig("/", backend.url or (EMBEDDED,), backend.dialect, auth=auth),)
        return routes

    @property
    def group_entries(self) -> tuple[str, ...]:
        """The static group memberships: ``groups.static``, else the deprecated ``embedded.groups``."""
        return self.groups.static or self.embedded.groups

    @property
    def embedded_mode(self) -> bool:
        """Whether any route goes to the embedded backend (which serve then starts)."""
        return any(EMBEDDED in r.backend for r in self.routes)

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
    "log": LogConfig,
    "groups": GroupsConfig,
    "admin": AdminConfig,
    "csrf": CsrfConfig,
}
_ARRAYS = ("routes", "proxy_users")  # sections that are arrays of tables
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Override:
    """A setting given outside the file, which wins over file and environment.

    ``Override("server.port", 14002, "--port")``: ``key`` is the dotted
    path, ``value`` is typed as the key's type (or as a TOML value), and
    ``origin`` is what a problem with it is reported under.
    """

    key: str
    value: Any
    origin: str


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


Names = Callable[[str], str]
"""What a message calls a dotted key: the variable or flag it came from, else the key."""


def read_table(cls: type[Any], table: Mapping[str, Any], where: str, problems: list[str], name: Names = str) -> Any:
    """Build dataclass ``cls`` from ``table``, appending problems under ``where``."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        label = name(f"{where}.{key}")
        if key not in known:
            allowed = ", ".join(sorted(known)) or "none"
            unknown = "unknown key" if label == f"{where}.{key}" else f"unknown key {where}.{key}"
            problems.append(f"{label}: {unknown} (allowed: {allowed})")
            continue
        one_or_many = "one_or_many" in known[key].metadata
        try:
            if one_or_many and isinstance(value, str):
                value = [value] if value else []  # "" keeps meaning "none", as it did before lists
            kwargs[key] = _coerce(hints[key], value)
        except TypeError as exc:
            rule = "must be a string or a list of strings" if one_or_many else str(exc)
            problems.append(f"{label} = {value!r}: {rule}")
    return cls(**kwargs)


def _env_overrides(env: Mapping[str, str], problems: list[str]) -> list[Override]:
    """``AUTHGATEWAY_A__B=v`` as ``Override("a.b", <v, still text>, "AUTHGATEWAY_A__B")``."""
    overrides: list[Override] = []
    for name, text in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        if name in _ENV_ALIASES:
            key = _ENV_ALIASES[name]
        else:
            parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
            if len(parts) < 2 or not all(parts):
                problems.append(f"{name}: not of the form {ENV_PREFIX}SECTION__KEY")
                continue
            key = ".".join(parts)
        overrides.append(Override(key, _EnvText(text), name))
    return overrides


class _EnvText(str):
    """An override's raw text; typed once its option's type is known."""


def _apply(
    data: dict[str, Any], overrides: Sequence[Override], origins: dict[str, str], problems: list[str]
) -> dict[str, Any]:
    """``data`` with ``overrides`` applied in order (a later one wins); records each one's origin."""
    tree: dict[str, Any] = {}
    for override in overrides:
        parts = override.key.split(".")
        if override.key in origins and origins[override.key] != override.origin:
            previous = origins[override.key]
            if previous.startswith(ENV_PREFIX) and override.origin.startswith(ENV_PREFIX):
                problems.append(f"{previous}, {override.origin}: both set {override.key}; keep one")
                continue
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                problems.append(f"{override.origin}: conflicts with another override")
                break
        else:
            if isinstance(node.get(parts[-1]), dict):
                problems.append(f"{override.origin}: conflicts with another override")
                continue
            node[parts[-1]] = override.value
            origins[override.key] = override.origin
            for i in range(1, len(parts)):  # an unknown section or table is named after its first setter
                origins.setdefault(".".join(parts[:i]), override.origin)
    return _merge(data, tree)


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


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Sequence[Override] = (),
) -> Config:
    """Load, validate and return the configuration, or raise :class:`ConfigError`.

    ``env`` defaults to ``os.environ``; ``overrides`` win over both.
    """
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
    file_sections = set(data)
    origins: dict[str, str] = {}
    env_overrides = _env_overrides(os.environ if env is None else env, problems)
    data = _apply(data, [*env_overrides, *overrides], origins, problems)

    def name(key: str) -> str:
        return origins.get(key, key)

    sections: dict[str, Any] = {}
    scheme_tables: dict[str, Any] = {}
    route_tables = _read_tables(RouteConfig, "routes", data.pop("routes", []), problems, name)
    proxy_users = _read_tables(ProxyUserConfig, "proxy_users", data.pop("proxy_users", []), problems, name)
    for key, value in data.items():
        if key not in _SECTIONS:
            unknown = f"{key}: unknown section" if key in file_sections else f"{name(key)}: unknown section {key}"
            problems.append(f"{unknown} (allowed: {', '.join([*_SECTIONS, *_ARRAYS])})")
        elif not isinstance(value, Mapping):
            problems.append(f"{name(key)}: must be a table")
    for section, cls in _SECTIONS.items():
        table = data.get(section, {})
        table = dict(table) if isinstance(table, Mapping) else {}
        if section == "auth":
            scheme_tables = {k: table.pop(k) for k in list(table) if k in SCHEME_TYPES}
        sections[section] = read_table(cls, _type_env_texts(cls, table), section, problems, name)

    scheme_options = _read_schemes(sections["auth"], scheme_tables, problems, name)
    config = Config(
        **sections, route_tables=route_tables, proxy_users=proxy_users, scheme_options=scheme_options, source=source
    )
    problems.extend(_check(config, name))
    if problems:
        raise ConfigError(problems)
    return config


def _read_tables(cls: type[_T], key: str, value: Any, problems: list[str], name: Names) -> tuple[_T, ...]:
    """An array of tables (``[[routes]]``, ``[[proxy_users]]``), each read as ``cls``."""
    if not isinstance(value, list) or not all(isinstance(t, Mapping) for t in value):
        problems.append(f"{name(key)}: must be an array of tables ([[{key}]])")
        return ()
    return tuple(read_table(cls, dict(t), f"{key}[{i}]", problems, name) for i, t in enumerate(value))


def _proxy_user_problems(config: Config, name: Names) -> list[str]:
    """Each [[proxy_users]] table, and the [groups] its rules read."""
    from gateway.proxyusers import HostList, host_entry_problem

    problems: list[str] = []
    groups = config.groups
    if groups.source == "static":
        for entry in groups.static:
            try:
                parse_groups([entry])
            except ValueError:
                problems.append(f"{name('groups.static')}: {entry!r} must look like 'group:user1,user2'")
    elif groups.static:
        problems.append(f"{name('groups.static')}: only read with source = \"static\", not {groups.source!r}")
    if config.embedded.groups and (groups.static or groups.source != "static"):
        problems.append(
            f"{name('embedded.groups')}: deprecated, and [groups] is set too; give the memberships once, "
            "in groups.static (embedded.groups is only read when [groups] has no source or entries)"
        )
    if not 0 <= groups.cache_seconds <= 86400:
        problems.append(f"{name('groups.cache_seconds')} = {groups.cache_seconds}: must be between 0 and 86400")
    seen: dict[str, int] = {}
    for i, rule in enumerate(config.proxy_users):
        where = f"proxy_users[{i}]"
        if not rule.user.strip():
            problems.append(f"{name(where + '.user')}: must name the user these rules are for")
        elif rule.user in seen:
            problems.append(f"{name(where + '.user')} = {rule.user!r}: already the user of proxy_users[{seen[rule.user]}]")
        else:
            seen[rule.user] = i
        for key, entries in (("users", rule.users), ("groups", rule.groups), ("hosts", rule.hosts)):
            if "*" in entries and len(entries) > 1:
                problems.append(f"{name(where + '.' + key)} = {list(entries)!r}: \"*\" stands alone")
        if not rule.users and not rule.groups:
            problems.append(f"{name(where)}: give users or groups, or the rule lets {rule.user!r} act for nobody")
        if not rule.hosts:
            problems.append(f"{name(where + '.hosts')}: give the client addresses (or [\"*\"]), or no address may")
        for entry in rule.hosts:
            why = host_entry_problem(entry)
            if why is None and "/" not in entry and entry.strip() != "*":
                try:
                    HostList([entry])
                except OSError as exc:
                    why = f"{entry!r} cannot be resolved ({exc.strerror or exc})"
            if why is not None:
                problems.append(f"{name(where + '.hosts')}: {why}")
    return problems


def _csrf_problems(csrf: CsrfConfig, name: Names) -> list[str]:
    """[csrf]: a header name, method tokens and patterns that compile (read even when disabled)."""
    problems = []
    if not _is_header_token(csrf.custom_header):
        problems.append(f"{name('csrf.custom_header')} = {csrf.custom_header!r}: must be an HTTP header name")
    for method in csrf.methods_to_ignore:
        if not _is_header_token(method):
            problems.append(f"{name('csrf.methods_to_ignore')}: {method!r} is not an HTTP method")
    for pattern in csrf.browser_useragents_regex:
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"{name('csrf.browser_useragents_regex')}: {pattern!r} is not a regular expression ({exc})")
    if csrf.enabled and not csrf.browser_useragents_regex:
        problems.append(
            f"{name('csrf.browser_useragents_regex')}: empty, so no request is a browser's; set csrf.enabled = false instead"
        )
    return problems


def _route_problems(config: Config, name: Names) -> list[str]:
    """Each [[routes]] table's prefix, backend and dialect; prefixes given twice."""
    from gateway.routing import prefix_problem  # here: routing imports the dialects, which need no config

    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, route in enumerate(config.route_tables):
        where = f"routes[{i}]"
        why = prefix_problem(route.prefix)
        if why is not None:
            problems.append(f"{name(where + '.prefix')} = {route.prefix!r}: {why}")
        elif route.prefix in seen:
            problems.append(
                f"{name(where + '.prefix')} = {route.prefix!r}: already the prefix of routes[{seen[route.prefix]}]"
            )
        else:
            seen[route.prefix] = i
        problems.extend(_backend_list_problems(name(where + ".backend"), route.backend, embedded_allowed=True))
        if route.datanodes and route.dialect != "webhdfs":
            problems.append(f"{name(where + '.datanodes')}: only a webhdfs route has data nodes")
        for pattern in route.datanodes:
            if ":" not in pattern or "/" in pattern or not pattern.strip():
                problems.append(f"{name(where + '.datanodes')}: {pattern!r} must look like 'host:port' (wildcards * ?)")
        if route.dialect not in DIALECTS:
            problems.append(
                f"{name(where + '.dialect')} = {route.dialect!r}: unknown dialect (known: {', '.join(DIALECTS)})"
            )
    return problems


def _outbound_problems(config: Config, name: Names) -> list[str]:
    """The gateway's own Kerberos credentials, wherever a backend wants them."""
    problems: list[str] = []
    backend = config.backend
    checked: dict[tuple[str, str], None] = {}  # each principal and keytab pair once
    backend_keys = (name("backend.principal"), name("backend.keytab"))
    if backend.auth == "kerberos" and not backend.url:
        problems.append(
            f"{name('backend.auth')} = 'kerberos': needs backend.url (the embedded backend served by "
            "the gateway trusts it; to put it behind SPNEGO run `authgateway embedded` and route to its URL)"
        )
    if backend.principal or backend.keytab:
        checked[(backend.principal, backend.keytab)] = None
        problems.extend(_keytab_problems(backend.principal, backend.keytab, *backend_keys))
    for i, route in enumerate(config.route_tables):
        where = f"routes[{i}]"
        if route.auth != "kerberos":
            if route.principal or route.keytab:
                problems.append(f"{name(where + '.principal')}, {name(where + '.keytab')}: only read with auth = \"kerberos\"")
            continue
        if EMBEDDED in route.backend:
            problems.append(
                f"{name(where + '.auth')} = 'kerberos': the embedded backend served by the gateway trusts it; "
                "to put it behind SPNEGO run `authgateway embedded` and give its URL as the backend"
            )
        if route.dialect == "alluxio":
            problems.append(f"{name(where + '.auth')} = 'kerberos': the Alluxio proxy does not speak SPNEGO")
        pair = route.credentials(backend)
        if pair in checked:
            continue
        checked[pair] = None
        problems.extend(_keytab_problems(
            *pair,
            name(f"{where if route.principal else 'backend'}.principal"),
            name(f"{where if route.keytab else 'backend'}.keytab"),
        ))
    seen: dict[tuple[str, ...], tuple[int, tuple[str, str, str]]] = {}
    for i, route in enumerate(config.routes):
        if EMBEDDED in route.backend:
            continue
        how = (route.auth, *route.credentials(backend)) if route.auth == "kerberos" else ("simple", "", "")
        first = seen.setdefault(route.backend, (i, how))
        if first[1] != how:
            label = name(f"routes[{i}].auth") if i < len(config.route_tables) else name("backend.auth")
            shown = route.backend[0] if len(route.backend) == 1 else list(route.backend)
            problems.append(
                f"{label}: routes to {shown!r} must authenticate to it alike "
                "(auth, principal and keytab)"
            )
    if backend.auth == "kerberos" and (backend.principal, backend.keytab) not in checked:
        problems.extend(_keytab_problems(backend.principal, backend.keytab, *backend_keys))
    if backend.auth == "kerberos" and backend.dialect == "alluxio":
        problems.append(f"{name('backend.auth')} = 'kerberos': the Alluxio proxy does not speak SPNEGO")
    return problems


def _keytab_problems(principal: str, keytab: str, p_key: str, k_key: str) -> list[str]:
    """Whether ``keytab`` (set by ``k_key``) is readable and holds ``principal`` (set by ``p_key``;
    without a realm: in any realm)."""
    from authplugins.kerberos import read_keytab_principals  # here: gssapi only where Kerberos is used

    problems: list[str] = []
    if not principal.strip():
        problems.append(f"{p_key}: required with auth = \"kerberos\" (the gateway's own principal)")
    if not keytab.strip():
        problems.append(f"{k_key}: required with auth = \"kerberos\" (the keytab holding its keys)")
        return problems
    try:
        listed = read_keytab_principals(keytab)
    except OSError as exc:
        return [*problems, f"{k_key} = {keytab!r}: file is not readable ({exc.strerror or exc})"]
    except ValueError as exc:
        return [*problems, f"{k_key} = {keytab!r}: {exc}"]
    if principal.strip():
        found = principal in listed if "@" in principal else any(p.partition("@")[0] == principal for p in listed)
        if not found:
            problems.append(
                f"{p_key} = {principal!r}: not in {k_key} = {keytab!r} (it holds {', '.join(listed) or 'nothing'})"
            )
    return problems


def _read_schemes(
    auth: AuthConfig, tables: Mapping[str, Any], problems: list[str], name: Names
) -> tuple[tuple[str, Any], ...]:
    schemes = name("auth.schemes")
    if not auth.schemes:
        problems.append(f"{schemes} = []: at least one scheme is required")
    seen: set[str] = set()
    result = []
    for scheme in auth.schemes:
        if scheme in seen:
            problems.append(f"{schemes}: {scheme!r} is listed twice")
            continue
        seen.add(scheme)
        if scheme not in SCHEME_TYPES:
            problems.append(f"{schemes}: unknown scheme {scheme!r} (known: {', '.join(SCHEME_TYPES)})")
            continue
        try:
            cls: type[AuthScheme] = scheme_class(scheme)
        except ImportError as exc:
            problems.append(f"{schemes}: scheme {scheme!r} cannot be loaded: {exc}")
            continue
        table = tables.get(scheme, {})
        if not isinstance(table, Mapping):
            problems.append(f"{name(f'auth.{scheme}')}: must be a table")
            table = {}
        before = len(problems)
        where = f"auth.{scheme}"
        options = read_table(cls.options_type, _type_env_texts(cls.options_type, dict(table)), where, problems, name)
        if len(problems) == before:
            problems.extend(_scheme_line(where, line, name) for line in cls.check_options(options))
        result.append((scheme, options))
    return tuple(result)


def _scheme_line(where: str, line: str, name: Names) -> str:
    """A scheme's ``"key = value: why"`` under the name of what set the key."""
    key = line.split(" ", 1)[0].split(":", 1)[0]
    label = name(f"{where}.{key}")
    if label != f"{where}.{key}":
        return label + line[len(key) :]
    return f"{where}.{line}"


def _check(config: Config, name: Names = str) -> list[str]:
    """The rules that span more than one key's type, or look at the machine."""
    problems: list[str] = []
    server, cookie, backend, embedded = config.server, config.cookie, config.backend, config.embedded
    if not 0 <= server.port <= 65535:
        problems.append(f"{name('server.port')} = {server.port}: must be between 0 and 65535")
    if server.max_connections < 1:
        problems.append(f"{name('server.max_connections')} = {server.max_connections}: must be at least 1")
    if server.max_connections_per_peer < 0:
        problems.append(
            f"{name('server.max_connections_per_peer')} = {server.max_connections_per_peer}: "
            "must be at least 0 (0: no per-address limit)"
        )
    for key, timeout in (
        ("head_timeout", server.head_timeout),
        ("body_timeout", server.body_timeout),
        ("keepalive_timeout", server.keepalive_timeout),
    ):
        if not 0 < timeout <= 3600:
            problems.append(f"{name('server.' + key)} = {timeout}: must be more than 0 and at most 3600 seconds")
    if not 1024 <= server.max_head_size <= 1048576:
        problems.append(
            f"{name('server.max_head_size')} = {server.max_head_size}: must be between 1024 and 1048576 bytes"
        )
    if not 0 <= server.workers <= 256:
        problems.append(f"{name('server.workers')} = {server.workers}: must be between 0 (one per core) and 256")
    if not 0 <= server.shutdown_timeout <= 3600:
        problems.append(
            f"{name('server.shutdown_timeout')} = {server.shutdown_timeout}: must be between 0 and 3600 seconds"
        )
    if bool(server.tls_cert_file) != bool(server.tls_key_file):
        problems.append(f"{name('server.tls_cert_file')}, {name('server.tls_key_file')}: set both or neither")
    for key in ("tls_cert_file", "tls_key_file"):
        value = getattr(server, key)
        if value:
            try:
                with open(value, "rb"):
                    pass
            except OSError as exc:
                problems.append(f"{name(f'server.{key}')} = {value!r}: file is not readable ({exc.strerror or exc})")
    server_addresses = _host_addresses(name("server.host"), server.host, problems)
    if cookie.validity <= 0:
        problems.append(f"{name('cookie.validity')} = {cookie.validity}: must be a positive number of seconds")
    if not cookie.name or any(c in cookie.name for c in ' \t;,="()<>@:\\/[]?{}'):
        problems.append(f"{name('cookie.name')} = {cookie.name!r}: must be a non-empty cookie token")
    if not cookie.path.startswith("/"):
        problems.append(f"{name('cookie.path')} = {cookie.path!r}: must start with '/'")
    if cookie.samesite == "None" and not (cookie.secure or server.tls_cert_file):
        problems.append(f"{name('cookie.samesite')} = 'None': browsers require Secure; set cookie.secure or TLS")
    for i, secret in enumerate(cookie.secret_files):
        problems.extend(_secret_problem(f"{name('cookie.secret_files')}[{i}]", secret))
    if cookie.keys_file:
        problems.extend(_keys_file_problem(name("cookie.keys_file"), cookie.keys_file))
    if backend.identity_secret_file:
        problems.extend(_secret_problem(name("backend.identity_secret_file"), backend.identity_secret_file))
    if not _is_header_token(backend.identity_header):
        problems.append(
            f"{name('backend.identity_header')} = {backend.identity_header!r}: must be an HTTP header name"
        )
    for key in ("connect_timeout", "read_timeout", "send_timeout", "pool_timeout"):
        if getattr(backend, key) <= 0:
            problems.append(f"{name(f'backend.{key}')} = {getattr(backend, key)}: must be positive")
    if backend.max_connections < 1:
        problems.append(f"{name('backend.max_connections')} = {backend.max_connections}: must be at least 1")
    if backend.max_response_head_size < 1024:
        problems.append(
            f"{name('backend.max_response_head_size')} = {backend.max_response_head_size}: must be at least 1024"
        )
    if backend.max_response_headers < 1:
        problems.append(f"{name('backend.max_response_headers')} = {backend.max_response_headers}: must be at least 1")
    if backend.dialect not in DIALECTS:
        problems.append(
            f"{name('backend.dialect')} = {backend.dialect!r}: unknown dialect (known: {', '.join(DIALECTS)})"
        )
    problems.extend(_route_problems(config, name))
    problems.extend(_outbound_problems(config, name))
    problems.extend(_proxy_user_problems(config, name))
    problems.extend(_csrf_problems(config.csrf, name))
    if backend.url:
        problems.extend(_backend_list_problems(name("backend.url"), backend.url, embedded_allowed=False))
    if not 1 <= backend.failover_attempts <= 16:
        problems.append(f"{name('backend.failover_attempts')} = {backend.failover_attempts}: must be between 1 and 16")
    if not 0 <= backend.failover_cooldown <= 3600:
        problems.append(
            f"{name('backend.failover_cooldown')} = {backend.failover_cooldown}: must be between 0 and 3600 seconds"
        )
    for entry in server.trusted_proxies:
        why = trusted_entry_problem(entry)
        if why is not None:
            problems.append(f"{name('server.trusted_proxies')}: {why}")
    if not config.embedded_mode:
        if not cookie.secret_files and not cookie.keys_file:
            problems.append(
                f"{name('cookie.secret_files')} = [], {name('cookie.keys_file')} = '': one is required with an "
                f"external backend (there is no silent random key; create one with: {KEYS_HINT})"
            )
    else:
        problems.extend(_embedded_problems(config, name, server_addresses))
    if config.log.level.upper() not in LOG_LEVELS:
        problems.append(f"{name('log.level')} = {config.log.level!r}: must be one of {', '.join(LOG_LEVELS)}")
    if not 0 <= config.log.loop_stall <= 60:
        problems.append(f"{name('log.loop_stall')} = {config.log.loop_stall}: must be between 0 (off) and 60 seconds")
    elif 0 < config.log.loop_stall < 0.004:
        problems.append(
            f"{name('log.loop_stall')} = {config.log.loop_stall}: must be 0 (off) or at least 0.004 seconds "
            "(the loop's timers count whole milliseconds)"
        )
    for key in ("access_file", "audit_file"):
        value = getattr(config.log, key)
        why = _log_file_problem(value) if value else None
        if why:
            problems.append(f"{name(f'log.{key}')} = {value!r}: {why}")
    problems.extend(_admin_problems(config, name, server_addresses))
    return problems


def _log_file_problem(path: str) -> str | None:
    """Why lines could not be appended to ``path``, or None; creates nothing."""
    if os.path.isdir(path):
        return "is a directory"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else "this user cannot write to it"
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return f"cannot be created: {parent} is not a directory"
    return None if os.access(parent, os.W_OK | os.X_OK) else f"cannot be created: this user cannot write in {parent}"


def _admin_problems(config: Config, name: Names, server_addresses: set[tuple[int, str]]) -> list[str]:
    """The admin listener's address, and that it shares no port with the gateway or the embedded backend."""
    admin = config.admin
    problems: list[str] = []
    if not 0 < admin.probe_timeout <= 60:
        problems.append(f"{name('admin.probe_timeout')} = {admin.probe_timeout}: must be above 0 and at most 60 seconds")
    if not admin.listen:
        return problems
    label = name("admin.listen")
    if admin.listen.startswith("unix:"):
        return [*problems, f"{label} = {admin.listen!r}: must be host:port (Prometheus scrapes over TCP)"]
    found = _listen_problems(label, admin.listen)
    if found:
        return [*problems, *found]
    host, _, port = admin.listen.rpartition(":")
    addresses = _host_addresses(label, host.strip("[]"), problems, admin.listen)
    if int(port) == 0:
        return problems
    if int(port) == config.server.port and _overlap(addresses, server_addresses):
        problems.append(
            f"{label} = {admin.listen!r}: the gateway ({name('server.host')} = {config.server.host!r}, "
            f"{name('server.port')} = {config.server.port}) listens there; the admin listener needs a port of its own"
        )
    embedded = config.embedded.listen
    if config.embedded_mode and not embedded.startswith("unix:") and not _listen_problems("", embedded):
        other_host, _, other_port = embedded.rpartition(":")
        if int(other_port) == int(port):
            others = _host_addresses(name("embedded.listen"), other_host.strip("[]"), [], embedded)
            if _overlap(addresses, others):
                problems.append(
                    f"{label} = {admin.listen!r}: the embedded backend ({name('embedded.listen')} = {embedded!r}) "
                    "listens there; the admin listener needs a port of its own"
                )
    return problems


def _embedded_problems(config: Config, name: Names, server_addresses: set[tuple[int, str]]) -> list[str]:
    server, embedded = config.server, config.embedded
    problems = _listen_problems(name("embedded.listen"), embedded.listen)
    if not problems and not embedded.listen.startswith("unix:"):
        host, _, port = embedded.listen.rpartition(":")
        addresses = _host_addresses(name("embedded.listen"), host.strip("[]"), problems, embedded.listen)
        if int(port) == server.port != 0 and _overlap(addresses, server_addresses):
            problems.append(
                f"{name('server.port')} = {server.port}: the gateway ({name('server.host')} = {server.host!r}) "
                f"and the embedded backend ({name('embedded.listen')} = {embedded.listen!r}) would both listen on "
                f"port {port} of one address; give one of them another port"
            )
    try:
        mask = int(embedded.umask, 8)
        if not 0 <= mask <= 0o777:
            raise ValueError
    except ValueError:
        problems.append(f"{name('embedded.umask')} = {embedded.umask!r}: must be an octal number up to 777")
    if embedded.auth == "kerberos":
        if not embedded.keytab.strip():
            problems.append(f"{name('embedded.keytab')}: required with embedded.auth = \"kerberos\"")
        else:
            problems.extend(_embedded_keytab_problems(embedded, name))
        if embedded.cookie_validity <= 0:
            problems.append(
                f"{name('embedded.cookie_validity')} = {embedded.cookie_validity}: must be a positive number of seconds"
            )
    for key, value in (("ls_limit", embedded.ls_limit), ("max_write_streams", embedded.max_write_streams)):
        if value <= 0:
            problems.append(f"{name('embedded.' + key)} = {value}: must be a positive number")
    for entry in embedded.groups:  # the backend's own reading, so no entry passes here that it refuses
        try:
            parse_groups([entry])
        except ValueError:
            problems.append(f"{name('embedded.groups')}: {entry!r} must look like 'group:user1,user2'")
    why = _data_root_problem(embedded.root)
    if why:
        problems.append(f"{name('embedded.root')} = {embedded.root!r}: {why}")
    return problems


def _embedded_keytab_problems(embedded: EmbeddedConfig, name: Names) -> list[str]:
    """The embedded backend's keytab and principal, as the kerberos scheme checks its own."""
    from authplugins.kerberos import KerberosOptions, KerberosScheme  # here: gssapi only where Kerberos is used

    options = KerberosOptions(keytab=embedded.keytab, principal=embedded.principal)
    return [_scheme_line("embedded", line, name) for line in KerberosScheme.check_options(options)]


def _host_addresses(label: str, host: str, problems: list[str], value: str | None = None) -> set[tuple[int, str]]:
    """The (family, address) pairs a listener on ``host`` binds; a problem when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        subject = f"{label} = {host!r}:" if value is None else f"{label} = {value!r}: host {host!r}"
        problems.append(
            f"{subject} cannot be resolved ({why}); use an address of this machine "
            "(127.0.0.1, ::1, or 0.0.0.0 for every interface) or a name that resolves to one"
        )
        return set()
    return {(int(family), str(sockaddr[0])) for family, _type, _proto, _name, sockaddr in infos}


def _overlap(a: set[tuple[int, str]], b: set[tuple[int, str]]) -> bool:
    """Whether listeners on these addresses (and one port) would collide: same address, or a wildcard."""
    return any(fa == fb and (xa == xb or xa in _WILDCARDS or xb in _WILDCARDS) for fa, xa in a for fb, xb in b)


def _data_root_problem(root: str) -> str | None:
    """Why the embedded backend could not create or write ``root``, or None; creates nothing."""
    path = os.path.abspath(root)
    shown = "" if path == root else f" (that is {path})"
    if os.path.exists(path):
        if not os.path.isdir(path):
            return f"is not a directory{shown}"
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            return f"this user cannot read and write in it{shown}"
        return None
    parent = os.path.dirname(path)
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"cannot be created: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created: this user cannot write in {parent}"
    return None


def _secret_problem(key: str, path: str) -> list[str]:
    try:
        read_secret(path)
    except OSError as exc:
        return [f"{key} = {path!r}: cannot read: {exc.strerror or exc}"]
    except ValueError as exc:
        return [f"{key} = {path!r}: {exc}"]
    return []


def _keys_file_problem(key: str, path: str) -> list[str]:
    from gateway.keys import read_keys  # here: the keys module reads secrets through this one

    try:
        read_keys(path)
    except OSError as exc:
        return [f"{key} = {path!r}: cannot read: {exc.strerror or exc}"]
    except ValueError as exc:
        why = str(exc)  # it names the file, which the key's value already shows
        return [f"{key} = {path!r}: {why[len(path):].lstrip(': ') if why.startswith(path) else why}"]
    return []


def _is_header_token(name: str) -> bool:
    return bool(name) and all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in name)


def _url_problems(label: str, url: str, alternative: str = "") -> list[str]:
    from yarl import URL

    try:
        parsed = URL(url)
    except ValueError:
        return [f"{label} = {url!r}: not a URL"]
    problems = []
    if parsed.scheme not in ("http", "https") or not parsed.host:
        either = f" {alternative}" if alternative else ""
        problems.append(f"{label} = {url!r}: must be http://host:port or https://host:port{either}")
    if parsed.raw_path not in ("", "/") or parsed.raw_query_string or parsed.raw_fragment:
        problems.append(f"{label} = {url!r}: must not have a path, query or fragment")
    if parsed.user is not None:
        problems.append(f"{label}: must not contain credentials")
    return problems


def _backend_list_problems(label: str, urls: tuple[str, ...], *, embedded_allowed: bool) -> list[str]:
    """A route's backend list: each URL as :func:`_url_problems` checks it, none twice, "embedded" alone."""
    if not urls:
        return [f"{label} = []: give at least one URL" + (f' (or "{EMBEDDED}")' if embedded_allowed else "")]
    if embedded_allowed and EMBEDDED in urls:
        return [] if len(urls) == 1 else [f"{label} = {list(urls)!r}: \"{EMBEDDED}\" stands alone"]
    problems: list[str] = []
    seen: set[str] = set()
    for i, url in enumerate(urls):
        where = label if len(urls) == 1 else f"{label}[{i}]"
        found = _url_problems(where, url, f'or "{EMBEDDED}"' if embedded_allowed else "")
        # A word that is no URL at all (a misspelt "embedded") deserves one line, not one per URL part.
        problems.extend(found if "://" in url else found[:1])
        key = url.rstrip("/").lower()
        if key in seen:
            problems.append(f"{where} = {url!r}: listed twice")
        seen.add(key)
    return problems


def _listen_problems(key: str, listen: str) -> list[str]:
    if listen.startswith("unix:"):
        return [] if len(listen) > len("unix:") else [f"{key} = {listen!r}: unix: needs a path"]
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        return [f"{key} = {listen!r}: must be host:port or unix:/path"]
    return []

