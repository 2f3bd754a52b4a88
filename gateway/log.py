"""The gateway's loggers, one per concern, so operators can route them apart.

And what every log line about a request draws on: the request's id
(:func:`request_id`) and its query with credentials masked
(:func:`redact_query`).  (Its client's address is
:func:`gateway.forwarded.client_view`'s.)
"""

import logging
import re
import secrets

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from authplugins.query import iter_params

__all__ = (
    "REQUEST_ID_HEADER",
    "ClientErrorFilter",
    "access_logger",
    "audit_logger",
    "auth_logger",
    "is_credential_param",
    "proxy_logger",
    "redact_query",
    "request_id",
    "server_logger",
)

access_logger = logging.getLogger("gateway.access")
audit_logger = logging.getLogger("gateway.audit")
auth_logger = logging.getLogger("gateway.auth")
proxy_logger = logging.getLogger("gateway.proxy")
server_logger = logging.getLogger("gateway.server")


class ClientErrorFilter(logging.Filter):
    """Turn aiohttp's tracebacks for malformed requests into one INFO line.

    aiohttp logs every unparsable request line or header at ERROR with a
    traceback; that is the client's mistake, not the server's, and anyone
    could fill the error log with it.  Install on the ``aiohttp.server``
    logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "malformed request refused with %s: %s", (exc.code, exc.message.splitlines()[0])
            record.exc_info = record.exc_text = None
        return True


REQUEST_ID_HEADER = "X-Request-Id"
# What a client's X-Request-Id must look like to be kept: 1 to 128 of these
# characters (UUIDs, hex, Amazon's and Heroku's ids all fit; no spaces, quotes
# or control characters that could forge a log field).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_REQUEST_ID_KEY = web.RequestKey("request_id", str)


def request_id(request: web.BaseRequest) -> str:
    """The request's id: the client's ``X-Request-Id`` when well-formed, else a new one.

    Decided on the first call and the same afterwards, so the backend, the
    response and every log line see one id.  A generated id is 32 hex digits.
    """
    rid = request.get(_REQUEST_ID_KEY)
    if rid is None:
        sent = request.headers.get(REQUEST_ID_HEADER)
        rid = sent if sent is not None and _REQUEST_ID.fullmatch(sent) else secrets.token_hex(16)
        request[_REQUEST_ID_KEY] = rid
    return rid


# Folded names (lower case, without "-", "_" and ".") of query parameters
# that carry credentials: Hadoop's delegation tokens, OAuth and bearer tokens,
# signed URLs (S3's X-Amz-Signature, Azure's sig, ours), passwords.
_CREDENTIAL_NAMES = frozenset({"delegation", "sig", "token", "password", "passwd", "pwd", "secret", "credential"})
_CREDENTIAL_PARTS = ("token", "signature", "secret", "password", "credential", "delegation")
_FOLD = str.maketrans("", "", "-_.")
# Every credential name above holds one of these, unless it is percent-encoded.
_CREDENTIAL_HINT = re.compile("delegation|sig|token|pass|pwd|secret|credential|%", re.IGNORECASE)
REDACTED = "***"


def is_credential_param(folded_name: str) -> bool:
    """Whether a query parameter of this (decoded, lower-case) name may carry a credential."""
    name = folded_name.translate(_FOLD)
    return name in _CREDENTIAL_NAMES or name.endswith("sig") or any(part in name for part in _CREDENTIAL_PARTS)


def redact_query(raw_query: str) -> str:
    """``raw_query`` with the value of every credential-bearing parameter replaced by ``***``.

    Names are read as the backends may read them (:mod:`authplugins.query`:
    percent-decoded, any case, ``&`` or ``;``); everything else is kept as
    the client wrote it.
    """
    if _CREDENTIAL_HINT.search(raw_query) is None:
        return raw_query  # no name here can be a credential's: the common case, cheaply
    out: list[str] = []
    changed = False
    for piece in re.split(r"(?=[&;])", raw_query):
        sep = piece[:1] if piece[:1] in ("&", ";") else ""
        pair = piece[len(sep) :]
        for _raw, folded, _value in iter_params(pair):
            if is_credential_param(folded):
                name, eq, _ = pair.partition("=")
                piece = f"{sep}{name}={REDACTED}" if eq else piece
                changed = True
        out.append(piece)
    return "".join(out) if changed else raw_query
