"""The kerberos scheme against a real KDC, through a tiny aiohttp app.

The app answers what the scheme answered: 200 with the identity, 401 with
the challenge, or the refusal's status and message.  Every client token is
made by a real initiator from a real ticket.
"""

from __future__ import annotations

import base64
import os
import struct
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from authplugins import Authenticated, AuthenticationError, Challenge
from authplugins.kerberos import KerberosOptions, KerberosScheme, read_keytab_principals
from gateway.config import ConfigError, load_config
from tests.kerberos.client import KRB5, SPNEGO, handshake
from tests.kerberos.conftest import KdcRealm

pytestmark = pytest.mark.kerberos

SCHEME = web.AppKey("scheme", KerberosScheme)
Client = Callable[[KerberosOptions], Awaitable[TestClient[web.Request, web.Application]]]


async def _handler(request: web.Request) -> web.Response:
    try:
        result = await request.app[SCHEME].authenticate(request)
    except AuthenticationError as exc:
        return web.json_response({"error": exc.message}, status=exc.status)
    if isinstance(result, Challenge):
        return web.json_response({}, status=401, headers={"WWW-Authenticate": result.www_authenticate})
    assert isinstance(result, Authenticated)
    return web.json_response(
        {"user": result.user, "principal": result.principal, "scheme": result.scheme, "expires_at": result.expires_at},
        headers=dict(result.headers),
    )


def make_app(options: KerberosOptions) -> web.Application:
    scheme = KerberosScheme.from_options(options)
    app = web.Application()
    app[SCHEME] = scheme

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await scheme.start()
        yield
        await scheme.stop()

    app.cleanup_ctx.append(lifetime)
    app.router.add_get("/", _handler)
    return app


@pytest.fixture
def options(kdc: KdcRealm, tmp_path: Path) -> KerberosOptions:
    return KerberosOptions(
        keytab=str(kdc.http_keytab),
        principal="HTTP/localhost@EXAMPLE.COM",
        replay_cache=f"file2:{tmp_path / 'gateway.rcache2'}",
    )


@pytest.fixture
def client(aiohttp_client: Any) -> Client:
    async def make(options: KerberosOptions) -> TestClient[web.Request, web.Application]:
        assert KerberosScheme.check_options(options) == []
        return await aiohttp_client(make_app(options))

    return make


def negotiate(token: bytes) -> dict[str, str]:
    return {"Authorization": "Negotiate " + base64.b64encode(token).decode()}


# -- the handshake ---------------------------------------------------------------


async def test_no_credentials_get_the_negotiate_challenge(client: Client, options: KerberosOptions) -> None:
    c = await client(options)
    resp = await c.get("/")
    assert resp.status == 401
    assert resp.headers.getall("WWW-Authenticate") == ["Negotiate"]


async def test_other_authorization_schemes_are_not_ours(client: Client, options: KerberosOptions) -> None:
    c = await client(options)
    resp = await c.get("/", headers={"Authorization": "Basic YWxpY2U6eA=="})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Negotiate"


@pytest.mark.parametrize("mech", [SPNEGO, KRB5], ids=["spnego", "raw-krb5"])
async def test_a_valid_ticket_authenticates_with_mutual_auth(
    client: Client, options: KerberosOptions, kdc: KdcRealm, mech: Any
) -> None:
    c = await client(options)
    hs = handshake(kdc.ccache("alice"), mech=mech)
    resp = await c.get("/", headers={"Authorization": hs.header})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["user"] == "alice"
    assert body["principal"] == "alice@EXAMPLE.COM"
    assert body["scheme"] == "kerberos"
    # The acceptor's reply proves the gateway holds the service key.
    hs.finish(resp.headers["WWW-Authenticate"])


