"""Kerberos SPNEGO authentication, hadoop-auth's ``kerberos`` scheme.

The client sends ``Authorization: Negotiate <base64 token>``: a SPNEGO token
wrapping a Kerberos AP-REQ, or a bare Kerberos AP-REQ.  Each request gets a
fresh acceptor context on the service keys of the configured keytab; a
handshake must finish in that one round trip (as it does whenever the client
offers Kerberos first), since no context is kept between requests.  On
success the acceptor's reply token goes back as ``WWW-Authenticate: Negotiate
<token>`` on the response that sets the session cookie, so clients that
require mutual authentication can verify the gateway.

The client principal is let in when it matches ``allowed_principals`` (if
any are set) and the ``auth_to_local`` rules in ``name_rules`` map it to a
short name, which is what the backend sees.  A principal that is refused
here gets 403, not 401: its credentials were valid, and asking the client
for them again (which a 401 does) would only repeat the refusal.

The library calls (keytab reads, decryption, the replay-cache file) block:
about 0.1 ms each when all is well, milliseconds when the disk is busy.  They
run on a small thread pool owned by the scheme, never on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import logging
import os
import socket
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import gssapi
import gssapi.raw as gss_raw
import gssapi.exceptions
from aiohttp import hdrs, web

from authplugins import (
    Authenticated,
    AuthenticationError,
    AuthScheme,
    Challenge,
    ConfigError,
)
from authplugins._kerberos_name import (
    AuthToLocal,
    InvalidPrincipalError,
    NoMatchingRuleError,
    RuleSyntaxError,
)
from authplugins._username import check_user_name

__all__ = ("KerberosOptions", "KerberosScheme", "read_keytab_principals")

log = logging.getLogger("gateway.auth")

NEGOTIATE = "Negotiate"
ANY_PRINCIPAL = "*"
HOST_PLACEHOLDER = "_HOST"
_CHALLENGE = Challenge(NEGOTIATE)
_NTLMSSP = b"NTLMSSP\x00"
# MIT krb5 adds its clock-skew allowance to the lifetime it reports for an
# acceptor context (a 2-minute ticket reports 420 s).  GSSAPI does not say
# which allowance is configured, so the default is taken off; a krb5.conf
# with a larger clockskew lets a cookie outlive its ticket by the difference.
_MIT_CLOCKSKEW = 300
_GSS_INDEFINITE = 0xFFFFFFFF
_MAX_THREADS = 64


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True, slots=True)
class KerberosOptions:
    keytab: str = field(default="", metadata=_help("keytab holding the service principal's keys (required)"))
    principal: str = field(
        default="HTTP/_HOST",
        metadata=_help(
            "service principal to accept tickets for: 'HTTP/host@REALM', '_HOST' standing for "
            "hostname, or '*' for any HTTP/ principal in the keytab; without @REALM the default realm applies"
        ),
    )
    hostname: str = field(
        default="", metadata=_help("replaces _HOST in principal; empty means this machine's fully qualified name")
    )
    replay_cache: str = field(
        default="",
        metadata=_help(
            "replay cache as TYPE:RESIDUAL, e.g. 'file2:/var/lib/authgateway/http.rcache2'; empty uses the "
            "Kerberos default (KRB5RCACHENAME, else a file in KRB5RCACHEDIR or /var/tmp). It cannot be turned off"
        ),
    )
    name_rules: str = field(
        default="DEFAULT",
        metadata=_help("auth_to_local rules mapping principals to the short user names the backend sees"),
    )
    rule_mechanism: Literal["hadoop", "mit"] = field(
        default="hadoop",
        metadata=_help(
            "how name_rules are applied: 'hadoop' (a principal no rule maps, or mapped to a name with "
            "'@' or '/', is refused) or 'mit' (it keeps its full name, which the user-name grammar refuses)"
        ),
    )
    allowed_principals: tuple[str, ...] = field(
        default=(),
        metadata=_help(
            "globs the full client principal must match, e.g. ['*@EXAMPLE.COM']; empty lets in every "
            "principal the name rules map (403 otherwise)"
        ),
    )
    accept_threads: int = field(
        default=0,
        metadata=_help(
            f"0 (the default) accepts security contexts on each worker's event loop, one at a time (about "
            f"0.2 ms each); 1 to {_MAX_THREADS} hands them to that many threads, which costs more CPU but "
            "keeps a worker's other requests moving during an accept"
        ),
    )


# -- keytab and principal helpers --------------------------------------------------


def read_keytab_principals(path: str) -> list[str]:
    """Return the principals in the keytab at ``path``, in file order, once each.

    Raises ``OSError`` when the file cannot be read and ``ValueError`` when it
    is not a version 2 (0x0502) keytab.  Only names are read; keys are skipped.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    seen: dict[str, None] = {}
    for principal in _iter_keytab(data):
        seen.setdefault(principal, None)
    return list(seen)


