"""The pieces of outbound Kerberos that need no network: the backend's cookie, the jar, the
verdicts, the embedded backend's hadoop-auth token, the proxy's credential headers, the config."""

from __future__ import annotations

from email.utils import formatdate
from pathlib import Path

import pytest
from multidict import CIMultiDict

from gateway.backendauth import (
    BODY_MARGIN, UNDATED_SECONDS, CookieJar, KeptCookie, KerberosBackendAuth, _Attempt, hadoop_principal,
    parse_set_cookie,
)
from gateway.config import ConfigError, load_config
from gateway.dialects import HoopDialect, WebHdfsDialect
from gateway.embedded._spnego import HadoopAuthCookie
from gateway.proxy import UpstreamError, Verdict, _add_credentials
from gateway.upstream import Origin
from tests.keytabs import write_keytab

NOW = 1_800_000_000.0
TOKEN = "u=HTTP&p=HTTP/gw@EXAMPLE.COM&t=kerberos&e={e}&s=c2lnbmF0dXJl"


def token(expires: float) -> str:
    return TOKEN.format(e=int(expires * 1000))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # Hadoop's default: a session cookie; the token's e= is the end.
        (f'hadoop.auth="{token(NOW + 60)}"; Path=/; HttpOnly', (f'hadoop.auth="{token(NOW + 60)}"', NOW + 60)),
        # Unquoted values are quoted when sent back (HADOOP-10710, as Knox does).
        (f"hadoop.auth={token(NOW + 60)}; Path=/", (f'hadoop.auth="{token(NOW + 60)}"', NOW + 60)),
        # The earliest of Max-Age and e= wins; Max-Age wins over Expires.
        (f'hadoop.auth="{token(NOW + 60)}"; Max-Age=30', (f'hadoop.auth="{token(NOW + 60)}"', NOW + 30)),
        (f'hadoop.auth="{token(NOW + 60)}"; Max-Age=90; Expires={formatdate(NOW + 10, usegmt=True)}',
         (f'hadoop.auth="{token(NOW + 60)}"', NOW + 60)),
        (f'hadoop.auth="{token(NOW + 60)}"; Expires={formatdate(NOW + 20, usegmt=True)}',
         (f'hadoop.auth="{token(NOW + 60)}"', NOW + 20)),
        # No end known: kept for a while, never for ever.
        ('hadoop.auth="opaque"; Path=/', ('hadoop.auth="opaque"', NOW + UNDATED_SECONDS)),
        # An unreadable Expires is no expiry.
        ('hadoop.auth="opaque"; Expires=soon', ('hadoop.auth="opaque"', NOW + UNDATED_SECONDS)),
    ],
)
def test_a_set_cookie_is_kept_until_its_earliest_end(line: str, expected: tuple[str, float]) -> None:
    assert parse_set_cookie(line, "hadoop.auth", now=NOW) == KeptCookie(*expected)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hadoop.auth=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT", False),  # Hadoop clearing it
        ('hadoop.auth=""; Max-Age=0', False),
        (f'hadoop.auth="{token(NOW - 1)}"', False),  # already over
        ('hadoop.auth="x"; Max-Age=0', False),
        ('other="x"; Path=/', None),
        ('hadoop.authx="x"', None),
        ('hadoop.auth="a"b"', None),  # a quote inside: not a value we would send back
        ("no equals sign", None),
    ],
)
def test_clearing_foreign_and_unreadable_set_cookies(line: str, expected: object) -> None:
    assert parse_set_cookie(line, "hadoop.auth", now=NOW) is expected


def test_the_principal_in_a_kept_cookie() -> None:
    assert hadoop_principal(f'hadoop.auth="{token(NOW)}"') == "HTTP/gw@EXAMPLE.COM"
    assert hadoop_principal('hadoop.auth="opaque"') is None


def test_the_jar_forgets_the_least_recently_used_and_the_expired() -> None:
    jar = CookieJar(limit=2)
    a, b, c = (KeptCookie(f"hadoop.auth={n}", NOW + 100) for n in "abc")
    jar.put("alice", a)
    jar.put("bob", b)
    assert jar.get("alice", now=NOW) == a  # alice is now the most recently used
    jar.put("carol", c)
    assert len(jar) == 2
    assert jar.get("bob", now=NOW) is None
    assert jar.get("alice", now=NOW) == a and jar.get("carol", now=NOW) == c
    assert jar.get("alice", now=NOW + 100) is None  # at its end: gone
    assert len(jar) == 1


def test_a_cookie_near_its_end_is_not_risked_on_a_request_with_a_body() -> None:
    jar = CookieJar()
    kept = KeptCookie("hadoop.auth=a", NOW + BODY_MARGIN - 1)
    jar.put("alice", kept)
    assert jar.get("alice", now=NOW, margin=BODY_MARGIN) is None
    assert jar.get("alice", now=NOW) == kept  # still good for a bodiless one, and still kept


