"""Who may act for whom (doas) and who may use a route, through the real gateway.

The embedded backend stands in for the cluster: what reaches it shows whom
the gateway acted for (the owner of what was made).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from tests.conftest import GatewayProcess

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def gw(gateway: Callable[..., GatewayProcess]) -> GatewayProcess:
    return gateway(
        groups={"static": ["analysts:carol,dave"]},
        proxy_users=[
            {"user": "knox", "users": ["bob"], "groups": ["analysts"], "hosts": ["127.0.0.0/8"]},
            {"user": "remote", "users": ["*"], "hosts": ["10.0.0.0/8"]},
        ],
    )


def mkdirs(gw: GatewayProcess, path: str, **params: str) -> requests.Response:
    return requests.put(f"{gw.url}/webhdfs/v1{path}", params={"op": "MKDIRS", **params}, timeout=10)


@pytest.mark.parametrize("effective", ["bob", "carol"])
def test_a_proxy_user_acts_for_whom_its_rule_allows(gw: GatewayProcess, effective: str) -> None:
    r = mkdirs(gw, f"/user/{effective}/made", **{"user.name": "knox", "doas": effective})
    assert (r.status_code, r.json()) == (200, {"boolean": True}), r.text
    status = requests.get(f"{gw.url}/webhdfs/v1/user/{effective}/made",
                          params={"op": "GETFILESTATUS", "user.name": effective}, timeout=10).json()
    assert status["FileStatus"]["owner"] == effective


@pytest.mark.parametrize(
    ("real", "effective", "message"),
    [
        ("knox", "erin", "User: knox is not allowed to impersonate erin"),  # neither named nor in analysts
        ("knox", "hdfs", "User: knox is not allowed to impersonate hdfs"),
        ("alice", "bob", "User: alice is not allowed to impersonate bob"),  # no rule for alice
        ("remote", "bob", "Unauthorized connection for super-user: remote from IP 127.0.0.1"),  # wrong hosts
    ],
)
def test_any_other_doas_is_403_in_the_routes_format(gw: GatewayProcess, real: str, effective: str, message: str) -> None:
    r = mkdirs(gw, f"/user/{effective}/nope", **{"user.name": real, "doas": effective})
    assert r.status_code == 403
    assert r.json() == {"RemoteException": {
        "exception": "AccessControlException", "javaClassName": "org.apache.hadoop.security.AccessControlException",
        "message": message}}
    assert not (gw.root / "user" / effective / "nope").exists()


def test_the_cookie_names_who_authenticated_not_whom_it_acted_for(gw: GatewayProcess) -> None:
    session = requests.Session()
    r = session.put(f"{gw.url}/webhdfs/v1/user/bob/a", params={"op": "MKDIRS", "user.name": "knox", "doas": "bob"},
                    timeout=10)
    assert r.status_code == 200
    # The same session without doas is knox again, and knox may not write in bob's home.
    r = session.put(f"{gw.url}/webhdfs/v1/user/bob/b", params={"op": "MKDIRS"}, timeout=10)
    assert r.status_code == 403 and "user=knox" in r.json()["RemoteException"]["message"]


def test_a_route_admits_only_its_users_and_groups(gateway: Callable[..., GatewayProcess]) -> None:
    gw = gateway(
        groups={"static": ["analysts:carol"]},
        routes=[{"prefix": "/api/v1/", "dialect": "alluxio", "users": ["hdfs"], "groups": ["analysts"]}],
        proxy_users=[{"user": "knox", "users": ["*"], "hosts": ["*"]}],
    )
    api = f"{gw.url}/api/v1/paths//user/exists"
    for user in ("hdfs", "carol"):
        r = requests.post(api, params={"user.name": user}, timeout=10)
        assert (r.status_code, r.json()) == (200, True), r.text
    r = requests.post(api, params={"user.name": "dave"}, timeout=10)
    assert r.status_code == 500 and r.json() == {"statusCode": "PERMISSION_DENIED", "message": "User dave may not use /api/v1/"}
    # Acting for an admitted user admits; the rule looks at whom the request acts for.
    r = requests.post(api, params={"user.name": "knox", "doas": "carol"}, timeout=10)
    assert r.status_code == 200, r.text
    # Other routes are open to anyone who authenticated.
    assert requests.get(f"{gw.url}/webhdfs/v1/", params={"op": "GETFILESTATUS", "user.name": "dave"},
                        timeout=10).status_code == 200


@pytest.mark.parametrize(
    "sections",
    [
        {"groups": {"static": ["supergroup:carol"]}},
        # Deprecated, still read as groups.static while [groups] is not set.
        {"embedded": {"groups": ["supergroup:carol"]}},
    ],
    ids=["groups.static", "embedded.groups"],
)
def test_the_embedded_backends_permissions_read_the_gateways_groups(
    gateway: Callable[..., GatewayProcess], sections: dict[str, dict[str, list[str]]]
) -> None:
    gw = gateway(**sections)
    # Only a superuser makes anything at the top level: carol is one through supergroup.
    assert mkdirs(gw, "/top", **{"user.name": "carol"}).status_code == 200
    refused = mkdirs(gw, "/top2", **{"user.name": "dave"})
    assert refused.status_code == 403
    assert "Permission denied: user=dave" in refused.json()["RemoteException"]["message"]