def _iter_keytab(data: bytes) -> Iterator[str]:
    if len(data) < 2 or data[0] != 0x05:
        raise ValueError("not a keytab (no 0x05 format byte)")
    if data[1] != 0x02:
        raise ValueError(f"unsupported keytab version 0x05{data[1]:02x} (only 0x0502 is read)")
    pos = 2
    while pos + 4 <= len(data):
        (size,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if size == 0:
            break
        if size < 0:  # a hole left by a removed entry
            pos += -size
            continue
        if pos + size > len(data):
            raise ValueError(f"truncated entry at byte {pos - 4}")
        yield _keytab_entry_principal(data[pos : pos + size], pos - 4)
        pos += size


def _keytab_entry_principal(entry: bytes, offset: int) -> str:
    try:
        (count,) = struct.unpack_from(">H", entry, 0)
        pos = 2
        parts: list[str] = []
        for _ in range(count + 1):  # the realm, then the components
            (length,) = struct.unpack_from(">H", entry, pos)
            pos += 2
            if pos + length > len(entry):
                raise ValueError
            parts.append(entry[pos : pos + length].decode("utf-8", "backslashreplace"))
            pos += length
    except (struct.error, ValueError):
        raise ValueError(f"malformed entry at byte {offset}") from None
    realm, components = parts[0], parts[1:]
    return "/".join(components) + "@" + realm


def default_realm() -> str | None:
    """The Kerberos library's default realm, or ``None`` when it has none."""
    try:
        name = gssapi.Name("x", gssapi.NameType.kerberos_principal)
        full = str(name.canonicalize(gssapi.MechType.kerberos))
    except gssapi.exceptions.GSSError:
        return None
    _, sep, realm = full.partition("@")
    return realm if sep and realm else None


def service_principal(options: KerberosOptions) -> str | None:
    """The principal named by the options, ``_HOST`` replaced; ``None`` for ``*``.

    No realm is appended: the caller adds the default realm where needed.
    """
    principal = options.principal.strip()
    if principal == ANY_PRINCIPAL:
        return None
    if HOST_PLACEHOLDER in principal:
        host = (options.hostname or socket.getfqdn()).lower()
        principal = principal.replace(HOST_PLACEHOLDER, host)
    return principal


def _with_realm(principal: str, realm: str | None) -> str:
    if "@" in principal or realm is None:
        return principal
    return f"{principal}@{realm}"


def _is_http_service(principal: str) -> bool:
    return principal.split("@", 1)[0].startswith("HTTP/")


def _gss_reason(exc: gssapi.exceptions.GSSError) -> str:
    """The most specific message GSSAPI has for ``exc`` (the minor one if any)."""
    for code, is_major in ((exc.min_code, False), (exc.maj_code, True)):
        if not code:
            continue
        try:
            messages = exc.get_all_statuses(code, is_major)
        except gssapi.exceptions.GSSError:
            continue
        text = "; ".join(m.strip() for m in messages if m and "gss_display_status" not in m)
        if text:
            return text
    return str(exc)


def _short_list(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit]) or "nothing"
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _replay_cache_problem(rcache: str) -> str | None:
    kind, sep, residual = rcache.partition(":")
    kind = kind.lower()
    if not sep or not kind:
        return "must be TYPE:RESIDUAL, e.g. 'file2:/var/lib/authgateway/http.rcache2'"
    if kind == "none":
        return "turning the replay cache off lets a captured token be replayed; leave it on"
    if kind == "file2":
        directory = os.path.dirname(residual) or "."
        if not residual:
            return "file2: needs a file name"
        if not os.path.isdir(directory):
            return f"directory {directory!r} does not exist"
        if not os.access(directory, os.W_OK | os.X_OK):
            return f"directory {directory!r} is not writable"
    elif kind != "dfl":
        return f"unknown replay cache type {kind!r} (allowed: file2, dfl)"
    return None