async def test_two_component_principal_maps_to_its_first_component(
    client: Client, options: KerberosOptions, kdc: KdcRealm
) -> None:
    c = await client(options)
    resp = await c.get("/", headers={"Authorization": handshake(kdc.ccache("alice/admin")).header})
    assert resp.status == 200
    body = await resp.json()
    assert (body["user"], body["principal"]) == ("alice", "alice/admin@EXAMPLE.COM")


async def test_a_replayed_token_is_refused(client: Client, options: KerberosOptions, kdc: KdcRealm) -> None:
    c = await client(options)
    header = {"Authorization": handshake(kdc.ccache("alice")).header}
    first = await c.get("/", headers=header)
    assert first.status == 200
    again = await c.get("/", headers=header)
    assert again.status == 401
    assert "replay" in (await again.json())["error"].lower()


async def test_replay_is_refused_with_the_default_replay_cache(
    client: Client, options: KerberosOptions, kdc: KdcRealm
) -> None:
    c = await client(replace(options, replay_cache=""))  # KRB5RCACHEDIR points into the realm
    header = {"Authorization": handshake(kdc.ccache("bob"), mech=KRB5).header}
    assert (await c.get("/", headers=header)).status == 200
    assert (await c.get("/", headers=header)).status == 401


async def test_a_ticket_for_another_service_is_refused_with_401(
    client: Client, options: KerberosOptions, kdc: KdcRealm
) -> None:
    c = await client(options)
    resp = await c.get("/", headers={"Authorization": handshake(kdc.ccache("alice"), "HTTP@otherhost").header})
    assert resp.status == 401
    assert "accepting the security context" in (await resp.json())["error"]


# -- garbage and NTLM: a clear 401, never a 500 -----------------------------------------------

_NTLM_NEGOTIATE = b"NTLMSSP\x00\x01\x00\x00\x00" + struct.pack("<I", 0xE2088297) + b"\x00" * 16


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Negotiate", "carries no token"),
        ("Negotiate    ", "carries no token"),
        ("Negotiate !!!not-base64!!!", "not valid base64"),
        ("Negotiate " + base64.b64encode(b"\x00" * 40).decode(), "accepting the security context"),
        ("Negotiate " + base64.b64encode(os.urandom(600)).decode(), "accepting the security context"),
        ("Negotiate " + base64.b64encode(b"`\x82\x02\x00\x06\x06+\x06\x01\x05\x05\x02").decode(), "accepting"),
        ("Negotiate " + base64.b64encode(_NTLM_NEGOTIATE).decode(), "NTLM is not supported"),
        ("NTLM " + base64.b64encode(_NTLM_NEGOTIATE).decode(), "NTLM is not supported"),
        ("negotiate " + base64.b64encode(b"junk").decode(), "accepting the security context"),
    ],
    ids=["empty", "blank", "not-base64", "zeros", "random", "truncated-spnego", "ntlm-in-negotiate", "ntlm", "lower"],
)
async def test_garbage_gets_a_clear_401(
    client: Client, options: KerberosOptions, authorization: str, message: str
) -> None:
    c = await client(options)
    resp = await c.get("/", headers={"Authorization": authorization})
    assert resp.status == 401
    error = (await resp.json())["error"]
    assert message in error
    assert authorization.partition(" ")[2].strip()[:20] not in error or not authorization.partition(" ")[2].strip()


async def test_two_negotiate_credentials_are_refused(client: Client, options: KerberosOptions) -> None:
    c = await client(options)
    resp = await c.get("/", headers=[("Authorization", "Negotiate YQ=="), ("Authorization", "Negotiate Yg==")])
    assert resp.status == 401
    assert "more than one" in (await resp.json())["error"]


# -- which principals get in ---------------------------------------------------------------


async def test_allowed_principals_refuse_others_with_403(
    client: Client, options: KerberosOptions, kdc: KdcRealm
) -> None:
    c = await client(replace(options, allowed_principals=("alice@EXAMPLE.COM", "bob@*")))
    for user, status in (("alice", 200), ("bob", 200), ("mallory", 403), ("alice/admin", 403)):
        resp = await c.get("/", headers={"Authorization": handshake(kdc.ccache(user)).header})
        assert resp.status == status, user
    resp = await c.get("/", headers={"Authorization": handshake(kdc.ccache("mallory")).header})
    assert "mallory@EXAMPLE.COM is not allowed" in (await resp.json())["error"]