def test_forgetting_only_the_cookie_that_was_refused() -> None:
    jar = CookieJar()
    old, new = KeptCookie("hadoop.auth=old", NOW + 100), KeptCookie("hadoop.auth=new", NOW + 100)
    jar.put("alice", new)
    jar.forget("alice", old)  # a refusal of the old one, answered after a newer one came
    assert jar.get("alice", now=NOW) == new
    jar.forget("alice", new)
    assert jar.get("alice", now=NOW) is None


@pytest.fixture
def auth() -> KerberosBackendAuth:
    # Names only: nothing here talks to a KDC until start().
    return KerberosBackendAuth(
        principal="HTTP/gw@EXAMPLE.COM", keytab="/nonexistent", hosts=["backend.example", "standby.example"]
    )


BACKEND = Origin.from_url("http://backend.example:14000")
STANDBY = Origin.from_url("http://standby.example:14000")
ALICE = "backend.example:14000 alice"  # the jar's key: each backend sets its own cookie


def test_a_refused_cookie_is_retried_and_forgotten_a_refused_handshake_is_not(auth: KerberosBackendAuth) -> None:
    kept = KeptCookie(f'hadoop.auth="{token(4_000_000_000)}"', 4_000_000_000)
    auth._jar.put(ALICE, kept)
    with_cookie = auth.begin(BACKEND, "alice", fresh=False, body=False)
    assert with_cookie.headers == (("Cookie", kept.pair),)
    assert auth.finish(with_cookie, 401, []) is Verdict.RETRY
    assert auth._jar.get(ALICE, now=NOW) is None
    handshake = _Attempt(ALICE, (("Authorization", "Negotiate x"),))
    assert auth.finish(handshake, 401, []) is Verdict.REFUSED


def test_only_the_gateways_own_cookie_is_kept(auth: KerberosBackendAuth) -> None:
    attempt = _Attempt(ALICE, (("Authorization", "Negotiate x"),))
    ours = f'hadoop.auth="{token(4_000_000_000)}"; Path=/; HttpOnly'
    theirs = ours.replace("HTTP/gw@", "HTTP/intruder@")
    assert auth.finish(attempt, 200, [("Set-Cookie", theirs)]) is Verdict.ACCEPTED
    assert auth._jar.get(ALICE, now=NOW) is None
    assert auth.finish(attempt, 200, [("Set-Cookie", "other=1"), ("set-cookie", ours)]) is Verdict.ACCEPTED
    kept = auth._jar.get(ALICE, now=NOW)
    assert kept is not None and kept.pair == ours.split(";")[0]
    assert auth.begin(BACKEND, "alice", fresh=False, body=False).headers == (("Cookie", kept.pair),)
    with pytest.raises(UpstreamError):  # another backend of the route: a handshake (which needs start())
        auth.begin(STANDBY, "alice", fresh=False, body=False)
    # A later answer that clears it: forgotten.
    assert auth.finish(attempt, 403, [("Set-Cookie", "hadoop.auth=; Max-Age=0")]) is Verdict.ACCEPTED
    assert auth._jar.get(ALICE, now=NOW) is None


def test_a_reply_token_that_does_not_verify_refuses_the_answer(auth: KerberosBackendAuth) -> None:
    class Context:
        complete = False

        def step(self, token: bytes) -> bytes:
            raise ValueError("not a token")

    attempt = _Attempt(ALICE, (("Authorization", "Negotiate x"),), context=Context())  # type: ignore[arg-type]
    assert auth.finish(attempt, 200, [("WWW-Authenticate", "Negotiate !!!")]) is Verdict.REFUSED
    assert auth.finish(attempt, 200, [("WWW-Authenticate", "Negotiate")]) is Verdict.ACCEPTED  # none sent


@pytest.mark.parametrize(
    ("client", "credentials", "expected"),
    [
        (None, (("Cookie", 'hadoop.auth="t"'),), {"Cookie": 'hadoop.auth="t"'}),
        ("a=1; b=2", (("Cookie", 'hadoop.auth="t"'),), {"Cookie": 'a=1; b=2; hadoop.auth="t"'}),
        ("a=1", (("Authorization", "Negotiate x"),), {"Cookie": "a=1", "Authorization": "Negotiate x"}),
        (None, (("Authorization", "Negotiate x"),), {"Authorization": "Negotiate x"}),
    ],
)
def test_credentials_join_the_clients_cookies_and_replace_an_earlier_attempts(
    client: str | None, credentials: tuple[tuple[str, str], ...], expected: dict[str, str]
) -> None:
    headers: CIMultiDict[str] = CIMultiDict({"Accept": "*/*"})
    # An earlier attempt's credentials, to be replaced.
    _add_credentials(headers, (("Authorization", "Negotiate old"), ("Cookie", "hadoop.auth=old")), client)
    _add_credentials(headers, credentials, client)
    assert {k: v for k, v in headers.items() if k != "Accept"} == expected


