"""The gateway's own credentials towards a Kerberized backend (outbound SPNEGO).

A route whose backend accepts only SPNEGO (a secured HttpFS or NameNode)
gets a :class:`KerberosBackendAuth`, which the proxy core asks for the
credentials of each exchange (:class:`gateway.proxy.BackendAuth`):

* **Credentials.** Initiator credentials come from the configured keytab
  through GSSAPI's credential store (``client_keytab``), into a ``MEMORY:``
  credential cache of this process: no ``kinit``, no file another program
  or user could read.  They are acquired in a thread when the route starts
  (failing the start when the keytab cannot give a ticket), together with
  the service ticket of each backend host of the route, and acquired again
  the same way, into a new cache, once 80 % of their lifetime has passed
  (Hadoop's ``UserGroupInformation`` renews at the same point); a failed
  renewal is logged and tried again every :data:`RETRY_SECONDS` while the
  old ones last.
* **Handshakes.** Each handshake gets a fresh SPNEGO context for
  ``HTTP@<backend host>`` (the ``HTTP/<host>`` Hadoop's
  ``KerberosAuthenticator`` asks for), mutual authentication requested and,
  unlike Hadoop's client, no credential delegation (the gateway's ticket
  stays with the gateway), and sends its first token as
  ``Authorization: Negotiate``.  With the service ticket in the cache this is
  a local computation: 0.2 ms measured (MIT krb5 1.20.1, python-gssapi
  1.12; the first one, which fetches the ticket, 1.6 ms against a loopback
  KDC), so it runs on the event loop; everything that talks to the KDC runs
  in a thread.
  When the answer carries the backend's reply token it must verify
  (HdfsCLI's ``OPTIONAL``), else the client gets a 502.
* **The backend's cookie.** The ``hadoop.auth`` cookie a backend sets on
  an answer to the gateway is kept per backend and end user (at most
  :data:`JAR_LIMIT` users, least recently used forgotten first) and sent
  instead of a handshake until it expires: at the earliest of its
  ``Max-Age``, its ``Expires`` and the ``e=`` (milliseconds) inside a
  hadoop-auth token, less :data:`BODY_MARGIN` for a request with a body,
  whose refusal could not be retried; a cookie that says none of these is
  kept for :data:`UNDATED_SECONDS`.  A cookie whose ``p=`` names another
  principal than the gateway's is not kept (Knox's check).  The proxy strips
  this cookie from every answer to a client and from every client's request;
  no log line carries it.
* **Refusals.** A 401 to a request that carried a kept cookie forgets the
  cookie and asks the proxy to retry once with a fresh handshake (the proxy
  does so only when no byte of the body has been read); a 401 to a
  handshake means the backend does not accept the gateway: 502.

Knox keeps one such cookie for all users, since it names the gateway's
principal and ``doas`` says who is served; keeping one per end user costs a
handshake per user and stays right for a backend whose cookie also binds
the user it acted for.  Each worker process keeps its own credentials and
cookies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Final

import gssapi
import gssapi.exceptions

from authplugins import ConfigError

from gateway.log import proxy_logger as log
from gateway.proxy import AuthAttempt, UpstreamError, Verdict
from gateway.upstream import Origin

__all__ = (
    "BODY_MARGIN",
    "JAR_LIMIT",
    "KerberosBackendAuth",
    "KeptCookie",
    "CookieJar",
    "RETRY_SECONDS",
    "UNDATED_SECONDS",
    "parse_set_cookie",
)

HADOOP_AUTH: Final = "hadoop.auth"
JAR_LIMIT: Final = 10_000  # end users whose backend cookie is kept at once
BODY_MARGIN: Final = 30.0  # seconds: a cookie this close to its end is not risked on a request with a body
UNDATED_SECONDS: Final = 600.0  # how long a cookie that names no expiry is kept
RETRY_SECONDS: Final = 30.0  # between attempts to renew credentials that failed to renew
RENEW_AT: Final = 0.8  # of the credentials' lifetime
_NEGOTIATE = "negotiate"
_SPNEGO = gssapi.Mechanism.from_sasl_name("SPNEGO")
_FLAGS = gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.out_of_sequence_detection
_ccache_serial = itertools.count()


# -- the backend's cookie ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeptCookie:
    """A backend cookie to send back: ``pair`` is ``name=value`` as the backend set it (the
    value double-quoted, as Hadoop writes it), ``expires_at`` epoch seconds."""

    pair: str
    expires_at: float


def parse_set_cookie(line: str, name: str, *, now: float) -> KeptCookie | None | bool:
    """Read one ``Set-Cookie`` line for cookie ``name``.

    Returns the :class:`KeptCookie` it sets; ``False`` when it clears the
    cookie (empty value, or already expired); ``None`` when it is about
    another cookie or cannot be read.
    """
    pair, _, attributes = line.partition(";")
    key, sep, value = pair.partition("=")
    if not sep or key.strip() != name:
        return None
    value = value.strip()
    bare = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if not bare or any(c in bare for c in '";\r\n') or not bare.isprintable():
        return False if not bare else None
    ends: list[float] = []
    max_age: float | None = None
    for attribute in attributes.split(";"):
        attr, _, attr_value = attribute.partition("=")
        attr, attr_value = attr.strip().lower(), attr_value.strip()
        if attr == "max-age":
            try:
                max_age = float(int(attr_value))
            except ValueError:
                continue
        elif attr == "expires":
            try:
                ends.append(parsedate_to_datetime(attr_value).timestamp())
            except (TypeError, ValueError, IndexError, OverflowError):
                continue
    if max_age is not None:  # RFC 6265 5.3: Max-Age wins over Expires
        ends = [now + max_age]
    token_end = _hadoop_expiry(bare)
    if token_end is not None:
        ends.append(token_end)
    expires_at = min(ends) if ends else now + UNDATED_SECONDS
    if expires_at <= now:
        return False
    return KeptCookie(f'{name}="{bare}"', expires_at)


def _hadoop_expiry(token: str) -> float | None:
    """The ``e=`` of a hadoop-auth token (milliseconds since the epoch) in seconds, if it has one."""
    for field in token.split("&"):
        key, _, value = field.partition("=")
        if key == "e":
            try:
                return int(value) / 1000.0
            except ValueError:
                return None
    return None


def hadoop_principal(pair: str) -> str | None:
    """The ``p=`` of the hadoop-auth token in a kept cookie's ``name="value"``, if it has one."""
    value = pair.partition("=")[2].strip('"')
    for field in value.split("&"):
        key, _, rest = field.partition("=")
        if key == "p":
            return rest
    return None


