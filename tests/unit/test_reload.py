"""What a SIGHUP reload applies and what it leaves for a restart (gateway.reload)."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.config import Config, CookieConfig, LogConfig, ProxyUserConfig, RouteConfig, ServerConfig
from authplugins.simple import SimpleOptions
from gateway.config import GroupsConfig
from gateway.reload import plan

ROUTES = (RouteConfig("/data/", "embedded", "hoop"),)
BASE = Config(route_tables=ROUTES, scheme_options=(("simple", SimpleOptions()),))


@pytest.mark.parametrize(
    ("new", "applied", "restart"),
    [
        (BASE, (), ()),
        (dataclasses.replace(BASE, log=LogConfig("debug")), ("log.level",), ()),
        (dataclasses.replace(BASE, cookie=CookieConfig(keys_file="/k.json")), ("cookie.keys_file",), ()),
        (dataclasses.replace(BASE, cookie=CookieConfig(name="other")), (), ("cookie.name",)),
        (dataclasses.replace(BASE, server=ServerConfig(port=1)), (), ("server.port",)),
        (dataclasses.replace(BASE, groups=GroupsConfig(static=("g:a",))), ("groups.static",), ()),
        (dataclasses.replace(BASE, proxy_users=(ProxyUserConfig("knox", ("*",), (), ("*",)),)), ("proxy_users",), ()),
        (
            dataclasses.replace(BASE, route_tables=(RouteConfig("/data/", "embedded", "hoop", users=("bob",)),)),
            ("routes[0].users",),
            (),
        ),
        # Route users are live only when nothing else about the routes changed.
        (
            dataclasses.replace(BASE, route_tables=(RouteConfig("/data/", "embedded", "webhdfs", users=("bob",)),)),
            (),
            ("routes[0].dialect", "routes[0].users"),
        ),
        (dataclasses.replace(BASE, route_tables=()), (), ("routes",)),
        (
            dataclasses.replace(BASE, scheme_options=(("simple", SimpleOptions(anonymous_allowed=True)),)),
            (),
            ("auth.simple.anonymous_allowed",),
        ),
    ],
)
def test_what_applies_and_what_waits_for_a_restart(new: Config, applied: tuple[str, ...], restart: tuple[str, ...]) -> None:
    step = plan(BASE, new)
    assert (step.applied, step.restart) == (applied, restart)
    # The configuration run with is the old one wherever a restart is needed.
    for key in restart:
        section, _, name = key.partition(".")
        if section in ("server", "cookie"):
            assert getattr(getattr(step.config, section), name) == getattr(getattr(BASE, section), name)
    if restart and any(k.startswith("routes") for k in restart):
        assert step.config.route_tables == BASE.route_tables
    for key in applied:
        section, _, name = key.partition(".")
        if section in ("log", "cookie", "groups"):
            assert getattr(getattr(step.config, section), name) == getattr(getattr(new, section), name)
    if "proxy_users" in applied:
        assert step.config.proxy_users == new.proxy_users