async def test_allowed_principals_compare_letter_case(client: Client, options: KerberosOptions, kdc: KdcRealm) -> None:
    # Kerberos names are case-sensitive: "Alice" is someone else's principal.
    for patterns in (("Alice@EXAMPLE.COM",), ("ALICE@*",), ("alice@example.com",)):
        c = await client(replace(options, allowed_principals=patterns))
        resp = await c.get("/", headers={"Authorization": handshake(kdc.ccache("alice")).header})
        assert resp.status == 403, patterns
        assert (await resp.json())["error"] == "Kerberos principal alice@EXAMPLE.COM is not allowed in", patterns


async def test_a_realm_glob_lets_the_whole_realm_in(client: Client, options: KerberosOptions, kdc: KdcRealm) -> None:
    c = await client(replace(options, allowed_principals=("*@EXAMPLE.COM",)))
    resp = await c.get("/", headers={"Authorization": handshake(kdc.ccache("mallory")).header})
    assert resp.status == 200
    c2 = await client(replace(options, allowed_principals=("*@OTHER.ORG",)))
    resp = await c2.get("/", headers={"Authorization": handshake(kdc.ccache("mallory")).header})
    assert resp.status == 403


async def test_a_principal_no_rule_maps_is_refused_with_403(
    client: Client, options: KerberosOptions, kdc: KdcRealm
) -> None:
    # Only alice (and alice/admin) map; everyone else has no short name.
    rules = "RULE:[1:$1@$0](alice@EXAMPLE.COM)s/@.*//\nRULE:[2:$1@$0](alice@EXAMPLE.COM)s/@.*//"
    c = await client(replace(options, name_rules=rules))
    ok = await c.get("/", headers={"Authorization": handshake(kdc.ccache("alice")).header})
    assert ok.status == 200 and (await ok.json())["user"] == "alice"
    refused = await c.get("/", headers={"Authorization": handshake(kdc.ccache("bob")).header})
    assert refused.status == 403
    assert "bob@EXAMPLE.COM maps to no user name" in (await refused.json())["error"]


async def test_a_name_that_is_not_a_simple_user_name_is_refused_with_403(
    client: Client, options: KerberosOptions, kdc: KdcRealm
) -> None:
    # Under the mit mechanism an unmapped principal keeps its full name, which
    # is no user name a backend path or header should carry.
    c = await client(replace(options, name_rules="RULE:[2:$1](alice)", rule_mechanism="mit"))
    ok = await c.get("/", headers={"Authorization": handshake(kdc.ccache("alice/admin")).header})
    assert ok.status == 200 and (await ok.json())["user"] == "alice"
    refused = await c.get("/", headers={"Authorization": handshake(kdc.ccache("bob")).header})
    assert refused.status == 403
    assert "maps to 'bob@EXAMPLE.COM', which is not an acceptable user name" in (await refused.json())["error"]


# -- the service principal: explicit, _HOST, * --------------------------------------------------


async def test_host_placeholder_is_replaced_by_the_configured_hostname(
    client: Client, options: KerberosOptions, kdc: KdcRealm
) -> None:
    c = await client(replace(options, principal="HTTP/_HOST", hostname="localhost"))
    resp = await c.get("/", headers={"Authorization": handshake(kdc.ccache("alice")).header})
    assert resp.status == 200


