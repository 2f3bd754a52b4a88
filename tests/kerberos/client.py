"""The initiator side, for tests: tokens as a client would send them."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import gssapi

SPNEGO = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
KRB5 = gssapi.MechType.kerberos
MUTUAL = gssapi.RequirementFlag.mutual_authentication


@dataclass
class ClientHandshake:
    """One initiator context and the first token it produced."""

    context: gssapi.SecurityContext
    token: bytes

    @property
    def header(self) -> str:
        return "Negotiate " + base64.b64encode(self.token).decode("ascii")

    def finish(self, www_authenticate: str) -> None:
        """Verify the server's mutual-authentication reply; raises if it is wrong."""
        scheme, _, reply = www_authenticate.partition(" ")
        assert scheme == "Negotiate" and reply, www_authenticate
        self.context.step(base64.b64decode(reply))
        assert self.context.complete


def handshake(ccache: str, service: str = "HTTP@localhost", *, mech: gssapi.OID = SPNEGO) -> ClientHandshake:
    """Start a context as the owner of ``ccache`` towards ``service`` (``HTTP@host``)."""
    creds = gssapi.Credentials(usage="initiate", store={"ccache": ccache})
    target = gssapi.Name(service, gssapi.NameType.hostbased_service)
    context = gssapi.SecurityContext(name=target, creds=creds, usage="initiate", mech=mech, flags=MUTUAL)
    return ClientHandshake(context, context.step())
