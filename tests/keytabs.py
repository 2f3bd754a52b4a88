"""Keytab files for tests that need only the names in one (no KDC)."""

from __future__ import annotations

import struct
from pathlib import Path

__all__ = ("write_keytab",)


def write_keytab(path: Path, *principals: str) -> Path:
    """A version 0x0502 keytab naming ``principals`` (``name/host@REALM``); the keys are dummies."""
    data = b"\x05\x02"
    for principal in principals:
        name, _, realm = principal.partition("@")
        entry = struct.pack(">H", len(name.split("/")))
        for part in [realm, *name.split("/")]:
            entry += struct.pack(">H", len(part)) + part.encode()
        entry += struct.pack(">IIBHH", 1, 0, 1, 17, 16) + b"\0" * 16  # name type, time, kvno, enctype, key
        data += struct.pack(">i", len(entry)) + entry
    path.write_bytes(data)
    return path