async def test_star_accepts_any_http_principal_in_the_keytab_and_nothing_else(
    client: Client, options: KerberosOptions, kdc: KdcRealm
) -> None:
    c = await client(replace(options, keytab=str(kdc.multi_keytab), principal="*"))
    cc = kdc.ccache("alice")
    for service in ("HTTP@localhost", "HTTP@otherhost"):
        hs = handshake(cc, service)
        resp = await c.get("/", headers={"Authorization": hs.header})
        assert resp.status == 200, service
        hs.finish(resp.headers["WWW-Authenticate"])
    resp = await c.get("/", headers={"Authorization": handshake(cc, "host@localhost").header})
    assert resp.status == 401
    assert "not an HTTP/ service principal" in (await resp.json())["error"]


async def test_an_explicit_principal_refuses_other_principals_of_the_same_keytab(
    client: Client, options: KerberosOptions, kdc: KdcRealm
) -> None:
    c = await client(replace(options, keytab=str(kdc.multi_keytab), principal="HTTP/localhost"))
    resp = await c.get("/", headers={"Authorization": handshake(kdc.ccache("alice"), "HTTP@otherhost").header})
    assert resp.status == 401


# -- cookie lifetime ----------------------------------------------------------------------


async def test_expiry_is_the_end_of_the_clients_ticket(client: Client, options: KerberosOptions, kdc: KdcRealm) -> None:
    c = await client(options)
    for lifetime, expected in (("3m", 180), (None, 10 * 3600)):
        before = time.time()
        resp = await c.get("/", headers={"Authorization": handshake(kdc.ccache("bob", lifetime=lifetime)).header})
        assert resp.status == 200
        remaining = (await resp.json())["expires_at"] - before
        assert expected - 10 <= remaining <= expected + 1, (lifetime, remaining)


# -- threads, start and stop -----------------------------------------------------------------


def threads_accepting(scheme: KerberosScheme) -> list[str]:
    """The names of the threads ``scheme`` accepts contexts on, one per accept, from now on."""
    seen: list[str] = []
    original = scheme._accept

    def spy(*args: Any) -> Any:
        seen.append(threading.current_thread().name)
        return original(*args)

    scheme._accept = spy  # type: ignore[method-assign,assignment]
    return seen


async def test_with_no_threads_accepting_runs_on_the_loop_and_still_refuses_replays(
    client: Client, options: KerberosOptions, kdc: KdcRealm
) -> None:
    c = await client(replace(options, accept_threads=0))
    seen = threads_accepting(c.app[SCHEME])
    hs = handshake(kdc.ccache("alice"))
    resp = await c.get("/", headers={"Authorization": hs.header})
    assert resp.status == 200, await resp.text()
    hs.finish(resp.headers["WWW-Authenticate"])  # the mutual-authentication token verifies
    assert seen == [threading.current_thread().name]
    again = await c.get("/", headers={"Authorization": hs.header})
    assert again.status == 401 and "replay" in (await again.json())["error"].lower()


async def test_accepting_runs_on_the_schemes_own_threads(options: KerberosOptions, kdc: KdcRealm) -> None:
    from aiohttp.test_utils import make_mocked_request

    scheme = KerberosScheme.from_options(replace(options, accept_threads=3))
    await scheme.start()
    seen = threads_accepting(scheme)
    cc = kdc.ccache("alice")
    request = make_mocked_request("GET", "/", headers={"Authorization": handshake(cc).header})
    assert isinstance(await scheme.authenticate(request), Authenticated)
    assert seen and seen[0].startswith("kerberos-accept") and seen[0] != threading.current_thread().name
    await scheme.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("kerberos-accept")]


# -- configuration ------------------------------------------------------------------------


def test_check_options_accepts_a_good_configuration(options: KerberosOptions, kdc: KdcRealm) -> None:
    assert KerberosScheme.check_options(options) == []
    assert KerberosScheme.check_options(replace(options, keytab=str(kdc.multi_keytab), principal="*")) == []
    assert KerberosScheme.check_options(replace(options, principal="HTTP/_HOST", hostname="LOCALHOST")) == []