# -- the scheme ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Accepted:
    principal: str
    service: str
    lifetime: int
    reply: bytes | None


class KerberosScheme(AuthScheme):
    type_name = "kerberos"
    options_type = KerberosOptions

    def __init__(self, options: KerberosOptions) -> None:
        realm = default_realm()
        principal = service_principal(options)
        self._keytab = options.keytab
        self._principal = None if principal is None else _with_realm(principal, realm)
        self._replay_cache = options.replay_cache
        self._rules = _parse_rules(options, realm)
        self._allowed = options.allowed_principals
        self._threads = options.accept_threads
        self._creds: gssapi.Credentials | None = None
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def from_options(cls, options: KerberosOptions) -> KerberosScheme:
        return cls(options)

    @classmethod
    def check_options(cls, options: KerberosOptions) -> list[str]:
        problems: list[str] = []
        realm = default_realm()
        if not 0 <= options.accept_threads <= _MAX_THREADS:
            problems.append(f"accept_threads = {options.accept_threads}: must be between 0 and {_MAX_THREADS}")
        if options.replay_cache:
            why = _replay_cache_problem(options.replay_cache)
            if why:
                problems.append(f"replay_cache = {options.replay_cache!r}: {why}")
        for glob in options.allowed_principals:
            if not glob.strip():
                problems.append("allowed_principals: an empty pattern matches nothing; remove it")
        try:
            _parse_rules(options, realm)
        except RuleSyntaxError as exc:
            problems.append(f"name_rules = {options.name_rules!r}: {exc}")
        problems.extend(_principal_problems(options, realm))
        return problems

    @property
    def challenge(self) -> Challenge:
        return _CHALLENGE

    async def start(self) -> None:
        if self._threads == 0:
            self._creds = self._acquire()
        else:
            self._executor = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="kerberos-accept")
            loop = asyncio.get_running_loop()
            try:
                self._creds = await loop.run_in_executor(self._executor, self._acquire)
            except BaseException:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
                raise
        log.info(
            "kerberos: accepting tickets for %s from keytab %s (%s)",
            self._principal or "any HTTP/ principal",
            self._keytab,
            f"{self._threads} threads" if self._threads else "on the event loop",
        )

    async def stop(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)
        self._creds = None

    def _acquire(self) -> gssapi.Credentials:
        store: dict[bytes | str, bytes | str] = {"keytab": self._keytab}
        if self._replay_cache:
            store["rcache"] = self._replay_cache
        name = None if self._principal is None else gssapi.Name(self._principal, gssapi.NameType.kerberos_principal)
        try:
            return gssapi.Credentials(name=name, usage="accept", store=store)
        except gssapi.exceptions.GSSError as exc:
            raise ConfigError(
                [
                    f"auth.kerberos.keytab = {self._keytab!r}: acquiring acceptor credentials for "
                    f"{self._principal or 'any principal'} failed: {_gss_reason(exc)}"
                ]
            ) from exc

    async def authenticate(self, request: web.Request) -> Authenticated | Challenge:
        token = _negotiate_token(request)
        if token is None:
            return _CHALLENGE
        if self._creds is None:
            raise RuntimeError("KerberosScheme.authenticate called before start()")
        if self._executor is None:
            accepted = self._accept(self._creds, token)
        else:
            accepted = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._accept, self._creds, token
            )
        principal = accepted.principal
        # The handshake succeeded whatever follows: the reply token goes with a
        # refusal too, so a client that requires mutual authentication
        # (requests-kerberos, fsspec) believes the 403 and reads its body.
        headers: tuple[tuple[str, str], ...] = ()
        if accepted.reply:
            headers = ((hdrs.WWW_AUTHENTICATE, f"{NEGOTIATE} {base64.b64encode(accepted.reply).decode('ascii')}"),)
        if self._allowed and not any(fnmatch.fnmatchcase(principal, glob) for glob in self._allowed):
            log.info("kerberos: %s is not in allowed_principals", principal)
            raise AuthenticationError(f"Kerberos principal {principal} is not allowed in", status=403, headers=headers)
        # 403, not 401: the ticket was valid, so challenging the client to
        # present it again would only repeat the refusal.
        try:
            user = self._rules.short_name(principal)
        except (NoMatchingRuleError, InvalidPrincipalError) as exc:
            log.info("kerberos: no user name for %s: %s", principal, exc)
            raise AuthenticationError(
                f"Kerberos principal {principal} maps to no user name (auth_to_local): {exc}",
                status=403,
                headers=headers,
            ) from exc
        problem = check_user_name(user)
        if problem:
            log.info("kerberos: %s maps to an unacceptable user name %r", principal, user)
            raise AuthenticationError(
                f"Kerberos principal {principal} maps to {user!r}, which is not an acceptable user name: "
                + problem.replace("user.name", "the name"),
                status=403,
                headers=headers,
            )
        expires_at = None
        if accepted.lifetime != _GSS_INDEFINITE:
            expires_at = time.time() + max(accepted.lifetime - _MIT_CLOCKSKEW, 0)
        log.debug("kerberos: %s authenticated as %s for %s", principal, user, accepted.service)
        return Authenticated(user, principal, self.type_name, expires_at=expires_at, headers=headers)

    def _accept(self, creds: gssapi.Credentials, token: bytes) -> _Accepted:
        """Run one acceptor step on a fresh context (on the loop, or in a pool thread).

        python-gssapi's raw layer, one C call for the step and what it
        established: its high-level SecurityContext binds every call's
        arguments through ``inspect`` and asks for each property in a call
        of its own, which cost about as much again as the accept itself.  The
        raw call also raises a failed step at once, where the high-level one
        keeps a step that produced an error token (a replayed AP-REQ does)
        until the context is next inspected.
        """
        context = None
        try:
            result = gss_raw.accept_sec_context(token, acceptor_creds=creds)
            context = result.context
            if result.more_steps:
                raise AuthenticationError(
                    "Kerberos handshake needs another round trip, which this gateway does not keep "
                    "state for; offer Kerberos as the first SPNEGO mechanism"
                )
            if int(result.flags) & gssapi.RequirementFlag.anonymity:
                raise AuthenticationError("anonymous Kerberos tickets are not accepted")
            try:
                principal = gss_raw.display_name(result.initiator_name, name_type=False).name.decode("utf-8")
            except UnicodeDecodeError as exc:  # a valid ticket, for a name no user can have
                raise AuthenticationError("the client principal is not valid UTF-8", status=403) from exc
            service = self._principal
            if service is None:  # principal = "*": which of the keytab's services the ticket was for
                target = gss_raw.inquire_context(
                    context, initiator_name=False, lifetime=False, mech=False, flags=False, locally_init=False,
                    complete=False,
                ).target_name
                service = "" if target is None else gss_raw.display_name(target, name_type=False).name.decode(
                    "utf-8", "replace"
                )
            lifetime = _GSS_INDEFINITE if result.lifetime is None else int(result.lifetime)
            reply = result.token or None
        except gssapi.exceptions.GSSError as exc:
            reason = _gss_reason(exc)
            log.info("kerberos: accepting the security context failed: %s", reason)
            raise AuthenticationError(f"Kerberos authentication failed: accepting the security context: {reason}") from exc
        finally:
            # The only reference: the GSS context is freed here, not when a
            # traceback that holds this frame is finally dropped.
            del context
        if self._principal is None and not _is_http_service(service):
            # principal = "*" acquires credentials for every key in the keytab.
            log.info("kerberos: refused a ticket for %s, which is not an HTTP/ service", service)
            raise AuthenticationError(f"the ticket is for {service}, which is not an HTTP/ service principal")
        return _Accepted(principal, service, lifetime, reply)


