"""systemd's readiness protocol (sd_notify), for ``Type=notify`` units.

A datagram to the socket in ``$NOTIFY_SOCKET`` (a path, or an abstract
name written with a leading ``@``): ``READY=1`` once every worker accepts
connections, ``RELOADING=1`` then ``READY=1`` around a SIGHUP reload,
``STOPPING=1`` when the drain begins.  Without the variable nothing is sent;
a failure to send is logged once and never stops the gateway.  Only the
main process speaks: workers forget the variable (:func:`forget`).
"""

from __future__ import annotations

import os
import socket
import time

from gateway.log import server_logger

__all__ = ("forget", "notify", "reloading")

_VARIABLE = "NOTIFY_SOCKET"


def notify(*fields: str) -> None:
    """Send ``fields`` (``"READY=1"``...) to systemd, if it is listening."""
    address = os.environ.get(_VARIABLE)
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    message = "\n".join(fields).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message, address)
    except OSError as exc:
        server_logger.warning("cannot tell systemd %s through %s: %s", fields[0], os.environ[_VARIABLE], exc)


def reloading() -> None:
    """``RELOADING=1`` with the time it began, as ``Type=notify-reload`` wants it."""
    notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")


def forget() -> None:
    """In a worker: leave the notifications to the main process."""
    os.environ.pop(_VARIABLE, None)