def test_check_options_names_the_file_and_the_principal(options: KerberosOptions, kdc: KdcRealm, tmp_path: Path) -> None:
    check = KerberosScheme.check_options
    missing = tmp_path / "missing.keytab"
    must = "(it must hold HTTP/localhost@EXAMPLE.COM)"
    assert check(replace(options, keytab=str(missing))) == [
        f"keytab = '{missing}': cannot read: No such file or directory {must}"
    ]
    assert check(replace(options, keytab=str(tmp_path))) == [f"keytab = '{tmp_path}': cannot read: Is a directory {must}"]
    assert check(replace(options, keytab=str(missing), principal="*")) == [
        f"keytab = '{missing}': cannot read: No such file or directory (it must hold an HTTP/ principal)"
    ]
    assert check(replace(options, keytab="")) == [
        "keytab = '': required: the keytab holding the HTTP/ service principal's keys"
    ]
    not_keytab = tmp_path / "x.keytab"
    not_keytab.write_text("hello")
    assert check(replace(options, keytab=str(not_keytab))) == [
        f"keytab = '{not_keytab}': not a keytab (no 0x05 format byte) {must}"
    ]
    assert check(replace(options, keytab=str(kdc.other_keytab))) == [
        f"principal = 'HTTP/localhost@EXAMPLE.COM': HTTP/localhost@EXAMPLE.COM is not in keytab "
        f"'{kdc.other_keytab}' (it holds HTTP/otherhost@EXAMPLE.COM)"
    ]
    assert check(replace(options, principal="HTTP/_HOST", hostname="nowhere")) == [
        f"principal = 'HTTP/_HOST': HTTP/nowhere@EXAMPLE.COM is not in keytab '{kdc.http_keytab}' "
        "(it holds HTTP/localhost@EXAMPLE.COM)"
    ]


def test_check_options_star_needs_an_http_principal(kdc: KdcRealm, tmp_path: Path) -> None:
    keytab = kdc.realm.add_service(["host/localhost"], tmp_path / "host.keytab")
    assert KerberosScheme.check_options(KerberosOptions(keytab=str(keytab), principal="*")) == [
        f"principal = '*': keytab '{keytab}' holds no HTTP/ principal (it holds host/localhost@EXAMPLE.COM)"
    ]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"replay_cache": "none:"}, "replay_cache = 'none:': turning the replay cache off"),
        ({"replay_cache": "file2"}, "replay_cache = 'file2': must be TYPE:RESIDUAL"),
        ({"replay_cache": "file2:/no/such/dir/rc"}, "replay_cache = 'file2:/no/such/dir/rc': directory '/no/such/dir'"),
        ({"replay_cache": "memory:x"}, "replay_cache = 'memory:x': unknown replay cache type 'memory'"),
        ({"accept_threads": -1}, "accept_threads = -1: must be between 0 and 64"),
        ({"accept_threads": 65}, "accept_threads = 65: must be between 0 and 64"),
        ({"allowed_principals": ("",)}, "allowed_principals: an empty pattern"),
        ({"principal": "HTTP/localhost@"}, "principal = 'HTTP/localhost@': must look like"),
        ({"name_rules": "RULE:[1:$1"}, "name_rules = 'RULE:[1:$1': "),
        ({"name_rules": "RULE:[1:$3]"}, "name_rules = 'RULE:[1:$3]': "),
    ],
)
def test_check_options_rules(options: KerberosOptions, changes: dict[str, Any], problem: str) -> None:
    problems = KerberosScheme.check_options(replace(options, **changes))
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_check_options_changes_nothing(options: KerberosOptions, kdc: KdcRealm, tmp_path: Path) -> None:
    before = sorted(p.name for p in kdc.realm.base.iterdir())
    assert KerberosScheme.check_options(replace(options, replay_cache="")) == []
    assert KerberosScheme.check_options(options) == []
    assert not (tmp_path / "gateway.rcache2").exists()
    assert sorted(p.name for p in kdc.realm.base.iterdir()) == before