def _negotiate_token(request: web.Request) -> bytes | None:
    """The decoded Negotiate token, or ``None`` when the request offers none.

    Raises :class:`AuthenticationError` (401) for a token this scheme cannot
    use, so the client is challenged again with a message saying why.
    """
    tokens: list[str] = []
    for value in request.headers.getall(hdrs.AUTHORIZATION, []):
        scheme, _, credentials = value.strip().partition(" ")
        if scheme.lower() == "negotiate":
            tokens.append(credentials.strip())
        elif scheme.lower() == "ntlm":
            raise AuthenticationError("NTLM is not supported; get a Kerberos ticket (kinit) and use SPNEGO")
    if not tokens:
        return None
    if len(tokens) > 1:
        raise AuthenticationError("more than one Negotiate credential in the request")
    if not tokens[0]:
        raise AuthenticationError("the Negotiate credential carries no token")
    try:
        token = base64.b64decode(tokens[0], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuthenticationError("the Negotiate token is not valid base64") from exc
    if not token:
        raise AuthenticationError("the Negotiate credential carries no token")
    if token.startswith(_NTLMSSP):
        raise AuthenticationError(
            "NTLM is not supported (the client sent an NTLM token, probably for lack of a Kerberos "
            "ticket); get a Kerberos ticket (kinit) and retry"
        )
    return token


def _parse_rules(options: KerberosOptions, realm: str | None) -> AuthToLocal:
    # strict: a rule that could only fail when a principal reaches it fails
    # now, at start, rather than as a refusal of some user much later.
    return AuthToLocal.parse(options.name_rules, mechanism=options.rule_mechanism, default_realm=realm, strict=True)


def _principal_problems(options: KerberosOptions, realm: str | None) -> list[str]:
    """Check that the keytab is readable and holds the principal; change nothing."""
    if not options.keytab:
        return ["keytab = '': required: the keytab holding the HTTP/ service principal's keys"]
    keytab = options.keytab
    principal = service_principal(options)
    wanted = "an HTTP/ principal" if principal is None else _with_realm(principal, realm)
    try:
        present = read_keytab_principals(keytab)
    except OSError as exc:
        return [f"keytab = {keytab!r}: cannot read: {exc.strerror or exc} (it must hold {wanted})"]
    except ValueError as exc:
        return [f"keytab = {keytab!r}: {exc} (it must hold {wanted})"]
    if principal is None:
        http = [p for p in present if _is_http_service(p)]
        if not http:
            return [f"principal = '*': keytab {keytab!r} holds no HTTP/ principal (it holds {_short_list(present)})"]
        return _acquire_problems(keytab, None, ANY_PRINCIPAL)
    if not principal or principal.startswith("@") or principal.endswith("@") or principal.count("@") > 1:
        return [f"principal = {options.principal!r}: must look like 'HTTP/host@REALM', 'HTTP/_HOST' or '*'"]
    full = _with_realm(principal, realm)
    if "@" not in full:
        return [
            f"principal = {options.principal!r}: has no @REALM and the Kerberos configuration "
            "(KRB5_CONFIG) names no default_realm"
        ]
    if full not in present:
        return [
            f"principal = {options.principal!r}: {full} is not in keytab {keytab!r} "
            f"(it holds {_short_list(present)})"
        ]
    return _acquire_problems(keytab, full, options.principal)


def _acquire_problems(keytab: str, principal: str | None, configured: str) -> list[str]:
    # "none:" keeps this check from opening, or creating, the replay cache.
    name = None if principal is None else gssapi.Name(principal, gssapi.NameType.kerberos_principal)
    try:
        gssapi.Credentials(name=name, usage="accept", store={"keytab": keytab, "rcache": "none:"})
    except gssapi.exceptions.GSSError as exc:
        return [
            f"principal = {configured!r}: keytab {keytab!r} cannot be used for "
            f"{principal or 'any principal'}: {_gss_reason(exc)}"
        ]
    return []