class CookieJar:
    """The backend's cookie per end user: bounded, least recently used forgotten first.

    Times are epoch seconds (the cookie's own end is a wall-clock time).
    """

    __slots__ = ("_kept", "_limit")

    def __init__(self, limit: int = JAR_LIMIT) -> None:
        self._kept: OrderedDict[str, KeptCookie] = OrderedDict()
        self._limit = limit

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, user: str, *, now: float, margin: float = 0.0) -> KeptCookie | None:
        """``user``'s cookie if it lasts beyond ``now + margin``; an expired one is forgotten."""
        kept = self._kept.get(user)
        if kept is None:
            return None
        if kept.expires_at <= now:
            del self._kept[user]
            return None
        self._kept.move_to_end(user)
        return kept if kept.expires_at > now + margin else None

    def put(self, user: str, cookie: KeptCookie) -> None:
        self._kept[user] = cookie
        self._kept.move_to_end(user)
        while len(self._kept) > self._limit:
            self._kept.popitem(last=False)

    def forget(self, user: str, cookie: KeptCookie | None = None) -> None:
        """Forget ``user``'s cookie (only if it is still ``cookie``, when given)."""
        if cookie is None or self._kept.get(user) == cookie:
            self._kept.pop(user, None)


# -- Kerberos credentials --------------------------------------------------------------