def test_the_config_loader_reports_kerberos_problems_under_auth_kerberos(kdc: KdcRealm, tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(
        f"""
[auth]
schemes = ["kerberos", "simple"]
[auth.kerberos]
keytab = "{kdc.other_keytab}"
principal = "HTTP/localhost@EXAMPLE.COM"
allowed_principals = ["*@EXAMPLE.COM"]
"""
    )
    with pytest.raises(ConfigError) as info:
        load_config(config, env={})
    assert info.value.problems == [
        f"auth.kerberos.principal = 'HTTP/localhost@EXAMPLE.COM': HTTP/localhost@EXAMPLE.COM is not in keytab "
        f"'{kdc.other_keytab}' (it holds HTTP/otherhost@EXAMPLE.COM)"
    ]
    loaded = load_config(config, env={"AUTHGATEWAY_AUTH__KERBEROS__KEYTAB": str(kdc.http_keytab)})
    assert dict(loaded.scheme_options)["kerberos"].allowed_principals == ("*@EXAMPLE.COM",)


async def test_start_fails_with_a_configuration_error_naming_keytab_and_principal(
    options: KerberosOptions, kdc: KdcRealm, tmp_path: Path
) -> None:
    keytab = tmp_path / "gone.keytab"
    keytab.write_bytes(kdc.http_keytab.read_bytes())
    scheme = KerberosScheme.from_options(replace(options, keytab=str(keytab), principal="HTTP/otherhost"))
    with pytest.raises(ConfigError) as info:
        await scheme.start()
    (problem,) = info.value.problems
    assert str(keytab) in problem and "HTTP/otherhost@EXAMPLE.COM" in problem
    await scheme.stop()


# -- the keytab reader ----------------------------------------------------------------------


def _entry(principal: str, *, vno: int = 1) -> bytes:
    name, _, realm = principal.partition("@")
    parts = name.split("/")
    body = struct.pack(">H", len(parts))
    for text in (realm, *parts):
        body += struct.pack(">H", len(text)) + text.encode()
    body += struct.pack(">IIB", 1, 0, vno) + struct.pack(">HH", 18, 32) + b"k" * 32 + struct.pack(">I", vno)
    return struct.pack(">i", len(body)) + body


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x05\x02", []),
        (b"\x05\x02" + _entry("HTTP/a@R"), ["HTTP/a@R"]),
        (b"\x05\x02" + _entry("HTTP/a@R") + _entry("HTTP/a@R", vno=2) + _entry("u@R"), ["HTTP/a@R", "u@R"]),
        (b"\x05\x02" + struct.pack(">i", -7) + b"\x00" * 7 + _entry("x/y/z@R"), ["x/y/z@R"]),
        (b"\x05\x02" + _entry("a@R") + struct.pack(">i", 0) + b"trailing", ["a@R"]),
    ],
    ids=["empty", "one", "duplicates", "hole", "zero-size-ends"],
)
def test_keytab_reader(tmp_path: Path, data: bytes, expected: list[str]) -> None:
    path = tmp_path / "k"
    path.write_bytes(data)
    assert read_keytab_principals(str(path)) == expected


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "not a keytab"),
        (b"\x05\x01", "unsupported keytab version 0x0501"),
        (b"\x05\x02" + struct.pack(">i", 100) + b"\x00" * 10, "truncated entry at byte 2"),
        (b"\x05\x02" + struct.pack(">i", 4) + b"\x00\x01\x00\x09", "malformed entry at byte 2"),
    ],
)
def test_keytab_reader_refuses_what_it_cannot_read(tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "k"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=problem):
        read_keytab_principals(str(path))


def test_keytab_reader_agrees_with_klist(kdc: KdcRealm) -> None:
    for keytab in (kdc.http_keytab, kdc.other_keytab, kdc.multi_keytab):
        assert set(read_keytab_principals(str(keytab))) == kdc.realm.keytab_principals(keytab)