def test_the_embedded_backends_token_verifies_only_as_issued() -> None:
    cookie = HadoopAuthCookie(b"k" * 32, validity=60)
    value = cookie.issue("HTTP", "HTTP/gw@EXAMPLE.COM", NOW)
    assert value.startswith("u=HTTP&p=HTTP/gw@EXAMPLE.COM&t=kerberos&e=")
    assert cookie.verify(value, NOW) == ("HTTP", "HTTP/gw@EXAMPLE.COM")
    assert cookie.verify(f'"{value}"', NOW + 59) == ("HTTP", "HTTP/gw@EXAMPLE.COM")
    assert cookie.verify(value, NOW + 60) is None  # expired
    assert cookie.verify(value.replace("u=HTTP", "u=hdfs"), NOW) is None  # tampered
    assert HadoopAuthCookie(b"j" * 32, validity=60).verify(value, NOW) is None  # another key
    assert cookie.verify("garbage", NOW) is None


@pytest.mark.parametrize(("impersonate", "param"), [(False, "user.name"), (True, "doas")])
def test_the_user_goes_as_doas_to_a_backend_the_gateway_authenticates_to(impersonate: bool, param: str) -> None:
    for cls in (HoopDialect, WebHdfsDialect):
        dialect = cls(backend_url="http://b:1", identity_header="X-Forwarded-User", signer=None, impersonate=impersonate)
        assert dialect.target("/p?op=LISTSTATUS&doas=eve&user.name=eve", "alice") == f"/p?op=LISTSTATUS&{param}=alice"


# -- configuration -------------------------------------------------------------------


def test_every_outbound_kerberos_problem_is_reported_at_once(tmp_path: Path) -> None:
    good = write_keytab(tmp_path / "gw.keytab", "HTTP/gw@EXAMPLE.COM")
    key = tmp_path / "cookie.key"
    key.write_text("k" * 48)
    config = tmp_path / "c.toml"
    config.write_text(f"""
[cookie]
secret_files = ["{key}"]
[backend]
url = "http://nn:14000"
auth = "kerberos"
keytab = "{good}"
[[routes]]
prefix = "/a/"
backend = "http://a:1"
auth = "kerberos"
principal = "HTTP/other@EXAMPLE.COM"
[[routes]]
prefix = "/b/"
backend = "http://b:1"
dialect = "alluxio"
auth = "kerberos"
principal = "HTTP/gw"
keytab = "{tmp_path / 'missing.keytab'}"
[[routes]]
prefix = "/c/"
backend = "http://c:1"
principal = "x"
[[routes]]
prefix = "/d/"
backend = "http://a:1"
""")
    with pytest.raises(ConfigError) as info:
        load_config(config, env={})
    assert info.value.problems == [
        "backend.principal: required with auth = \"kerberos\" (the gateway's own principal)",
        f"routes[0].principal = 'HTTP/other@EXAMPLE.COM': not in backend.keytab = '{good}' "
        "(it holds HTTP/gw@EXAMPLE.COM)",
        "routes[1].auth = 'kerberos': the Alluxio proxy does not speak SPNEGO",
        f"routes[1].keytab = '{tmp_path / 'missing.keytab'}': file is not readable (No such file or directory)",
        'routes[2].principal, routes[2].keytab: only read with auth = "kerberos"',
        "routes[3].auth: routes to 'http://a:1' must authenticate to it alike (auth, principal and keytab)",
    ]


def test_a_kerberized_backend_with_a_good_keytab_passes(tmp_path: Path) -> None:
    good = write_keytab(tmp_path / "gw.keytab", "HTTP/gw@EXAMPLE.COM")
    key = tmp_path / "cookie.key"
    key.write_text("k" * 48)
    config = tmp_path / "c.toml"
    config.write_text(f"""
[cookie]
secret_files = ["{key}"]
[backend]
url = "http://nn:14000"
dialect = "webhdfs"
auth = "kerberos"
principal = "HTTP/gw"
keytab = "{good}"
""")
    loaded = load_config(config, env={})
    (route,) = loaded.routes
    assert (route.auth, route.credentials(loaded.backend)) == ("kerberos", ("HTTP/gw", str(good)))


def test_the_embedded_backend_behind_kerberos_needs_its_keytab(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"""
[embedded]
root = "{tmp_path / 'data'}"
auth = "kerberos"
cookie_validity = 0
groups = ["g:u"]
[groups]
static = ["h:v"]
""")
    with pytest.raises(ConfigError) as info:
        load_config(config, env={})
    assert info.value.problems == [
        "embedded.groups: deprecated, and [groups] is set too; give the memberships once, in groups.static "
        "(embedded.groups is only read when [groups] has no source or entries)",
        'embedded.keytab: required with embedded.auth = "kerberos"',
        "embedded.cookie_validity = 0: must be a positive number of seconds",
    ]


def test_without_its_own_credentials_the_gateway_never_falls_back_to_the_process_defaults(
    auth: KerberosBackendAuth,
) -> None:
    with pytest.raises(UpstreamError) as info:
        auth.begin(BACKEND, "alice", fresh=False, body=False)  # nothing kept, and start() never ran
    assert (info.value.status, info.value.message) == (502, "the gateway could not authenticate to the backend")