class _Initiator:
    """Initiator credentials from a keytab, in a ``MEMORY:`` cache of their own, renewed before they end,
    for ``HTTP@host`` of each of ``hosts``."""

    def __init__(self, principal: str, keytab: str, hosts: Iterable[str]) -> None:
        self._principal = principal
        self._name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
        self._keytab = keytab
        self._targets = {h: gssapi.Name(f"HTTP@{h}", gssapi.NameType.hostbased_service) for h in hosts}
        self.creds: gssapi.Credentials | None = None
        self._renewer: asyncio.Task[None] | None = None

    def _acquire(self) -> tuple[gssapi.Credentials, float]:
        """New credentials and their lifetime in seconds, each backend's service ticket fetched (blocks)."""
        ccache = f"MEMORY:authgateway-backend-{os.getpid()}-{next(_ccache_serial)}"
        creds = gssapi.Credentials(
            name=self._name, usage="initiate", store={"client_keytab": self._keytab, "ccache": ccache}
        )
        for target in self._targets.values():
            # The first context for a host fetches its ticket from the KDC: here, not on the loop.
            gssapi.SecurityContext(name=target, creds=creds, usage="initiate", mech=_SPNEGO, flags=_FLAGS).step()
        lifetime = creds.lifetime
        return creds, float(lifetime if lifetime is not None else 0)

    async def start(self) -> None:
        try:
            self.creds, lifetime = await asyncio.to_thread(self._acquire)
        except gssapi.exceptions.GSSError as exc:
            raise ConfigError([
                f"keytab {self._keytab!r}: acquiring the gateway's credentials as {self._principal} "
                f"for the backend failed: {_gss_message(exc)}"
            ]) from exc
        log.info("Kerberos credentials for the backend acquired; valid for %.0f s", lifetime)
        self._renewer = asyncio.get_running_loop().create_task(self._renew(lifetime), name="backend-kerberos-renewal")

    async def stop(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            try:
                await self._renewer
            except asyncio.CancelledError:
                pass
            self._renewer = None

    async def _renew(self, lifetime: float) -> None:
        wait = max(lifetime * RENEW_AT, 1.0)
        while True:
            await asyncio.sleep(wait)
            try:
                self.creds, lifetime = await asyncio.to_thread(self._acquire)
            except gssapi.exceptions.GSSError as exc:
                log.error("renewing the gateway's Kerberos credentials failed (%s); trying again in %.0f s",
                          _gss_message(exc), RETRY_SECONDS)
                wait = RETRY_SECONDS
                continue
            log.info("Kerberos credentials for the backend renewed; valid for %.0f s", lifetime)
            wait = max(lifetime * RENEW_AT, 1.0)

    def context(self, host: str) -> gssapi.SecurityContext:
        """A fresh initiator context for ``HTTP@host``, one of the hosts given (fast: its ticket is cached).

        Raises ``RuntimeError`` before :meth:`start`: without credentials of
        its own GSSAPI would use whatever default ones the process has.
        """
        if self.creds is None:
            raise RuntimeError("the gateway's Kerberos credentials are not acquired")
        return gssapi.SecurityContext(
            name=self._targets[host], creds=self.creds, usage="initiate", mech=_SPNEGO, flags=_FLAGS
        )


def _same_principal(issued: str, ours: str) -> bool:
    """Whether a cookie's ``p=`` names the gateway's principal (ours may leave the realm to the default)."""
    return issued == ours if "@" in ours else issued.partition("@")[0] == ours


def _gss_message(exc: gssapi.exceptions.GSSError) -> str:
    try:
        return str(exc.gen_message())
    except Exception:  # the message itself failed to render: the codes still say something
        return f"major {exc.maj_code:#x}, minor {exc.min_code:#x}"


# -- the authenticator the proxy calls ---------------------------------------------------


@dataclass(slots=True)
class _Attempt:
    """One exchange's credentials: a kept cookie, or a handshake's context and first token."""

    key: str  # the jar's: the backend's host and port, and the end user
    headers: tuple[tuple[str, str], ...]
    cookie: KeptCookie | None = None
    context: gssapi.SecurityContext | None = None


class KerberosBackendAuth:
    """SPNEGO as ``principal`` from ``keytab`` to the backends of one route (several, with
    failover); see the module docstring.

    One instance per route's backend list, shared by the exchanges of one
    worker; it implements :class:`gateway.proxy.BackendAuth`.  Each backend
    sets its own cookie: the jar keeps them per backend and user.
    """

    cookie_names = frozenset({HADOOP_AUTH})

    def __init__(self, *, principal: str, keytab: str, hosts: Iterable[str], jar_limit: int = JAR_LIMIT) -> None:
        self._principal = principal
        self._initiator = _Initiator(principal, keytab, hosts)
        self._jar = CookieJar(jar_limit)

    async def start(self) -> None:
        await self._initiator.start()

    async def stop(self) -> None:
        await self._initiator.stop()

    def begin(self, origin: Origin, user: str, *, fresh: bool, body: bool) -> _Attempt:
        key = f"{origin.host}:{origin.port} {user}"
        if not fresh:
            kept = self._jar.get(key, now=time.time(), margin=BODY_MARGIN if body else 0.0)
            if kept is not None:
                return _Attempt(key, (("Cookie", kept.pair),), cookie=kept)
        try:
            context = self._initiator.context(origin.host)
            token = context.step()
        except (gssapi.exceptions.GSSError, RuntimeError) as exc:
            why = _gss_message(exc) if isinstance(exc, gssapi.exceptions.GSSError) else str(exc)
            log.error("creating a Kerberos token for HTTP@%s failed: %s", origin.host, why)
            raise UpstreamError(502, "the gateway could not authenticate to the backend") from exc
        log.debug("SPNEGO handshake with HTTP@%s for %s", origin.host, user)
        assert token is not None
        header = "Negotiate " + base64.b64encode(token).decode("ascii")
        return _Attempt(key, (("Authorization", header),), context=context)

    def finish(self, attempt: AuthAttempt, status: int, headers: list[tuple[str, str]]) -> Verdict:
        assert isinstance(attempt, _Attempt)
        if status == 401:
            if attempt.cookie is not None:
                self._jar.forget(attempt.key, attempt.cookie)
                return Verdict.RETRY
            return Verdict.REFUSED
        if attempt.context is not None and not self._mutual(attempt.context, headers):
            return Verdict.REFUSED
        self._learn(attempt, headers)
        return Verdict.ACCEPTED

    def _mutual(self, context: gssapi.SecurityContext, headers: Sequence[tuple[str, str]]) -> bool:
        """Whether the backend's reply token, when it sent one, completes the handshake."""
        for name, value in headers:
            if name.lower() != "www-authenticate":
                continue
            scheme, _, data = value.strip().partition(" ")
            if scheme.lower() != _NEGOTIATE or not data.strip():
                continue
            try:
                context.step(base64.b64decode(data.strip(), validate=True))
            except (binascii.Error, ValueError, gssapi.exceptions.GSSError) as exc:
                log.error("the backend's mutual-authentication token did not verify: %s", type(exc).__name__)
                return False
            if not context.complete:
                log.error("the backend's mutual-authentication token left the handshake unfinished")
                return False
            return True
        return True

    def _learn(self, attempt: _Attempt, headers: Sequence[tuple[str, str]]) -> None:
        now = time.time()
        for name, value in headers:
            if name.lower() != "set-cookie":
                continue
            found = parse_set_cookie(value, HADOOP_AUTH, now=now)
            if found is None:
                continue
            if found is False:
                self._jar.forget(attempt.key)
                continue
            assert isinstance(found, KeptCookie)
            principal = hadoop_principal(found.pair)
            if principal is not None and not _same_principal(principal, self._principal):
                log.warning("ignoring a backend cookie issued to another principal than the gateway's")
                continue
            self._jar.put(attempt.key, found)
